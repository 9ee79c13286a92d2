"""The dialog without I/O: what a resident's message means, and the texts the bot answers with."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot import dialog
from bot.dialog import Kind, OrderView, Submitted, understand

NOW = datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc)  # 16:30 in Shanghai


@pytest.mark.parametrize("text, kind", [
    ("你好", Kind.GREETING),
    ("您好!", Kind.GREETING),
    ("在吗?", Kind.GREETING),
    ("有人吗？？", Kind.GREETING),
    ("谢谢啦", Kind.THANKS),
    ("好的，谢谢", Kind.THANKS),
    ("修好了,谢谢", Kind.THANKS),
    ("帮助", Kind.HELP),
    ("？", Kind.HELP),
    ("", Kind.HELP),
    ("我要反映", Kind.REPORT_HINT),
    ("你好，我想反映一个问题", Kind.REPORT_HINT),
    ("查询", Kind.MY_ORDERS),
    ("我的工单", Kind.MY_ORDERS),
    ("查一下工单进度", Kind.MY_ORDERS),
    ("评价", Kind.RATE_HINT),
    ("满意", Kind.RATE_HINT),  # nothing pending: not a request, not a rating
    ("补充", Kind.SUPPLEMENT),
    ("取消", Kind.CANCEL),
    ("[微笑]", Kind.UNCLEAR),
    ("12345", Kind.UNCLEAR),
    ("5", Kind.UNCLEAR),
    ("嗯?1", Kind.UNCLEAR),
    ("路灯坏了", Kind.NEW_REQUEST),
    ("你好，我家门口的路灯坏了三天了", Kind.NEW_REQUEST),
    ("取消低保是怎么回事啊我想问问", Kind.NEW_REQUEST),  # "取消" inside a request is not a cancel command
    ("5号楼的路灯坏了", Kind.NEW_REQUEST),
    ("不满意村里的垃圾处理,好几天没人收", Kind.NEW_REQUEST),
    ("我想查询一下低保政策怎么申请", Kind.NEW_REQUEST),  # "查询" of a policy is a request, not "my orders"
])
def test_intents_without_a_pending_survey(text, kind):
    assert understand(text).kind == kind


@pytest.mark.parametrize("text, score, resolved, comment", [
    ("5", 5, None, None),
    ("５分", 5, None, None),
    ("4分 修得很快", 4, None, "修得很快"),
    ("3，一般般", 3, None, "一般般"),
    ("满意", 5, None, None),
    ("非常满意!", 5, None, None),
    ("不满意,路灯还是不亮", 2, None, "路灯还是不亮"),
    ("非常不满意", 1, None, None),
    ("未解决", 2, False, "未解决"),
    ("没解决，灯还是不亮", 2, False, "灯还是不亮"),
    ("3 还是没解决", 3, False, "还是没解决"),
])
def test_replies_to_a_pending_survey_are_ratings(text, score, resolved, comment):
    intent = understand(text, pending_survey=True)
    assert (intent.kind, intent.score, intent.resolved, intent.comment) == (Kind.RATE, score, resolved, comment)


def test_a_new_request_is_still_a_request_while_a_survey_waits():
    assert understand("5号楼的路灯坏了", pending_survey=True).kind == Kind.NEW_REQUEST
    assert understand("6", pending_survey=True).kind == Kind.UNCLEAR
    assert understand("新滩村的自来水停了", pending_survey=True).kind == Kind.NEW_REQUEST


@pytest.mark.parametrize("text, kind, number", [
    ("YK20261124-0001", Kind.QUERY, "YK20261124-0001"),
    ("查一下 yk20261124－0007 怎么样了", Kind.QUERY, "YK20261124-0007"),  # full-width dash, lower case
    ("YK20261124 0002", Kind.QUERY, "YK20261124-0002"),
    ("YK202611240003", Kind.QUERY, "YK20261124-0003"),
    ("取消 YK20261124-0001", Kind.CANCEL, "YK20261124-0001"),
    ("取消YK20261124-0001 已经修好了", Kind.CANCEL, "YK20261124-0001"),
    ("撤销工单", Kind.CANCEL, None),
    ("补充 YK20261124-0004", Kind.SUPPLEMENT, "YK20261124-0004"),
])
def test_order_numbers_are_found_however_they_are_typed(text, kind, number):
    intent = understand(text)
    assert (intent.kind, intent.number) == (kind, number)


def test_the_order_prefix_comes_from_configuration():
    assert understand("AB20261124-0001", prefix="AB").number == "AB20261124-0001"
    assert understand("YK20261124-0001", prefix="AB").kind == Kind.NEW_REQUEST
    assert dialog.find_order_number("YK20261124-00011", "YK") is None  # five digits is not a number of ours


def test_deadlines_are_shown_in_township_time():
    assert dialog.format_deadline(NOW) == "11月24日 16:30 前"
    assert dialog.format_deadline(datetime(2026, 12, 31, 16, 5, tzinfo=timezone.utc)) == "1月1日 00:05 前"


def test_a_dispatched_order_reply_names_department_and_deadline():
    text = dialog.submitted_reply(Submitted("YK20261124-0001", "社会民生", "村镇建设办", NOW, 1, urgent=False))
    assert text.splitlines() == [
        "已收到您的诉求,工单号 YK20261124-0001。",
        "分类:社会民生;承办部门:村镇建设办。",
        "办理时限:11月24日 16:30 前。",
        "可以继续发照片或位置补充。",
        "发“我的工单”随时查看进度。",
    ]


def test_an_unsure_urgent_order_with_photo_and_location_reply():
    text = dialog.submitted_reply(Submitted("YK20261124-0002", "安全生产", None, None, 0.5, urgent=True, photos=2,
                                            located=True))
    assert "紧急事项" in text and "110/119/120" in text
    assert "网格员将在 0.5 小时内为您确认承办部门" in text
    assert "已一并附上2 张照片和位置。" in text and "可以继续发" not in text


def test_an_urgent_reply_claims_a_notification_only_when_one_was_queued():
    def urgent(notified, duty_phone="0831-7650110"):
        return dialog.submitted_reply(Submitted("XA20261124-0003", "安全生产", "应急办", NOW, 0.5, urgent=True,
                                                urgent_notified=notified, duty_phone=duty_phone))

    told = urgent(2)
    assert "已通知值班人员" in told and "110/119/120" in told
    for nobody in (urgent(0), urgent(None)):
        assert "请立即拨打 110/119/120,并联系乡镇值班电话 0831-7650110" in nobody
        assert "通知" not in nobody and "报告" not in nobody  # nothing was queued: nobody is said to know
    assert "请立即拨打 110/119/120,并联系乡镇值班室" in urgent(0, duty_phone=None)
    assert "110" not in dialog.submitted_reply(Submitted("XA20261124-0004", "社会民生", None, None, 1, urgent=False))


def _view(state: str, **overrides) -> OrderView:
    values = dict(number="YK20261124-0001", text="楼坝村村口的路灯坏了一个星期,晚上很黑", state=state,
                  category="社会民生", department="村镇建设办", submitted_at=NOW, deadline=NOW,
                  last_action="dispatch", last_at=NOW)
    return OrderView(**{**values, **overrides})


def test_status_offers_what_the_resident_can_do_next():
    dispatched = dialog.status_reply(_view("dispatched"))
    assert dispatched.splitlines()[0] == "工单 YK20261124-0001:已派单"
    assert "最新进展:11月24日 16:30 派单" in dispatched and "取消 YK20261124-0001" in dispatched
    resolved = dialog.status_reply(_view("resolved", last_action="resolve", last_note="已更换灯泡"))
    assert "办结——已更换灯泡" in resolved and "请回复 1–5 分" in resolved and "取消" not in resolved
    accepted = dialog.status_reply(_view("accepted", last_action="accept"))
    assert "办理时限:11月24日 16:30 前" in accepted and "取消" not in accepted


def test_my_orders_lists_recent_orders_with_their_state():
    text = dialog.my_orders_reply([_view("dispatched"), _view("verified", number="YK20261123-0009")], total=7)
    lines = text.splitlines()
    assert lines[0] == "您的工单(共 7 件,显示最近 2 件):"
    assert lines[1] == "· YK20261124-0001 楼坝村村口的路灯坏了一个星…【已派单】"
    assert lines[2].endswith("【已评价】")
    assert dialog.my_orders_reply([], 0).startswith("您还没有提交过诉求")


def test_rating_replies_follow_the_outcome():
    assert "已转回承办部门重新办理" in dialog.rated_reply("YK1", 2, "reopened", escalated=False, next_pending=None)
    assert "已转交镇督办" in dialog.rated_reply("YK1", 1, "verified", escalated=True, next_pending=None)
    thanks = dialog.rated_reply("YK1", 5, "verified", escalated=False, next_pending="YK2")
    assert "5 分" in thanks and "您还有工单 YK2 待评价" in thanks
