"""Transcripts of issue #17 ("the work of a real pilot") through the /wechat door, on SQLite + in-process store and
PostgreSQL + Redis: the resident says a line, the bot's answer must hold these words (and not those), and the
database holds what the conversation should have left. Messages that are no request, danger advice, survey answers
and "补充:…" notes. The real trained router where its screen or its danger list is the subject, FakeClassifier
elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

from orders import models
from tests.integration.test_wechat_bot import ALICE, Chat, _resolved_order, clock, counts, door, open_door  # noqa: F401
from tests.support import FakeClassifier

BOB = "o_bob_resident_00000000002"
CAROL = "o_carol_resident_0000000003"


@dataclass(frozen=True)
class Absent:
    """Words the reply must not hold."""

    text: str


async def transcript(chat: Chat, lines: list[tuple[str, tuple[str | Absent, ...]]]) -> list[str]:
    """Each (what the resident says, what the bot's answer must hold); the replies, in order."""
    replies = []
    for says, expected in lines:
        reply = await chat.says(says) or ""
        wrong = [part for part in expected
                 if (part.text in reply if isinstance(part, Absent) else part not in reply)]
        assert not wrong, f"居民: {says}\n公众号: {reply}\n不符: {wrong}"
        replies.append(reply)
    return replies


HOW_TO_REPORT = "一句话说清什么事、在哪里"
WELCOME = "您好!有什么需要反映的事情"
NO_ORDER = Absent("已收到您的诉求")
NOT_UNDERSTOOD = Absent("没太明白")


# ---------------------------------------------------------------------------------------------- no request
async def test_the_junk_of_the_issue_files_no_order_and_pings_nobody(settings, store, clock):
    """"asdfgh qwerty" and "你好10"…"你好20" each became an order: 11 sent to the grid workers' queue, 44 pings."""
    classifier = FakeClassifier()
    async with open_door(settings, store, clock, classifier=classifier) as door:
        alice = door.resident()
        await transcript(alice, [("asdfgh qwerty", ("没看懂这条消息", HOW_TO_REPORT, NO_ORDER))]
                         + [(f"你好{n}", (WELCOME, HOW_TO_REPORT, "我的工单", NO_ORDER))
                            for n in range(10, 21)])
        assert await counts() == {"orders": 0, "messages": 12, "residents": 1, "events": 0, "outbox": 0}
        replies = await models.InboundMessage.filter(openid=ALICE).values_list("reply", flat=True)
        assert all(reply and HOW_TO_REPORT in reply for reply in replies)  # each answered, recorded with its reply
        assert classifier.calls == 12  # each routed once: the screen is the routing's, not a second pass


async def test_each_kind_of_non_request_gets_its_answer_and_short_requests_become_orders(settings, store, clock,
                                                                                       trained_router):
    async with open_door(settings, store, clock, classifier=trained_router) as door:
        alice = door.resident()
        await transcript(alice, [
            ("你好", (WELCOME, HOW_TO_REPORT, NO_ORDER)),
            ("在吗", (WELCOME, NO_ORDER)),
            ("你好10", (WELCOME, NO_ORDER)),
            ("测试", ("收到,公众号工作正常", HOW_TO_REPORT, "发“取消”加上工单编号", NO_ORDER)),
            ("发错了", ("收到,公众号工作正常", NO_ORDER)),
            ("谢谢你们", ("不客气", NO_ORDER)),
            ("ok", ("不客气", NO_ORDER)),
            ("😀", ("里面没有文字", HOW_TO_REPORT, NO_ORDER)),
            ("10", ("您发的“10”是什么意思", HOW_TO_REPORT, NO_ORDER)),
            ("吃了吗", ("专门受理群众反映的问题", HOW_TO_REPORT, NO_ORDER)),
            ("哈哈", ("专门受理群众反映的问题", NO_ORDER)),
            ("asdfgh qwerty", ("没看懂这条消息", HOW_TO_REPORT, NO_ORDER, NOT_UNDERSTOOD)),
            ("啊啊啊", ("没看懂这条消息", NO_ORDER)),
            ("嗯?1", ("没看懂这条消息", NO_ORDER)),
        ])
        assert await counts() == {"orders": 0, "messages": 14, "residents": 1, "events": 0, "outbox": 0}
        await transcript(alice, [
            ("停水了", ("工单号 YK20261124-0001",)),
            ("狗咬人", ("工单号 YK20261124-0002",)),
            ("路灯坏了", ("工单号 YK20261124-0003",)),
        ])
        texts = await models.Order.all().order_by("id").values_list("text", flat=True)
        assert texts == ["停水了", "狗咬人", "路灯坏了"]


# ---------------------------------------------------------------------------------------------- danger
FRAUD = "有人冒充公安让我往安全账户转账,现在还在通话"
FRAUD_ADVICE = "⚠ 不要转账,不要把验证码、密码告诉任何人,不要点陌生链接;立即拨打 110 或反诈专线 96110。"


async def test_danger_advice_goes_into_the_reply_and_only_a_queued_alert_is_claimed(settings, store, clock,
                                                                                 trained_router):
    async with open_door(settings, store, clock, classifier=trained_router) as door:
        alice = door.resident()
        [fraud, _] = await transcript(alice, [
            (FRAUD, ("工单号 YK20261124-0001", FRAUD_ADVICE, "这是紧急事项,已通知值班人员")),
            ("后山的裂缝越来越大了,下面住着好几户人", ("⚠ 请马上带家人撤到安全的地方", "已通知值班人员")),
        ])
        assert fraud.splitlines()[1].startswith(FRAUD_ADVICE)  # right after the number: what to do now
        for number in ("YK20261124-0001", "YK20261124-0002"):
            order = await models.Order.get(number=number)
            assert order.urgency == "急难事"
            assert await models.Outbox.filter(order_id=order.id, kind="notify_urgent_report",
                                              recipient="demo-supervisor").exists()
        # nobody on duty who can be told: the reply must not say anyone was
        await models.Staff.filter(role="supervisor").update(active=False)
        await transcript(alice, [
            ("对方说是客服让我转账退款,我正准备转", (FRAUD_ADVICE, "请立即拨打 110/119/120", Absent("已通知"))),
        ])
        order = await models.Order.get(number="YK20261124-0003")
        assert not await models.Outbox.filter(order_id=order.id, kind="notify_urgent_report").exists()


# ---------------------------------------------------------------------------------------------- surveys
async def test_survey_answers_in_words_and_answers_that_are_no_score(settings, store, clock, trained_router):
    async with open_door(settings, store, clock, classifier=trained_router) as door:
        alice = door.resident()
        first = await _resolved_order(door, alice, "楼坝村的路灯坏了好几天")
        ask_again = f"请给工单 {first} 打个分"
        await transcript(alice, [
            ("还行吧", (ask_again, "1–5", NOT_UNDERSTOOD, NO_ORDER)),
            ("10", (ask_again, NO_ORDER)),  # a number, but no score
            ("吃了吗", (ask_again, NO_ORDER)),  # screened by the model in the intake batch, answered by the dialog
            ("你好", ("您好", f"工单 {first} 已办结,请回复 1–5 分", NO_ORDER)),
            ("满意", (f"感谢您对工单 {first} 的评价(5 分)",)),
            ("10", ("您发的“10”是什么意思", "您目前没有待评价的工单", NO_ORDER)),  # no survey waits any more
            ("五星", ("您目前没有待评价的工单", NO_ORDER)),
        ])
        second = await _resolved_order(door, alice, "新滩村的路灯也坏了")
        third = await _resolved_order(door, alice, "安富村的路灯也不亮了")
        await transcript(alice, [
            ("五星", (f"感谢您对工单 {third} 的评价(5 分)", f"您还有工单 {second} 待评价")),
            ("⭐⭐⭐⭐", (f"感谢您对工单 {second} 的评价(4 分)",)),
        ])
        scores = {number: score for number, score in await models.Rating.all().values_list("order__number", "score")}
        assert scores == {first: 5, second: 4, third: 5}
        assert await models.Order.filter(resident__openid=ALICE).count() == 3


# ---------------------------------------------------------------------------------------------- 补充
async def test_a_note_goes_onto_the_open_order_and_its_handler_hears_of_it(door):
    alice, bob, carol = door.resident(), door.resident(BOB), door.resident(CAROL)
    await alice.says("楼坝村的路灯坏了好几天")  # dispatched to 村镇建设办 at once
    await alice.says("隔壁两家因为宅基地吵架好几天了")  # unsure: waits for a grid worker
    door.clock.advance(minutes=20)
    await transcript(alice, [
        ("补充:路灯在村委会门口那根电杆上", ("已补充到工单 YK20261124-0002", NO_ORDER)),
        ("补充 YK20261124-0001 路灯在村委会门口那根电杆上", ("已补充到工单 YK20261124-0001", NO_ORDER)),
    ])
    assert await models.Order.all().count() == 2
    resident = await models.Resident.get(openid=ALICE)
    for number, audience in (("YK20261124-0001", "demo-dept_staff-jianshe"), ("YK20261124-0002", "demo-grid_worker")):
        order = await models.Order.get(number=number)
        [event] = await models.OrderEvent.filter(order_id=order.id, action="resident_note")
        assert (event.actor_role, event.actor_id, event.reason) == ("resident", resident.id, "路灯在村委会门口那根电杆上")
        assert event.data == {"text": "路灯在村委会门口那根电杆上"} and event.from_state == event.to_state == order.state
        assert order.version == await models.OrderEvent.filter(order_id=order.id).count() - 1  # versioned
        notices = await models.Outbox.filter(order_id=order.id, kind="notify_resident_note").values(
            "recipient", "payload")
        assert audience in {notice["recipient"] for notice in notices}
        assert all(notice["payload"]["note"] == "路灯在村委会门口那根电杆上" for notice in notices)
    # another resident's order, a cancelled one: nothing written
    await alice.says("取消 YK20261124-0002")
    before = await counts()
    await transcript(alice, [("补充 YK20261124-0002 又吵起来了", ("已取消,不能再补充了",))])
    await transcript(bob, [("补充 YK20261124-0001 我也看到了", ("没有找到您的工单 YK20261124-0001",))])
    after = await counts()
    assert (after["orders"], after["events"], after["outbox"]) == (before["orders"], before["events"], before["outbox"])
    # no open order: the words become a new report, or (no request in them) the resident is told
    await transcript(bob, [
        ("补充：村口的路灯坏了一个星期", ("您目前没有办理中的工单,已把这条补充作为新的诉求提交", "工单号 YK20261124-0003")),
    ])
    assert (await models.Order.get(number="YK20261124-0003")).text == "村口的路灯坏了一个星期"
    await transcript(carol, [("补充:哈哈", ("没有办理中的工单", "这条补充没有可以加的地方", NO_ORDER))])
    assert await models.Order.all().count() == 3


async def test_a_note_takes_the_photo_sent_before_it(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了")
    door.clock.advance(hours=3)
    assert "请回复“补充”" in await alice.photo("media-late")
    await transcript(alice, [
        ("补充:照片里就是那根电杆", ("已补充到工单 YK20261124-0001", "已把1 张照片补充到工单 YK20261124-0001")),
        ("补充", ("请直接发送照片或位置",)),  # the photo went with the note, once
    ])
    order = await models.Order.get(number="YK20261124-0001")
    assert [photo["media_id"] for photo in order.photos] == ["media-late"]
    assert await models.OrderEvent.filter(order_id=order.id, action="resident_note").count() == 1


# ---------------------------------------------------------------------------------------------- progress notes
INTERNAL_NOTE = "配件要从县里调,老王负责,别跟群众说具体日子"
NOTE_FOR_RESIDENT = "电工明天上午到现场更换灯泡"


async def test_the_resident_reads_the_notes_for_them_and_never_the_internal_ones(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了好几天")
    number = "YK20261124-0001"
    clerk = await door.staff("demo-dept_staff-jianshe")
    orders = door.app.ctx.orders
    await orders.accept(number, clerk)
    door.clock.advance(minutes=1)
    await orders.progress(number, clerk, INTERNAL_NOTE)
    await transcript(alice, [
        (f"查询 {number}", ("最新进展", "接单", Absent(INTERNAL_NOTE), Absent("老王"))),
        ("我的工单", (number, Absent(INTERNAL_NOTE))),
    ])
    door.clock.advance(minutes=1)
    await orders.progress(number, clerk, NOTE_FOR_RESIDENT, notify_resident=True)
    door.clock.advance(minutes=1)
    await orders.progress(number, clerk, INTERNAL_NOTE)  # the latest step is internal again: the one before shows
    await transcript(alice, [
        (f"查询 {number}", (f"办理进展——{NOTE_FOR_RESIDENT}", Absent(INTERNAL_NOTE))),
    ])
    told = await models.Outbox.filter(kind="resident_progress", recipient=ALICE).values_list("payload", flat=True)
    assert [payload["note"] for payload in told] == [NOTE_FOR_RESIDENT]


# ---------------------------------------------------------------------------------------------- afterthoughts
async def test_an_afterthought_minutes_after_a_report_is_a_note_on_it_and_a_matter_of_its_own_is_not(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了好几天")  # YK20261124-0001, to 村镇建设办
    door.clock.advance(minutes=2)
    await transcript(alice, [
        ("对了,灯杆在村委会门口那根", ("已把这条补充到您刚才的工单 YK20261124-0001", "灯杆在村委会门口那根", NO_ORDER)),
        ("还有就是晚上特别黑,老人不敢出门", ("已把这条补充到您刚才的工单 YK20261124-0001", NO_ORDER)),
        # the router is sure it is another department's matter: a new order, as before
        ("另外,低保的事也想问一下怎么申请", ("工单号 YK20261124-0002",)),
        # danger is never folded into an earlier report
        ("对了,厨房着火了", ("工单号 YK20261124-0003", "119")),
        # "还有" without a pause opens a sentence, not an afterthought
        ("还有人在河里电鱼", ("工单号 YK20261124-0004",)),
    ])
    first = await models.Order.get(number="YK20261124-0001")
    notes = await models.OrderEvent.filter(order_id=first.id, action="resident_note").order_by("id").values_list(
        "reason", flat=True)
    assert notes == ["灯杆在村委会门口那根", "晚上特别黑,老人不敢出门"]
    told = await models.Outbox.filter(order_id=first.id, kind="notify_resident_note").values_list("recipient",
                                                                                                  flat=True)
    assert "demo-dept_staff-jianshe" in told
    door.clock.advance(minutes=11)  # past bot.addition_minutes: a report of its own
    await transcript(alice, [("对了,村口的路灯也坏了", ("工单号 YK20261124-0005",))])
    assert await models.OrderEvent.filter(order_id=first.id, action="resident_note").count() == 2


async def test_with_addition_minutes_zero_an_afterthought_is_a_report_as_before(settings, store, clock):
    async with open_door(settings, store, clock, bot={"addition_minutes": 0}) as door:
        alice = door.resident()
        await alice.says("楼坝村的路灯坏了好几天")
        await transcript(alice, [("对了,灯杆在村委会门口那根", ("工单号 YK20261124-0002",))])
        assert await models.OrderEvent.filter(action="resident_note").count() == 0
