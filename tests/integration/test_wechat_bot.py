"""The /wechat door on loopback, on SQLite + in-process store and PostgreSQL + Redis: transcripts of each intent
(resident says → bot answers), the three crypto modes, WeChat's retries, and what the replies leave in the database.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest
from wechatpy.crypto import PrpCrypto

from api.app import create_app
from api.demo.township import load_demo_data
from bot.chat import Simulator, sign, to_xml
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.services import Actor
from orders.store import RedisStore
from tests.support import FakeClassifier, running_server

# 16:30 in the township; kept in UTC like the real clock (SQLite compares stored timestamps as text)
START = datetime(2026, 11, 24, 16, 30, tzinfo=SHANGHAI).astimezone(timezone.utc)
AES_KEY = base64.b64encode(b"sidan-test-aes-key-32-bytes-long").decode().rstrip("=")
OTHER_AES_KEY = base64.b64encode(b"another-aes-key-of-32-bytes-long").decode().rstrip("=")
ALICE = "o_alice_resident_0000000001"


@dataclass
class Door:
    base: str
    app: object
    client: httpx.AsyncClient
    clock: FrozenClock

    @property
    def settings(self):
        return self.app.ctx.settings

    def resident(self, openid: str = ALICE, mode: str = "plain", aes_key: str | None = None) -> Chat:
        wechat = self.settings.wechat
        simulator = Simulator(self.base, wechat.token, openid, mode=mode,
                              aes_key=wechat.aes_key if aes_key is None else aes_key, appid=wechat.appid,
                              now=lambda: self.clock.now().timestamp())
        return Chat(simulator, self.client)

    async def staff(self, openid: str) -> Actor:
        return Actor.of_staff(await models.Staff.get(openid=openid))


@dataclass
class Chat:
    simulator: Simulator
    client: httpx.AsyncClient

    async def send(self, fields: dict) -> str | None:
        return await self.simulator.send_async(fields, self.client)

    async def says(self, text: str) -> str | None:
        return await self.send(self.simulator.text_message(text))

    async def photo(self, media_id: str | None = None) -> str | None:
        return await self.send(self.simulator.image_message(media_id))

    async def location(self, latitude: float, longitude: float, label: str = "") -> str | None:
        return await self.send(self.simulator.location_message(latitude, longitude, label))

    async def event(self, event: str, key: str | None = None) -> str | None:
        return await self.send(self.simulator.event_message(event, key))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@contextlib.asynccontextmanager
async def open_door(settings, store, clock, classifier=None, wechat=None, bot=None, demo=True):
    overrides = {"app": {"run_background_tasks": False}}
    if wechat:
        overrides["wechat"] = wechat
    if bot:
        overrides["bot"] = bot
    app = create_app(settings.with_overrides(**overrides), classifier=classifier or FakeClassifier(), store=store,
                     clock=clock)
    async with running_server(app) as base, httpx.AsyncClient(timeout=10) as client:
        if demo:
            await load_demo_data()
        yield Door(base, app, client, clock)


@pytest.fixture
async def door(settings, store, clock):
    async with open_door(settings, store, clock) as opened:
        yield opened


async def counts() -> dict[str, int]:
    return {
        "orders": await models.Order.all().count(),
        "messages": await models.InboundMessage.all().count(),
        "residents": await models.Resident.all().count(),
        "events": await models.OrderEvent.all().count(),
        "outbox": await models.Outbox.all().count(),
    }


# ---------------------------------------------------------------------------------------------- transcripts
async def test_subscribe_greet_help_and_thanks_never_create_orders(door):
    alice = door.resident()
    welcome = await alice.event("subscribe")
    assert "欢迎关注向家坝镇" in welcome and "我的工单" in welcome and "取消+工单号" in welcome
    assert "有什么需要反映的事情" in await alice.says("你好")
    assert "使用方法" in await alice.says("帮助")
    assert "不客气" in await alice.says("好的,谢谢!")
    assert "没看懂这条消息" in await alice.says("asdfgh qwerty")
    assert "直接用文字描述" in await alice.says("你好,我想反映一个问题")
    assert (await counts())["orders"] == 0
    resident = await models.Resident.get(openid=ALICE)
    assert resident.subscribed is True and resident.last_message_at == START
    assert await models.InboundMessage.filter(openid=ALICE).count() == 6  # every message recorded, with its reply
    assert (await models.InboundMessage.filter(msg_type="ev_subscribe").first()).reply == welcome


async def test_a_new_request_becomes_an_order_and_the_reply_says_where_it_went(door):
    alice = door.resident()
    reply = await alice.says("楼坝村村口的路灯坏了一个星期,晚上很黑")
    assert reply.splitlines() == [
        "已收到您的诉求,工单号 YK20261124-0001。",
        "分类:社会民生;承办部门:村镇建设办。",
        "办理时限:11月27日 16:30 前。",
        "可以继续发照片或位置补充。",
        "发“我的工单”随时查看进度。",
    ]
    order = await models.Order.get(number="YK20261124-0001").prefetch_related("department", "resident")
    assert order.state == "dispatched" and order.department.code == "jianshe" and order.category == "社会民生"
    assert order.resident.openid == ALICE
    message = await models.InboundMessage.get(order_id=order.id)
    assert message.reply == reply and message.msg_type == "text"
    # the department hears of it through the outbox, not during the reply
    assert await models.Outbox.filter(order_id=order.id, kind="notify_dispatched").count() == 1


async def test_an_unsure_request_waits_for_the_grid_worker_and_danger_alerts_the_supervisor(door):
    alice = door.resident()
    unsure = await alice.says("隔壁两家因为宅基地吵架好几天了")
    assert "网格员将在 1 小时内为您确认承办部门" in unsure and "分类:平安建设" in unsure
    assert (await models.Order.get(number="YK20261124-0001")).state == "submitted"
    urgent = await alice.says("安富村三组有户人家厨房着火了")
    assert "紧急事项" in urgent and "119" in urgent and "应急管理办" in urgent
    order = await models.Order.get(number="YK20261124-0002")
    assert order.urgency == "急难事"
    assert await models.Outbox.filter(order_id=order.id, kind="notify_urgent_report",
                                      recipient="demo-supervisor").exists()


async def test_photos_and_location_after_a_report_are_added_to_it(door):
    alice = door.resident()
    await alice.says("新滩村的路灯不亮了")
    assert await alice.photo("media-1") == "照片已补充到工单 YK20261124-0001(共 1 张)。"
    located = await alice.location(28.640, 104.425, "新滩村委会旁")
    assert located == "位置已补充到工单 YK20261124-0001(新滩村委会旁)。所属网格:新滩村一网格。"
    order = await models.Order.get(number="YK20261124-0001").prefetch_related("grid")
    assert [p["media_id"] for p in order.photos] == ["media-1"]
    assert order.grid.code == "XJB-02" and order.latitude == pytest.approx(28.640)
    status = await alice.says("YK20261124-0001")
    assert "最新进展" in status and "派单" in status  # the resident's own additions are not the "last step"
    # three photos sent at once (WeChat delivers them as three concurrent requests): none is lost
    replies = await asyncio.gather(*(alice.photo(f"media-{i}") for i in range(2, 5)))
    assert all(reply.startswith("照片已补充到工单 YK20261124-0001") for reply in replies)
    order = await models.Order.get(number="YK20261124-0001")
    assert sorted(p["media_id"] for p in order.photos) == ["media-1", "media-2", "media-3", "media-4"]


async def test_a_photo_and_location_sent_first_go_with_the_next_request(door):
    alice = door.resident()
    held = await alice.photo("media-early")
    assert "请在 5 分钟内用文字描述问题" in held and "补充" not in held  # no open order to offer
    assert "位置已收到" in await alice.location(28.625, 104.405, "安富村")
    door.clock.advance(minutes=2)
    reply = await alice.says("这里的路灯杆被车撞歪了")
    assert "已一并附上1 张照片和位置。" in reply
    order = await models.Order.get(number="YK20261124-0001").prefetch_related("grid")
    assert [p["media_id"] for p in order.photos] == ["media-early"] and order.grid.code == "XJB-03"
    await alice.says("另外低保的事情也想问问怎么申请")  # the held photo was used once, not twice
    assert (await models.Order.get(number="YK20261124-0002")).photos == []


async def test_a_photo_long_after_the_report_is_held_and_supplemented_on_request(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了")
    door.clock.advance(hours=3)
    held = await alice.photo("media-late")
    assert "如果是补充工单 YK20261124-0001 的照片,请回复“补充”" in held
    assert await alice.says("补充") == "已把1 张照片补充到工单 YK20261124-0001。"
    assert [p["media_id"] for p in (await models.Order.get(number="YK20261124-0001")).photos] == ["media-late"]
    assert "请直接发送照片或位置" in await alice.says("补充")  # nothing left to add


async def test_my_orders_and_a_query_show_status_and_last_step(door):
    alice, bob = door.resident(), door.resident("o_bob_resident_00000000002")
    assert "您还没有提交过诉求" in await alice.says("我的工单")
    await alice.says("楼坝村的路灯坏了好几天")
    await alice.says("村里低保评定不公平想反映一下")
    listing = await alice.event("CLICK", "MY_ORDERS")
    assert listing.splitlines()[0] == "您的工单(共 2 件,显示最近 2 件):"
    assert "YK20261124-0002" in listing.splitlines()[1] and "YK20261124-0001" in listing.splitlines()[2]
    staff = await door.staff("demo-dept_staff-jianshe")
    await door.app.ctx.orders.accept("YK20261124-0001", staff)
    door.clock.advance(hours=1)
    await door.app.ctx.orders.progress("YK20261124-0001", staff, "电工明天上午来换灯泡", notify_resident=True)
    status = await alice.says("查一下 yk20261124-0001")
    assert status.splitlines()[0] == "工单 YK20261124-0001:办理中"
    assert "承办部门:村镇建设办" in status
    assert "最新进展:11月24日 17:30 办理进展——电工明天上午来换灯泡" in status
    assert await bob.says("YK20261124-0001") == (
        "没有找到您的工单 YK20261124-0001,请核对工单号。发“我的工单”可以查看您提交过的工单。")  # not bob's


async def test_a_query_of_an_invalid_order_says_so_and_why_in_full(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了好几天,电费也一直多收")
    advice = "电费多收的问题请拨打国网供电服务热线 95598,或到镇供电所营业厅办理;路灯的事请另发一条,我们马上派单。"
    supervisor = await door.staff("demo-supervisor")
    await door.app.ctx.orders.invalidate("YK20261124-0001", supervisor, "out_of_remit", advice)
    status = await alice.says("查询 YK20261124-0001")
    assert status.splitlines()[0] == "工单 YK20261124-0001:不予受理"
    assert f"不予受理——不属于本镇受理范围。{advice}" in status  # the whole advice, not a snippet
    assert "取消" not in status and "办理时限" not in status
    assert "【不予受理】" in await alice.says("我的工单")
    assert "无法取消" in await alice.says("取消 YK20261124-0001")


async def test_cancel_before_acceptance_only(door):
    alice = door.resident()
    await alice.says("楼坝村的路灯坏了好几天")
    await alice.says("新滩村的路灯也坏了")
    assert "可以取消的工单:YK20261124-0002、YK20261124-0001" in await alice.says("取消")
    assert await alice.says("取消 YK20261124-0002") == (
        "工单 YK20261124-0002 已取消。如果问题还在,随时再发给我们。")
    assert (await models.Order.get(number="YK20261124-0002")).state == "cancelled"
    await door.app.ctx.orders.accept("YK20261124-0001", await door.staff("demo-dept_staff-jianshe"))
    refused = await alice.says("取消YK20261124-0001")
    assert "当前状态为“办理中”,无法取消" in refused
    assert (await models.Order.get(number="YK20261124-0001")).state == "accepted"


async def _resolved_order(door, alice: Chat, text: str) -> str:
    await alice.says(text)
    order = await models.Order.filter(resident__openid=alice.simulator.openid).order_by("-id").first()
    staff = await door.staff("demo-dept_staff-jianshe")
    await door.app.ctx.orders.accept(order.number, staff)
    await door.app.ctx.orders.resolve(order.number, staff, "已更换灯泡")
    return order.number


async def test_a_score_rates_the_pending_survey_and_unsatisfied_reopens(door):
    alice = door.resident()
    assert "没有待评价的工单" in await alice.event("CLICK", "RATE")
    number = await _resolved_order(door, alice, "楼坝村的路灯坏了好几天")
    door.clock.advance(seconds=30)  # the same click in the same second would be the same event (deduplicated)
    assert f"工单 {number} 已办结,请回复 1–5 分" in await alice.event("CLICK", "RATE")
    assert "不客气" in (reply := await alice.says("修好了,谢谢")) and "请回复 1–5 分" in reply
    assert await alice.says("5 修得很快") == f"感谢您对工单 {number} 的评价(5 分)!您的满意是我们最大的动力。"
    order = await models.Order.get(number=number)
    rating = await models.Rating.get(order_id=order.id)
    assert order.state == "verified" and (rating.score, rating.resolved, rating.comment) == (5, True, "修得很快")
    assert "您发的“5”是什么意思" in await alice.says("5")  # nothing pending any more: a bare digit is not a request
    # an unsatisfied answer reopens the order (重办)
    second = await _resolved_order(door, alice, "新滩村的路灯也坏了")
    reply = await alice.says("未解决,路灯还是不亮")
    assert reply == f"很抱歉没有让您满意。工单 {second} 已转回承办部门重新办理,我们会跟进到底。"
    order = await models.Order.get(number=second)
    rating = await models.Rating.get(order_id=order.id)
    assert order.state == "reopened" and rating.resolved is False and rating.comment == "路灯还是不亮"


async def test_voice_menu_too_long_unsubscribe_and_other_kinds(door):
    alice = door.resident()
    voice = alice.simulator.voice_message("楼坝村的自来水停了两天了")
    assert "工单号 YK20261124-0001" in await alice.send(voice)
    assert (await models.InboundMessage.get(order__number="YK20261124-0001")).msg_type == "voice"
    assert "没能识别出文字" in await alice.send(alice.simulator.voice_message(None))
    assert "请直接用文字描述您要反映的问题" in await alice.event("CLICK", "REPORT")
    assert "使用方法" in await alice.event("CLICK", "SOMETHING_ELSE")
    video = {**alice.simulator.text_message("x"), "MsgType": "video", "MediaId": "v1", "ThumbMediaId": "t1"}
    del video["Content"]
    assert "暂时只能处理文字、语音、照片和位置" in await alice.send(video)
    passive = alice.simulator.event_message("LOCATION")
    passive.update(Latitude="28.6", Longitude="104.4", Precision="10")
    assert await alice.send(passive) is None  # periodic location reports are not conversation
    assert await alice.says("路灯" * 1500) == "内容太长了(最多 2000 字)。请修改后重新发送。"
    assert await alice.event("unsubscribe") is None
    assert (await models.Resident.get(openid=ALICE)).subscribed is False
    assert await models.Order.all().count() == 1


# ---------------------------------------------------------------------------------------------- crypto modes
# Each message mode (plain, compatible, safe) against each shape of callback: tests/integration/test_door_modes.py


# ---------------------------------------------------------------------------------------------- retries
async def _post_three_times_at_once(door: Door, chat: Chat, fields: dict) -> list[str]:
    params, body = chat.simulator.envelope(fields)
    responses = await asyncio.gather(*(door.client.post(f"{door.base}/wechat", params=params, content=body)
                                       for _ in range(3)))
    assert [r.status_code for r in responses] == [200, 200, 200]
    return [chat.simulator.read_reply(r.text) for r in responses]


async def test_a_retried_message_makes_one_order_and_three_identical_replies(door):
    alice = door.resident()
    fields = alice.simulator.text_message("楼坝村的路灯坏了好几天")
    replies = await _post_three_times_at_once(door, alice, fields)
    assert len(set(replies)) == 1 and "工单号 YK20261124-0001" in replies[0]
    assert await models.Order.all().count() == 1
    assert await models.InboundMessage.all().count() == 1
    # WeChat's last retry, later and with a fresh signature: still the same answer
    door.clock.advance(seconds=10)
    assert await alice.send(fields) == replies[0]
    # a retried cancel is not cancelled twice (the second would be refused and answer differently)
    cancel = alice.simulator.text_message("取消 YK20261124-0001")
    assert len(set(await _post_three_times_at_once(door, alice, cancel))) == 1
    assert await models.OrderEvent.filter(action="cancel").count() == 1


async def test_a_retry_after_the_first_delivery_died_answers_from_the_record_not_busy(door, store, monkeypatch):
    """The worker that took a message died after its transaction committed and before the store heard: the claim
    stays "pending". WeChat's retry must answer with the order that exists, not "busy" (the resident would send the
    message again and it would be filed twice). A message nobody recorded is still "busy", and nothing is written."""
    from bot import delivery

    monkeypatch.setattr(delivery, "REPLY_BUDGET_SECONDS", 0.5)  # the unrecorded case waits out the budget
    alice = door.resident()
    fields = alice.simulator.text_message("楼坝村的路灯坏了好几天")
    reply = await alice.send(fields)
    assert "工单号 YK20261124-0001" in reply
    claim = f"wx:msg:msg:{ALICE}:{fields['MsgId']}"
    await store.set(claim, delivery._PENDING, 60)  # as the dead delivery left it
    assert await alice.send(fields) == reply
    before = await counts()
    unrecorded = alice.simulator.text_message("新滩村的路灯也坏了")
    await store.set(f"wx:msg:msg:{ALICE}:{unrecorded['MsgId']}", delivery._PENDING, 60)
    assert await alice.send(unrecorded) == "系统繁忙,请稍后再试。"
    assert await counts() == before
    assert await models.Order.all().count() == 1


async def test_a_hanging_database_cannot_hold_a_waiting_retry_past_its_deadline(monkeypatch):
    from bot import delivery

    class Hangs:
        def values_list(self, *fields, flat=False):
            return asyncio.Event().wait()  # never answers

    monkeypatch.setattr(delivery.models.InboundMessage, "filter", lambda **where: Hangs())
    looked = delivery.Delivery._recorded_reply("msg:o_x:1", time.monotonic() + 0.1)
    assert await asyncio.wait_for(looked, timeout=5) is delivery._NO_REPLY


async def test_retries_are_deduplicated_by_the_database_when_the_store_is_down(settings, clock):
    dead_store = RedisStore("redis://127.0.0.1:1/0")
    try:
        async with open_door(settings, dead_store, clock) as door:
            alice = door.resident()
            replies = await _post_three_times_at_once(door, alice, alice.simulator.text_message("楼坝村的路灯坏了"))
            assert len(set(replies)) == 1 and "工单号 YK20261124-0001" in replies[0]
            assert await models.Order.all().count() == 1
            # without the store a photo cannot be held, but it still finds the open order
            door.clock.advance(hours=2)
            assert "照片已补充到工单 YK20261124-0001" in await alice.photo()
    finally:
        await dead_store.close()


async def test_the_rate_limit_answers_kindly_and_does_no_work(settings, store, clock):
    async with open_door(settings, store, clock, bot={"rate_limit_per_minute": 3}) as door:
        alice, bob = door.resident(), door.resident("o_bob_resident_00000000002")
        for i in range(3):
            assert "工单号" in await alice.says(f"楼坝村的路灯坏了第{i}盏")
        assert "太频繁" in await alice.says("新滩村的路灯也坏了")
        assert "工单号" in await bob.says("新滩村的路灯也坏了")  # per resident
        door.clock.advance(minutes=1)
        assert "工单号" in await alice.says("安富村的路灯也坏了")
        assert await models.Order.filter(resident__openid=ALICE).count() == 4


async def test_wechat_retries_do_not_count_against_the_rate_limit(settings, store, clock):
    async with open_door(settings, store, clock, bot={"rate_limit_per_minute": 2}) as door:
        alice = door.resident()
        first = alice.simulator.text_message("楼坝村的路灯坏了")
        reply = await alice.send(first)
        assert [await alice.send(first) for _ in range(3)] == [reply] * 3  # WeChat's three retries
        assert "工单号" in await alice.says("新滩村的路灯也坏了")  # the second message of the minute
        assert "太频繁" in await alice.says("安富村的路灯也坏了")  # the third
        assert await models.Order.filter(resident__openid=ALICE).count() == 2


async def test_a_database_outage_gets_a_friendly_answer_not_a_500(settings, store, clock):
    down = settings.with_overrides(database={"url": "postgres://postgres@127.0.0.1:1/sidan_down"})
    async with open_door(down, store, clock, demo=False) as door:
        alice = door.resident()
        fields = alice.simulator.text_message("楼坝村的路灯坏了好几天")
        assert await alice.send(fields) == "系统繁忙,请稍后再试。"
        assert await alice.event("subscribe") == "系统繁忙,请稍后再试。"
        # nothing is remembered for this message: WeChat's retry gets a fresh attempt, not the busy answer
        assert await store.get(f"wx:msg:msg:{ALICE}:{fields['MsgId']}") is None


# ---------------------------------------------------------------------------------------------- hostile input
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>'
    "<xml><ToUserName>gh</ToUserName><FromUserName>o_x</FromUserName><CreateTime>1</CreateTime>"
    "<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"
)


def _corrupt(body: str) -> str:
    start = body.index("<Encrypt><![CDATA[") + len("<Encrypt><![CDATA[")
    return body[:start] + "AAAAAAAAAAAAAAAAAAAAAAAA" + body[start + 24:]


ATTACKS = ["forged_signature", "stale_timestamp", "future_timestamp", "no_signature", "malformed_xml",
           "not_wechat_xml", "oversized", "billion_laughs", "external_entity", "wrong_aes_key",
           "corrupted_ciphertext", "forged_msg_signature", "dtd_inside_ciphertext"]


def _attack(door: Door, attack: str) -> tuple[dict, str, int]:
    """A request crafted for one attack, and the status it must get."""
    plain, safe = door.resident(), door.resident(mode="safe")
    params, body = plain.simulator.envelope(plain.simulator.text_message("楼坝村的路灯坏了好几天"))
    token = door.settings.wechat.token
    match attack:
        case "forged_signature":
            params["signature"] = sign("not-the-token", params["timestamp"], params["nonce"])
            return params, body, 403
        case "stale_timestamp" | "future_timestamp":
            shift = -301 if attack == "stale_timestamp" else 301
            timestamp = str(int(door.clock.now().timestamp()) + shift)
            params.update(timestamp=timestamp, signature=sign(token, timestamp, params["nonce"]))
            return params, body, 403
        case "no_signature":
            del params["signature"]
            return params, body, 403
        case "malformed_xml":
            return params, body[: len(body) // 2], 400
        case "not_wechat_xml":
            return params, "<xml><Content>no sender, no type</Content></xml>", 400
        case "oversized":
            return params, body.replace("路灯坏了好几天", "路灯" * 40_000), 413
        case "billion_laughs":
            return params, BILLION_LAUGHS, 400
        case "external_entity":
            return params, ('<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                            + body.replace("路灯坏了好几天", "&x;")), 400
        case "wrong_aes_key":
            intruder = door.resident(mode="safe", aes_key=OTHER_AES_KEY)
            params, body = intruder.simulator.envelope(intruder.simulator.text_message("楼坝村的路灯坏了"))
            return params, body, 400
        case "corrupted_ciphertext":
            params, body = safe.simulator.envelope(safe.simulator.text_message("楼坝村的路灯坏了"))
            body = _corrupt(body)
            encrypt = body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
            params["msg_signature"] = sign(token, params["timestamp"], params["nonce"], encrypt)  # signed garbage
            return params, body, 400
        case "forged_msg_signature":
            params, body = safe.simulator.envelope(safe.simulator.text_message("楼坝村的路灯坏了"))
            params["msg_signature"] = "0" * 40
            return params, body, 403
        case "dtd_inside_ciphertext":  # properly encrypted and signed, the bomb inside: checked after decryption
            encrypt = PrpCrypto(base64.b64decode(AES_KEY + "=")).encrypt(
                BILLION_LAUGHS.replace("o_x", ALICE), door.settings.wechat.appid).decode()
            params.update(encrypt_type="aes", msg_signature=sign(token, params["timestamp"], params["nonce"], encrypt))
            return params, to_xml({"ToUserName": "gh", "Encrypt": encrypt}), 400
    raise AssertionError(attack)


async def test_hostile_requests_are_refused_and_write_nothing(settings, store, clock):
    # compatible mode: the plaintext attacks reach the checks they are aimed at (safe mode refuses them all at once)
    async with open_door(settings, store, clock, wechat={"aes_key": AES_KEY, "encoding_mode": "compatible"},
                         demo=False) as door:
        for attack in ATTACKS:
            params, body, expected = _attack(door, attack)
            response = await door.client.post(f"{door.base}/wechat", params=params, content=body)
            assert response.status_code == expected, (attack, response.text)
            assert "error" in response.json(), attack
            assert await counts() == {"orders": 0, "messages": 0, "residents": 0, "events": 0, "outbox": 0}, attack
        # URL verification (GET) answers the echo only when signed
        timestamp, nonce = str(int(door.clock.now().timestamp())), "12345"
        params = {"signature": sign(door.settings.wechat.token, timestamp, nonce), "timestamp": timestamp,
                  "nonce": nonce, "echostr": "echo-5678"}
        ok = await door.client.get(f"{door.base}/wechat", params=params)
        assert ok.status_code == 200 and ok.text == "echo-5678"
        forged = await door.client.get(f"{door.base}/wechat", params={**params, "signature": "0" * 40})
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
        # the same door still serves an honest resident
        assert "有什么需要反映的事情" in await door.resident().says("你好")


# ---------------------------------------------------------------------------------------------- the real classifier
async def test_a_new_request_takes_the_classifier_path_and_stores_its_routing(settings, store, clock, trained_router):
    text = "楼坝村村口的路灯坏了一个星期,晚上走路很危险"
    prediction = trained_router.predict(text)
    async with open_door(settings, store, clock, classifier=trained_router) as door:
        reply = await door.resident().says(text)
        order = await models.Order.get(number="YK20261124-0001").prefetch_related("department")
    assert (order.predicted_category, order.predicted_department) == (prediction.category, prediction.department)
    assert order.confidence == pytest.approx(prediction.confidence, abs=1e-4)
    assert (order.category, order.department.code) == ("社会民生", "jianshe")  # confident: dispatched at once
    assert order.normalized_text and order.state == "dispatched"
    assert "分类:社会民生;承办部门:村镇建设办。" in reply
