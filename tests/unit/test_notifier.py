"""The notifier without a network: each outbox kind's text, the channel chosen, WeChat's answers translated."""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from bot.notifier import (
    KIND_LABELS, THING_CHARS, Contact, Notifier, UnknownKind, clip, field_value, in_service_window, render,
)
from bot.wechat_api import WeChatAPIError, WeChatUnavailable
from orders.clock import SHANGHAI, FrozenClock
from orders.dispatcher import ChannelDown, DeliveryError, Undeliverable
from tests.support import make_settings

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=SHANGHAI)
BASE = {"number": "YK20261124-0007", "state": "dispatched", "urgency": "操心事", "category": "社会民生",
        "text": "村口的路灯坏了一个星期了,晚上走路看不见,老人小孩都怕摔"}

EXAMPLES = {
    "accepted": {"to": "resident", "department": "村镇建设办"},
    "survey": {"to": "resident", "result": "已更换灯泡,恢复照明", "round": 0},
    "survey_reminder": {"to": "resident", "result": "已更换灯泡", "round": 0},
    "invalidated": {"to": "resident", "code": "out_of_remit", "code_label": "不属于本镇受理范围",
                    "reason": "电费问题请拨打供电公司 95598,他们会派人处理。"},
    "notify_dispatched": {"to": "staff", "department": "村镇建设办"},
    "notify_reopened": {"to": "staff", "department": "村镇建设办", "reason": "群众评价不满意:灯还是不亮"},
    "notify_cancelled": {"to": "staff", "department": "村镇建设办"},
    "notify_invalidated": {"to": "staff", "department": "村镇建设办", "code": "duplicate", "code_label": "重复反映",
                           "reason": "与工单 YK20261124-0003 是同一件事,请关注那一单。"},
    "notify_dispatch_needed": {"to": "staff", "confidence": 0.41},
    "notify_urgent_report": {"to": "staff", "urgency": "急难事"},
    "notify_escalated": {"to": "staff", "level": 1, "from_level": 0, "level_name": "村委",
                         "reason": "超过接单时限(11-24 10:00)仍未接单", "overdue": True},
    "notify_extension_requested": {"to": "staff", "days": 3, "reason": "等配件"},
    "notify_delivery_failed": {"to": "staff", "failed_kind": "survey", "failed_to": "resident", "attempts": 8},
    "notify_resident_note": {"to": "staff", "department": "村镇建设办", "note": "水管在二组老井旁边"},
    "resident_progress": {"to": "resident", "department": "村镇建设办", "note": "电工已到现场,正在更换灯泡"},
    "extension_decided": {"to": "resident", "department": "村镇建设办", "approved": True, "days": 3,
                          "resolve_deadline": "2026-11-27T10:00:00+00:00"},
    "notify_extension_decided": {"to": "staff", "approved": True, "days": 3,
                                 "resolve_deadline": "2026-11-27T10:00:00+00:00", "reason": "同意"},
    "notify_hotspot": {"to": "staff", "village": "楼坝村", "count": 3, "hours": 6, "terms": ["路灯", "不亮"],
                       "numbers": ["YK20261124-0007", "YK20261124-0008", "YK20261124-0009"],
                       "summary": "楼坝村 3 件:路灯、不亮"},
    "resident_merged": {"to": "resident", "primary": "YK20261124-0003", "department": "村镇建设办",
                        "reason": "与工单 YK20261124-0003 反映同一事项"},
    "notify_merged": {"to": "staff", "department": "村镇建设办", "primary": "YK20261124-0003"},
}


def test_every_kind_the_use_cases_write_has_a_text_with_the_order_number():
    assert set(EXAMPLES) == set(KIND_LABELS)
    for kind, extra in EXAMPLES.items():
        rendered = render(kind, {**BASE, **extra})
        assert "YK20261124-0007" in rendered.text, kind
        assert rendered.title and rendered.remark and len(rendered.text) < 400, kind


def test_the_survey_carries_the_result_and_says_how_to_answer():
    text = render("survey", {**BASE, **EXAMPLES["survey"]}).text
    assert "已办结" in text and "已更换灯泡,恢复照明" in text
    assert "1–5" in text and "5 很满意" in text and "未解决" in text


def test_texts_to_residents_are_warm_and_quote_a_short_summary():
    text = render("accepted", {**BASE, **EXAMPLES["accepted"]}).text
    assert text.startswith("您好") and "村镇建设办" in text and f"“{BASE['text']}”" in text
    long = render("accepted", {**BASE, "text": "路灯" * 40, "department": "村镇建设办"}).text
    assert f"“{'路灯' * 14}路…”" in long  # at most 30 characters of the request


def test_an_invalidated_order_tells_the_resident_why_and_what_to_do_instead():
    text = render("invalidated", {**BASE, **EXAMPLES["invalidated"]}).text
    assert text.startswith("您好") and "不予受理" in text and "不属于本镇受理范围" in text
    assert "拨打供电公司 95598" in text  # the staff's plain words, whole
    staff = render("notify_invalidated", {**BASE, **EXAMPLES["notify_invalidated"]}).text
    assert "无需再办理" in staff and "重复反映" in staff


def test_escalation_and_overdue_read_differently():
    step = render("notify_escalated", {**BASE, **EXAMPLES["notify_escalated"]}).text
    assert "已升级至村委督办" in step and "接单时限" in step
    marked = render("notify_escalated", {**BASE, "level": 2, "from_level": 2, "level_name": "乡镇",
                                         "reason": "已逾期:超过调解时限", "overdue": True}).text
    assert marked.startswith("【逾期督办】") and "乡镇" in marked


def test_an_alert_names_what_failed_and_asks_for_a_phone_call():
    text = render("notify_delivery_failed", {**BASE, **EXAMPLES["notify_delivery_failed"]}).text
    assert "办结回访" in text and "8 次" in text and "电话联系群众" in text


def test_a_residents_note_reaches_staff_with_the_words_and_the_request():
    text = render("notify_resident_note", {**BASE, **EXAMPLES["notify_resident_note"]}).text
    assert text.startswith("【群众补充】工单 YK20261124-0007") and "水管在二组老井旁边" in text and "原诉求:“村口" in text


def test_progress_and_extension_tell_the_resident_the_note_and_the_new_deadline_in_local_time():
    progress = render("resident_progress", {**BASE, **EXAMPLES["resident_progress"]})
    assert progress.text.startswith("您好") and "有新进展" in progress.text
    assert "村镇建设办:电工已到现场,正在更换灯泡" in progress.text
    extension = render("extension_decided", {**BASE, **EXAMPLES["extension_decided"]})
    assert "延期 3 天" in extension.text and "11月27日 18:00 前办结" in extension.text  # Shanghai time
    assert extension.detail == "新的办结期限:11月27日 18:00"
    approved = render("notify_extension_decided", {**BASE, **EXAMPLES["notify_extension_decided"]}).text
    assert approved.startswith("【延期已批准】") and "11月27日 18:00" in approved
    denied = render("notify_extension_decided", {**BASE, "approved": False, "days": 3, "reason": "配件本周能到"}).text
    assert denied.startswith("【延期未批准】") and "配件本周能到" in denied and "原期限" in denied


def test_an_unknown_kind_is_refused():
    with pytest.raises(UnknownKind):
        render("notify_something_new", BASE)


def test_clip_keeps_short_text_and_marks_cut_text():
    assert clip("路灯 坏了\n", 10) == "路灯 坏了"
    assert clip("一二三四五六七八九十", 5) == "一二三四…" and clip(None, 5) == ""


def test_the_48_hour_window():
    assert in_service_window(NOW - timedelta(hours=47), NOW)
    assert not in_service_window(NOW - timedelta(hours=48), NOW)
    assert not in_service_window(None, NOW)


# ---------------------------------------------------------------- channels
class FakeClient:
    def __init__(self, errors: list[Exception] | None = None) -> None:
        self.calls: list[tuple[str, tuple, dict]] = []
        self.errors = list(errors or [])

    async def _call(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))
        if self.errors:
            raise self.errors.pop(0)
        return {"errcode": 0}

    async def send_text(self, *args, **kwargs):
        return await self._call("text", *args, **kwargs)

    async def send_template(self, *args, **kwargs):
        return await self._call("template", *args, **kwargs)

    async def send_subscribe(self, *args, **kwargs):
        return await self._call("subscribe", *args, **kwargs)


def notifier(client: FakeClient, contact: Contact | None, **wechat: str) -> Notifier:
    async def lookup(openid: str) -> Contact | None:
        return contact

    settings = make_settings("sqlite://:memory:", wechat=wechat) if wechat else make_settings("sqlite://:memory:")
    return Notifier(client, settings, FrozenClock(NOW), contact=lookup)


def message(kind: str, recipient: str = "oResident1") -> SimpleNamespace:
    return SimpleNamespace(kind=kind, recipient=recipient, payload={**BASE, **EXAMPLES[kind]})


async def test_a_resident_who_wrote_recently_gets_a_customer_service_text():
    client = FakeClient()
    await notifier(client, Contact(NOW - timedelta(hours=3))).send(message("survey"))
    [(name, args, _)] = client.calls
    assert name == "text" and args[0] == "oResident1" and "YK20261124-0007" in args[1]


async def test_outside_the_window_the_survey_is_a_template_that_opens_the_survey_page():
    client = FakeClient()
    await notifier(client, Contact(NOW - timedelta(days=5))).send(message("survey"))
    [(name, args, kwargs)] = client.calls
    assert name == "template" and args[0] == "oResident1" and args[1] == "SURVEY_TEMPLATE"
    assert args[2]["keyword1"] == "YK20261124-0007" and "已更换灯泡" in args[2]["keyword2"]
    assert kwargs["miniprogram"]["pagepath"] == "pages/survey/index?number=YK20261124-0007"


async def test_other_resident_notices_use_the_notify_template():
    client = FakeClient()
    await notifier(client, None).send(message("accepted"))
    [(name, args, _)] = client.calls
    assert name == "template" and args[1] == "NOTIFY_TEMPLATE"


async def test_an_invalidation_goes_like_the_survey_text_in_the_window_template_outside_it():
    inside = FakeClient()
    await notifier(inside, Contact(NOW - timedelta(hours=3))).send(message("invalidated"))
    [(name, args, _)] = inside.calls
    assert name == "text" and "95598" in args[1]
    outside = FakeClient()
    await notifier(outside, Contact(NOW - timedelta(days=3))).send(message("invalidated"))
    [(name, args, kwargs)] = outside.calls
    assert name == "template" and args[1] == "NOTIFY_TEMPLATE"
    assert "95598" in args[2]["keyword2"] and "不予受理" in args[2]["first"]  # what to do instead, not the request
    assert kwargs["miniprogram"]["pagepath"] == "pages/orders/detail?number=YK20261124-0007"


async def test_when_wechat_says_the_window_closed_the_template_follows_at_once():
    client = FakeClient([WeChatAPIError(45015, "response out of time limit")])
    await notifier(client, Contact(NOW - timedelta(hours=1))).send(message("survey"))
    assert [name for name, _, _ in client.calls] == ["text", "template"]


async def test_staff_get_a_subscribe_message_within_its_field_limits():
    client = FakeClient()
    await notifier(client, None).send(message("notify_dispatched", "demo-dept_staff-jianshe"))
    [(name, args, kwargs)] = client.calls
    assert name == "subscribe" and args[0] == "demo-dept_staff-jianshe"
    data = args[2]
    assert data["character_string1"] == "YK20261124-0007"
    assert all(len(data[key]) <= THING_CHARS for key in ("thing2", "thing3"))
    assert data["time4"] == "2026-11-24 15:00"  # Shanghai time
    assert kwargs["page"] == "pages/orders/detail?number=YK20261124-0007"


async def test_a_staff_notice_written_before_masking_still_goes_out_masked_and_a_residents_own_words_do_not():
    client = FakeClient()
    staff = SimpleNamespace(kind="notify_reopened", recipient="demo-dept_staff-jianshe",
                            payload={**BASE, **EXAMPLES["notify_reopened"], "text": "13912345678路灯坏了",
                                     "reason": "群众评价不满意:请打0871-1234567"})
    await notifier(client, None).send(staff)
    await notifier(client, Contact(NOW - timedelta(hours=1))).send(
        SimpleNamespace(kind="accepted", recipient="oResident1",
                        payload={**BASE, **EXAMPLES["accepted"], "text": "13912345678路灯坏了"}))
    [(_, staff_args, _), (_, resident_args, _)] = client.calls
    assert staff_args[2]["thing3"] == "139****5678路灯坏了"
    assert "13912345678" in resident_args[1]  # to the resident who wrote it


async def test_wechat_answers_become_the_dispatchers_terms():
    with pytest.raises(ChannelDown):
        await notifier(FakeClient([WeChatUnavailable("HTTP 502")]), None).send(message("accepted"))
    with pytest.raises(Undeliverable):
        await notifier(FakeClient([WeChatAPIError(43004, "require subscribe")]), None).send(message("accepted"))
    with pytest.raises(DeliveryError) as retry:
        await notifier(FakeClient([WeChatAPIError(45009, "api freq out of limit")]), None).send(message("accepted"))
    assert not isinstance(retry.value, (ChannelDown, Undeliverable))


async def test_an_unfollowed_resident_outside_the_window_is_undeliverable_without_a_call():
    client = FakeClient()
    with pytest.raises(Undeliverable):
        await notifier(client, Contact(None, subscribed=False)).send(message("survey"))
    assert client.calls == []


async def test_a_row_without_recipient_or_with_an_unknown_kind_is_undeliverable():
    client = FakeClient()
    with pytest.raises(Undeliverable):
        await notifier(client, None).send(SimpleNamespace(kind="survey", recipient=None, payload=BASE))
    with pytest.raises(Undeliverable):
        await notifier(client, None).send(SimpleNamespace(kind="nope", recipient="o1", payload=BASE))
    assert client.calls == []


async def test_without_a_mini_program_templates_link_nowhere_and_staff_notices_are_undeliverable():
    client = FakeClient()
    await notifier(client, Contact(NOW - timedelta(days=5)), miniapp_appid="").send(message("survey"))
    [(name, args, kwargs)] = client.calls
    assert name == "template" and args[1] == "SURVEY_TEMPLATE" and not kwargs.get("miniprogram")
    # the survey opens the workbench's survey page on this server instead
    assert kwargs["url"] == f"{make_settings('sqlite://:memory:').app.public_url}/m/survey/YK20261124-0007"
    with pytest.raises(Undeliverable) as error:
        await notifier(client, None, miniapp_appid="").send(message("notify_dispatched", "demo-dept_staff-jianshe"))
    assert "miniapp_appid" in str(error.value)
    assert len(client.calls) == 1  # no subscribe message was attempted


# ---------------------------------------------------------------- template fields as configuration (issue #16)
def staff_message(kind: str = "notify_dispatched", channel: str | None = "official_account") -> SimpleNamespace:
    payload = {**BASE, **EXAMPLES[kind]}
    if channel:
        payload["channel"] = channel
    return SimpleNamespace(kind=kind, recipient="oStaffOfficialAccount", payload=payload)


def test_a_field_value_is_cut_to_what_its_kind_holds():
    long = "村口的路灯坏了一个星期了,晚上走路看不见,老人小孩都怕摔"
    assert field_value("thing12", long) == long[:19] + "…"
    assert field_value("character_string3", "A" * 40) == "A" * 32  # a code is cut, never given an ellipsis
    assert field_value("phrase4", "已办结待评价") == "已办结待…"
    assert field_value("keyword2", long) == long and field_value("first", long) == long  # classic: no limit


async def test_resident_templates_fill_the_field_names_configured_for_the_account():
    client = FakeClient()
    fields = {"title": "thing1", "number": "character_string2", "detail": "thing3", "time": "time4"}
    await notifier(client, Contact(NOW - timedelta(days=5)), survey_template_fields=fields).send(message("survey"))
    [(name, args, _)] = client.calls
    assert name == "template" and args[1] == "SURVEY_TEMPLATE"
    assert args[2] == {"thing1": "您的诉求已办结,请评价", "character_string2": "YK20261124-0007",
                       "thing3": "已更换灯泡,恢复照明", "time4": "2026-11-24 15:00"}


async def test_staff_bound_to_the_official_account_get_its_staff_template_linking_to_the_workbench():
    client = FakeClient()
    settings = make_settings("sqlite://:memory:", app={"public_url": "https://sidan.example.gov.cn"},
                             wechat={"staff_template_id": "tmpl-staff", "miniapp_appid": ""})
    await Notifier(client, settings, FrozenClock(NOW)).send(staff_message())  # no mini-program needed
    [(name, args, kwargs)] = client.calls
    assert name == "template" and args[0] == "oStaffOfficialAccount" and args[1] == "tmpl-staff"
    assert args[2]["character_string1"] == "YK20261124-0007" and args[2]["thing2"] == "新工单待接单"
    assert len(args[2]["thing3"]) <= THING_CHARS and args[2]["time4"] == "2026-11-24 15:00"
    assert kwargs["url"] == "https://sidan.example.gov.cn/m/orders/YK20261124-0007"
    assert not kwargs.get("miniprogram")


async def test_mini_program_staff_get_its_own_template_once_one_is_configured():
    client = FakeClient()
    await notifier(client, None, miniapp_notify_template_id="tmpl-subscribe",
                   miniapp_notify_template_fields="number=character_string9,title=thing8").send(
        staff_message(channel="miniapp"))
    [(name, args, kwargs)] = client.calls
    assert name == "subscribe" and args[1] == "tmpl-subscribe"
    assert args[2] == {"character_string9": "YK20261124-0007", "thing8": "新工单待接单"}
    assert kwargs["page"] == "pages/orders/detail?number=YK20261124-0007"


def test_a_merged_order_s_resident_hears_whom_it_follows_on_their_own_number():
    merged = render("resident_merged", {**BASE, **EXAMPLES["resident_merged"]})
    assert "YK20261124-0007" in merged.text and "与工单 YK20261124-0003 合并办理" in merged.text
    assert "由村镇建设办办理" in merged.text and "请您对工单 YK20261124-0007 评价" in merged.text
    accepted = render("accepted", {**BASE, "to": "resident", "department": "村镇建设办",
                                   "primary": "YK20261124-0003"})
    assert "工单 YK20261124-0007)(与工单 YK20261124-0003 合并办理)已由村镇建设办接单" in accepted.text
    survey = render("survey", {**BASE, **EXAMPLES["survey"], "primary": "YK20261124-0003"})
    assert "(与工单 YK20261124-0003 合并办理)已办结" in survey.text
    assert "合并办理" not in render("accepted", {**BASE, **EXAMPLES["accepted"]}).text
