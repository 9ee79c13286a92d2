"""Outbox rows → WeChat messages: the Sender the outbox dispatcher uses.

Each outbox kind becomes a short, warm Chinese message. The channel follows WeChat's rules:
- a resident who wrote to us in the last 48 hours gets a customer-service message (plain text);
- outside that window, a template message (the survey template links to the mini-program survey page);
- staff who bound the official account get its template message (linking to the workbench), staff bound only
  through the mini-program a subscribe message that opens the order (the row's payload "channel" says which); with
  personal data masked (orders.privacy): WeChat carries it, and the staff who handle the order read the number in
  the order itself.
Which field of a template carries what is configuration (wechat.*_template_fields: role → field name); each value is
cut to what WeChat accepts in a field of that kind (thing: 20 characters, …).
WeChat's answers are translated into the dispatcher's terms: the channel is down (retry, the batch waits), this
message failed (retry), or it can never be delivered (dead at once, the supervisor is alerted).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.wechat_api import WeChatAPIError, WeChatClient, WeChatUnavailable
from orders.clock import Clock, local
from orders.config import Settings, Template
from orders.dispatcher import ChannelDown, DeliveryError, Undeliverable
from orders.privacy import redact_all
from orders.staff_channels import OFFICIAL_ACCOUNT

# WeChat lets us answer freely for 48 hours after the resident's last message; keep a margin for clock skew.
SERVICE_WINDOW = timedelta(hours=48) - timedelta(minutes=5)
OUT_OF_WINDOW_ERRCODES = {45015, 45047}  # response out of time limit / too many replies: use a template
PERMANENT_ERRCODES = {
    40003,  # invalid openid
    40036,  # invalid template size
    40037,  # invalid template_id
    43004,  # the user does not follow the account
    43101,  # the user refused subscribe messages
    47003,  # template argument invalid
}
SUMMARY_CHARS = 30
THING_CHARS = 20  # subscribe messages: a "thing" value holds at most 20 characters
# The most characters WeChat accepts in a field, by the kind its name starts with (thing1, character_string2, …);
# the classic first/keyword1/remark fields have no such limit.
FIELD_LIMITS = {"thing": THING_CHARS, "character_string": 32, "number": 32, "letter": 32, "phrase": 5, "symbol": 5,
                "name": 10}

SURVEY_PAGE = "pages/survey/index?number={number}"
ORDER_PAGE = "pages/orders/detail?number={number}"
STAFF_ORDER_LINK = "{public_url}/m/orders/{number}"  # the staff workbench (a web page opened inside WeChat)
RESIDENT_SURVEY_LINK = "{public_url}/m/survey/{number}"  # the workbench's survey page, when there is no mini-program
# The template's second line: what the resident most needs to read (the result, what to do instead), else the request.
TEMPLATE_DETAIL = {"survey": "result", "survey_reminder": "result", "invalidated": "reason",
                   "resident_progress": "note", "notify_hotspot": "summary", "resident_merged": "reason"}

KIND_LABELS = {
    "accepted": "接单告知",
    "survey": "办结回访",
    "survey_reminder": "回访提醒",
    "invalidated": "不予受理告知",
    "resident_progress": "办理进展",
    "extension_decided": "延期告知",
    "resident_merged": "合并办理告知",
    "notify_dispatched": "新工单",
    "notify_reopened": "重办工单",
    "notify_cancelled": "工单取消",
    "notify_invalidated": "工单不予受理",
    "notify_dispatch_needed": "待派单",
    "notify_urgent_report": "急难事报告",
    "notify_escalated": "督办升级",
    "notify_extension_requested": "延期申请",
    "notify_delivery_failed": "消息未送达",
    "notify_resident_note": "群众补充",
    "notify_extension_decided": "延期审批结果",
    "notify_hotspot": "热点诉求",
    "notify_merged": "工单合并",
}


class UnknownKind(ValueError):
    pass


@dataclass(frozen=True)
class Rendered:
    title: str  # a few words: the subscribe/template headline
    text: str  # the whole message, as a customer-service text
    remark: str  # what to do next, for the template's last line
    detail: str | None = None  # the template's second line, when it is not a payload field (TEMPLATE_DETAIL)


def clip(text: str | None, limit: int) -> str:
    cleaned = " ".join(str(text or "").split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def field_value(field: str, value: str) -> str:
    """`value` as a template field named `field` accepts it: cut to its kind's length (a code is cut, not marked)."""
    kind = field.rstrip("0123456789")
    limit = FIELD_LIMITS.get(kind)
    if limit is None:
        return value
    return value[:limit] if kind in ("character_string", "number", "letter", "symbol") else clip(value, limit)


def deadline_text(value: Any) -> str | None:
    """An ISO moment from a payload as the resident reads it: "12月10日 18:00"."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    moment = local(moment)
    return f"{moment.month}月{moment.day}日 {moment:%H:%M}"


def render(kind: str, payload: dict[str, Any]) -> Rendered:
    """The message for one outbox row (pure; every kind the use cases write has a text)."""
    number = payload.get("number") or "(无编号)"
    summary = clip(payload.get("text"), SUMMARY_CHARS)
    quoted = f"“{summary}”" if summary else ""
    department = payload.get("department") or "相关部门"
    # 合并工单: a follower's resident hears its primary's steps on their own number
    together = f"(与工单 {payload['primary']} 合并办理)" if payload.get("primary") else ""
    match kind:
        case "accepted":
            text = (f"您好!您反映的{quoted}(工单 {number}){together}已由{department}接单,我们会抓紧办理,"
                    "有进展会告诉您。")
            return Rendered("您的诉求已接单", text, "有进展会及时告诉您")
        case "resident_merged":
            primary = payload.get("primary") or "-"
            who = f",由{payload['department']}办理" if payload.get("department") else ""
            why = clip(payload.get("reason"), 100)
            text = (f"您好!您反映的{quoted}(工单 {number})和其他群众反映的是同一件事,已与工单 {primary} 合并办理"
                    f"{who}。\n说明:{why}\n办理进展和结果会继续告诉您,办结后也请您对工单 {number} 评价。")
            return Rendered("您的诉求已合并办理", text, f"随工单 {primary} 一并办理")
        case "survey":
            result = clip(payload.get("result"), 200) or "已办理完毕"
            ask = "请给这次办理打个分:直接回复 1–5(5 分最满意),可以附一句意见,例如“5 很满意”;问题没解决请回复“未解决”。"
            text = f"您好!您反映的{quoted}(工单 {number}){together}已办结。\n办理结果:{result}\n{ask}谢谢您!"
            return Rendered("您的诉求已办结,请评价", text, "回复 1–5 分评价,没解决请回复“未解决”")
        case "survey_reminder":
            text = (f"您好!工单 {number}{quoted}办结一天了,还没收到您的评价。回复 1–5 分就好(5 分最满意);"
                    "没解决请回复“未解决”,我们会重新办理。")
            return Rendered("还差您的一个评价", text, "回复 1–5 分评价,没解决请回复“未解决”")
        case "invalidated":
            why = payload.get("code_label") or "不属于受理范围"
            advice = clip(payload.get("reason"), 200)
            text = (f"您好!您反映的{quoted}(工单 {number})经核实不予受理(原因:{why})。\n{advice}\n"
                    "如有疑问或情况有变化,可以直接回复我们。")
            return Rendered(f"您的诉求不予受理:{why}", text, clip(advice, 60) or "如有疑问可以直接回复我们")
        case "resident_progress":
            note = clip(payload.get("note"), 300)
            text = f"您好!您反映的{quoted}(工单 {number}){together}有新进展:\n{department}:{note}\n办结后会请您评价。"
            return Rendered("您的诉求有新进展", text, "办结后会请您评价")
        case "extension_decided":
            deadline = deadline_text(payload.get("resolve_deadline")) or "新的期限"
            text = (f"您好!您反映的{quoted}(工单 {number}){together}办理需要多一些时间,经批准延期 {payload.get('days')} 天,"
                    f"将在 {deadline} 前办结。给您添麻烦了,谢谢理解。")
            return Rendered("您的诉求办理期限延长", text, "办结后会请您评价", detail=f"新的办结期限:{deadline}")
        case "notify_dispatched":
            label = "·".join(part for part in (payload.get("category"), payload.get("urgency")) if part)
            text = f"【新工单】{number}({label})\n{quoted}\n请尽快接单(一小时介入)。"
            return Rendered("新工单待接单", text, "请在一小时内接单")
        case "notify_reopened":
            reason = clip(payload.get("reason"), 100) or "群众评价不满意"
            text = f"【重办】{number} 已退回{department}重新办理。\n{reason}\n原诉求:{quoted}"
            return Rendered("群众不满意,请重办", text, "请重新办理并及时办结")
        case "notify_cancelled":
            text = f"【已取消】工单 {number}{quoted}已由群众取消,无需再办理。"
            return Rendered("工单已取消", text, "无需再办理")
        case "notify_merged":
            text = f"【已合并】工单 {number}{quoted}已合并到工单 {payload.get('primary') or '-'},随主工单办理,无需再单独办理。"
            return Rendered("工单已合并", text, "随主工单办理")
        case "notify_invalidated":
            why = payload.get("code_label") or "不予受理"
            text = f"【不予受理】工单 {number}{quoted}已由派单人员关闭({why}),无需再办理。"
            return Rendered("工单不予受理", text, "无需再办理")
        case "notify_dispatch_needed":
            confidence = payload.get("confidence")
            sure = f"(置信度 {float(confidence):.0%})" if isinstance(confidence, int | float) else ""
            text = f"【待派单】{number} 系统拿不准该派给哪个部门{sure},请您看一下并派单:\n{quoted}"
            return Rendered("有工单等您派单", text, "请确认分类和部门后派单")
        case "notify_urgent_report":
            text = f"【急难事·十分钟报告】{number}\n{quoted}\n请立即关注并调度处置。"
            return Rendered("急难事,请立即处置", text, "十分钟报告制:请立即关注")
        case "notify_resident_note":
            note = clip(payload.get("note"), 200)
            text = f"【群众补充】工单 {number} 的反映人补充:\n{note}\n原诉求:{quoted}"
            return Rendered("反映人补充了情况", text, "请在小程序中查看")
        case "notify_escalated":
            level_name = payload.get("level_name") or "乡镇"
            reason = clip(payload.get("reason"), 80)
            if payload.get("from_level") == payload.get("level"):
                text = f"【逾期督办】工单 {number} {reason}。当前督办层级:{level_name}。\n{quoted}"
                return Rendered("工单逾期,请督办", text, f"督办层级:{level_name}")
            text = f"【督办升级】工单 {number} 已升级至{level_name}督办:{reason}。\n{quoted}"
            return Rendered(f"工单升级至{level_name}", text, "请跟进督办")
        case "notify_extension_requested":
            days = payload.get("days")
            reason = clip(payload.get("reason"), 80)
            text = f"【延期申请】工单 {number} 申请延期 {days} 天:{reason}。请在小程序中审批。"
            return Rendered("延期申请待审批", text, "请在小程序中审批")
        case "notify_extension_decided":
            days = payload.get("days")
            reason = clip(payload.get("reason"), 80)
            if payload.get("approved"):
                deadline = deadline_text(payload.get("resolve_deadline")) or "-"
                text = f"【延期已批准】工单 {number} 延期 {days} 天,新的办结期限 {deadline}。{reason}"
                return Rendered("延期申请已批准", text, f"请在 {deadline} 前办结")
            text = f"【延期未批准】工单 {number} 申请延期 {days} 天未获批准:{reason}。请按原期限办结。"
            return Rendered("延期申请未批准", text, "请按原期限办结")
        case "notify_hotspot":
            village = payload.get("village") or "同一村"
            count = payload.get("count")
            terms = "、".join(str(term) for term in (payload.get("terms") or [])[:5])
            numbers = [str(n) for n in payload.get("numbers") or []]
            more = "等" if isinstance(count, int) and count > len(numbers) else ""
            text = (f"【热点诉求】{village} {payload.get('hours')} 小时内有 {count} 件相近的反映"
                    f"{f'({terms})' if terms else ''}:{'、'.join(numbers)}{more}。\n"
                    "可能是同一件事,请统筹调度,避免重复派单。")
            return Rendered(f"热点诉求:{village}{count}件", text, "请在一屏总览中查看")
        case "notify_delivery_failed":
            what = KIND_LABELS.get(str(payload.get("failed_kind")), "通知")
            who = "群众" if payload.get("failed_to") == "resident" else "工作人员"
            text = (f"【消息未送达】工单 {number} 的“{what}”消息发送 {payload.get('attempts')} 次仍未送达,"
                    f"请电话联系{who}。")
            return Rendered("消息未送达,请电话联系", text, f"请电话联系{who}")
    raise UnknownKind(f"no message text for outbox kind {kind!r}")


@dataclass(frozen=True)
class Contact:
    last_message_at: datetime | None
    subscribed: bool = True


async def resident_contact(openid: str) -> Contact | None:
    from orders.models import Resident

    resident = await Resident.get_or_none(openid=openid)
    return None if resident is None else Contact(resident.last_message_at, resident.subscribed)


def in_service_window(last_message_at: datetime | None, now: datetime) -> bool:
    return last_message_at is not None and now - last_message_at < SERVICE_WINDOW


class Notifier:
    """The outbox Sender: render, choose the channel, send, translate WeChat's answer."""

    def __init__(
        self,
        client: WeChatClient,
        settings: Settings,
        clock: Clock | None = None,
        contact: Callable[[str], Awaitable[Contact | None]] = resident_contact,
    ) -> None:
        self.client = client
        self.wechat = settings.wechat
        self.public_url = settings.app.public_url
        self.clock = clock or Clock()
        self.contact = contact

    async def send(self, message: Any) -> None:
        payload = dict(message.payload or {})
        if payload.get("to") == "staff":  # masked when written; rows written before that are masked here
            payload = redact_all(payload)
        if not message.recipient:
            raise Undeliverable("no recipient")
        try:
            rendered = render(message.kind, payload)
        except UnknownKind as exc:
            raise Undeliverable(str(exc)) from None
        try:
            if payload.get("to") == "staff" and payload.get("channel") == OFFICIAL_ACCOUNT:
                await self._staff_template(message.recipient, message.kind, payload, rendered)
            elif payload.get("to") == "staff":
                await self._subscribe(message.recipient, message.kind, payload, rendered)
            else:
                await self._to_resident(message.recipient, message.kind, payload, rendered)
        except WeChatUnavailable as exc:
            raise ChannelDown(str(exc)) from exc
        except WeChatAPIError as exc:
            if exc.errcode in PERMANENT_ERRCODES:
                raise Undeliverable(str(exc)) from exc
            raise DeliveryError(str(exc)) from exc

    async def _to_resident(self, openid: str, kind: str, payload: dict, rendered: Rendered) -> None:
        contact = await self.contact(openid)
        if contact is not None and in_service_window(contact.last_message_at, self.clock.now()):
            try:
                await self.client.send_text(openid, rendered.text)
                return
            except WeChatAPIError as exc:
                if exc.errcode not in OUT_OF_WINDOW_ERRCODES:
                    raise
        if contact is not None and not contact.subscribed:
            raise Undeliverable("the resident no longer follows the official account and the 48-hour window is over")
        await self._template(openid, kind, payload, rendered)

    def _fill(self, template: Template, kind: str, payload: dict, rendered: Rendered) -> dict[str, str]:
        """The template's fields, each with its role's value."""
        values = {
            "title": rendered.title,
            "number": str(payload.get("number") or "") or "-",
            "detail": clip(rendered.detail or payload.get(TEMPLATE_DETAIL.get(kind, "text")), 60) or "—",
            "time": self._now_text(),
            "remark": rendered.remark,
        }
        return {field: field_value(field, values[role]) for role, field in template.fields.items()}

    async def _template(self, openid: str, kind: str, payload: dict, rendered: Rendered) -> None:
        number = str(payload.get("number") or "")
        survey = kind in ("survey", "survey_reminder")
        template = self.wechat.template("survey" if survey else "notify")
        page = (SURVEY_PAGE if survey else ORDER_PAGE).format(number=number)
        miniprogram = {"appid": self.wechat.miniapp_appid, "pagepath": page} if self.wechat.miniapp_appid else None
        # Without a mini-program a survey opens the workbench's survey page; other notices open nothing (the
        # resident answers in the official account).
        url = RESIDENT_SURVEY_LINK.format(public_url=self.public_url, number=number) if survey and not miniprogram \
            else None
        await self.client.send_template(openid, template.id, self._fill(template, kind, payload, rendered),
                                        miniprogram=miniprogram, url=url)

    async def _staff_template(self, openid: str, kind: str, payload: dict, rendered: Rendered) -> None:
        template = self.wechat.template("staff")
        link = STAFF_ORDER_LINK.format(public_url=self.public_url, number=payload.get("number") or "")
        await self.client.send_template(openid, template.id, self._fill(template, kind, payload, rendered), url=link)

    async def _subscribe(self, openid: str, kind: str, payload: dict, rendered: Rendered) -> None:
        if not self.wechat.miniapp_appid:
            raise Undeliverable("no mini-program to send staff a subscribe message: wechat.miniapp_appid is empty")
        template = self.wechat.template("miniapp_notify")
        await self.client.send_subscribe(openid, template.id, self._fill(template, kind, payload, rendered),
                                         page=ORDER_PAGE.format(number=payload.get("number") or ""))

    def _now_text(self) -> str:
        return local(self.clock.now()).strftime("%Y-%m-%d %H:%M")
