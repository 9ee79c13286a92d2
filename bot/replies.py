"""What the bot answers the resident: every reply text in one place (Chinese), as pure functions of the facts the
conversation gathered (orders, states, deadlines). What a message means is bot.dialog's."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.surveys import rate_hint
from orders.clock import SHANGHAI
from orders.lifecycle import ACTION_LABELS, STATE_LABELS

HOW_TO = (
    "直接发一句话说清楚什么事、在哪里,就能提交诉求,例如:“楼坝村口的路灯坏了一个星期”。\n"
    "· 可以再发照片、发位置补充\n"
    "· 发“我的工单”或工单号查看进度\n"
    "· 办结后回复 1–5 分评价(5 分最满意)\n"
    "· 受理后、接单前可发“取消+工单号”取消"
)


def welcome(township: str) -> str:
    return f"您好,欢迎关注{township}“四单”为民服务!有事您说话,我们马上办。\n{HOW_TO}"


def help_text() -> str:
    return f"使用方法:\n{HOW_TO}"


# What every answer to a message that is no request ends with: how to report, and what else one can send.
SAY_WHAT = "有事要反映,请用一句话说清什么事、在哪里,例如“新滩村二组的自来水停了两天”,发送后马上生成工单。"
WHAT_ELSE = "发“我的工单”查看进度;要取消,发“取消”加上工单编号;发“帮助”看使用方法。"


def greeting_reply() -> str:
    return f"您好!有什么需要反映的事情,请用一句话说清什么事、在哪里,发送后马上生成工单。\n{WHAT_ELSE}"


def thanks_reply() -> str:
    return "不客气,为您服务是我们应该做的!还有其他事情随时告诉我们。"


def report_hint() -> str:
    return "请直接用文字描述您要反映的问题(什么事、在哪里、多久了),发送后会立即生成工单。也可以补充照片和位置。"


def not_request_reply(reason: str | None, text: str = "") -> str:
    """The answer to a message that is no request (classifiers.REASONS), when no survey waits: no order is filed,
    and the resident learns what to send instead."""
    match reason:
        case "greeting":
            return greeting_reply()
        case "thanks":
            return thanks_reply()
        case "test":
            opening = "收到,公众号工作正常。"
        case "digits":
            opening = f"您发的“{snippet(text)}”是什么意思呢?如果是给工单打分,{rate_hint([])}"
        case "chitchat":
            opening = "这里是“四单”为民服务平台,专门受理群众反映的问题,闲聊就接不上话了,请见谅。"
        case "empty" | "symbols":
            opening = "收到您的消息,不过里面没有文字。"
        case _:  # repeated, keyboard, mash
            opening = "抱歉,没看懂这条消息。"
    return f"{opening}\n{SAY_WHAT}\n{WHAT_ELSE}"


def voice_not_understood() -> str:
    return "抱歉,这条语音没能识别出文字。请用文字描述您的问题,我们马上处理。"


def unsupported_reply() -> str:
    return "暂时只能处理文字、语音、照片和位置消息。请用文字描述您的问题,我们马上处理。"


def rate_limited_reply() -> str:
    return "您发送消息太频繁了,请稍等一分钟再发。您反映的事情我们都会认真处理。"


def busy_reply() -> str:
    return "系统繁忙,请稍后再试。"


def format_deadline(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日 {local:%H:%M} 前"


def format_time(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def snippet(text: str, limit: int = 14) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Submitted:
    """What the resident needs to hear about a new order."""

    number: str
    category: str | None
    department: str | None  # None: a grid worker confirms the department
    deadline: datetime | None
    accept_hours: float
    urgent: bool
    photos: int = 0
    located: bool = False
    advice: str | None = None  # what to do now, for immediate danger (classifiers.Prediction.danger_advice)
    urgent_notified: int | None = None  # staff an urgent alert was queued for (0 or None: nobody)
    duty_phone: str | None = None  # the township's duty phone


def urgent_paragraph(notified: int | None, duty_phone: str | None) -> str:
    """What a resident reporting immediate danger is told: a notification is claimed only when one was queued."""
    if notified:
        return "这是紧急事项,已通知值班人员,请注意安全!如有生命危险请同时拨打 110/119/120。"
    township = f"乡镇值班电话 {duty_phone}" if duty_phone else "乡镇值班室"
    return f"这是紧急事项,请立即拨打 110/119/120,并联系{township}!请注意安全。"


def submitted_reply(s: Submitted) -> str:
    lines = [f"已收到您的诉求,工单号 {s.number}。"]
    if s.advice:
        lines.append(f"⚠ {s.advice}")
    if s.urgent:
        lines.append(urgent_paragraph(s.urgent_notified, s.duty_phone))
    if s.department:
        lines.append(f"分类:{s.category or '待定'};承办部门:{s.department}。")
        if s.deadline:
            lines.append(f"办理时限:{format_deadline(s.deadline)}。")
    else:
        hours = f"{s.accept_hours:g}"
        lines.append(f"分类:{s.category or '待定'};网格员将在 {hours} 小时内为您确认承办部门。")
    added = []
    if s.photos:
        added.append(f"{s.photos} 张照片")
    if s.located:
        added.append("位置")
    if added:
        lines.append(f"已一并附上{'和'.join(added)}。")
    wanted = [what for what, have in (("照片", s.photos), ("位置", s.located)) if not have]
    if wanted:
        lines.append(f"可以继续发{'或'.join(wanted)}补充。")
    lines.append("发“我的工单”随时查看进度。")
    return "\n".join(lines)


@dataclass(frozen=True)
class OrderView:
    """An order as the resident sees it."""

    number: str
    text: str
    state: str
    category: str | None
    department: str | None
    submitted_at: datetime
    deadline: datetime | None
    last_action: str | None = None
    last_at: datetime | None = None
    last_note: str | None = None  # progress notes and results are for the resident; internal reasons are not
    primary: str | None = None  # 合并工单: the order this one follows (its department, deadline and steps shown)


def status_reply(view: OrderView) -> str:
    lines = [f"工单 {view.number}:{STATE_LABELS.get(view.state, view.state)}",
             f"内容:{snippet(view.text, 40)}",
             f"提交时间:{format_time(view.submitted_at)}"]
    if view.primary:
        lines.append(f"与工单 {view.primary} 反映的是同一件事,随该工单一并办理;办结后会请您对本工单评价。")
    if view.department:
        lines.append(f"承办部门:{view.department}")
    if view.deadline and (view.state in ("dispatched", "accepted", "reopened") or view.primary):
        lines.append(f"办理时限:{format_deadline(view.deadline)}")
    if view.last_action and view.last_at:
        step = f"最新进展:{format_time(view.last_at)} {ACTION_LABELS.get(view.last_action, view.last_action)}"
        if view.last_note:  # why an order is not taken up says what to do instead: whole
            step += f"——{view.last_note if view.state == 'invalid' else snippet(view.last_note, 60)}"
        lines.append(step)
    if view.state == "resolved":
        lines.append("请回复 1–5 分评价办理结果(5 分最满意),可以加一句意见。")
    elif view.state in ("submitted", "dispatched", "returned"):
        lines.append(f"如需取消,请发“取消 {view.number}”。")
    return "\n".join(lines)


def my_orders_reply(views: list[OrderView], total: int) -> str:
    if not views:
        return "您还没有提交过诉求。直接发文字描述问题就能提交。"
    lines = [f"您的工单(共 {total} 件,显示最近 {len(views)} 件):"]
    for view in views:
        state = f"已合并,随工单 {view.primary} 办理" if view.primary else STATE_LABELS.get(view.state, view.state)
        lines.append(f"· {view.number} {snippet(view.text)}【{state}】")
    lines.append("发送工单号查看详情和最新进展。")
    return "\n".join(lines)


def not_found_reply(number: str) -> str:
    return f"没有找到您的工单 {number},请核对工单号。发“我的工单”可以查看您提交过的工单。"


def cancel_needs_number(cancellable: list[str]) -> str:
    if not cancellable:
        return "您目前没有可以取消的工单(已被部门接单的工单无法取消)。"
    listed = "、".join(cancellable[:5])
    return f"请发送“取消+工单号”,例如“取消 {cancellable[0]}”。可以取消的工单:{listed}。"


def cancelled_reply(number: str) -> str:
    return f"工单 {number} 已取消。如果问题还在,随时再发给我们。"


def cannot_cancel_reply(number: str, state: str) -> str:
    return (f"工单 {number} 当前状态为“{STATE_LABELS.get(state, state)}”,无法取消。"
            "部门接单后就不能取消了;如问题已解决,办结后评价时说明即可。")


def photo_added_reply(number: str, count: int) -> str:
    return f"照片已补充到工单 {number}(共 {count} 张)。"


def photo_held_reply(minutes: int, open_number: str | None) -> str:
    text = f"照片已收到。请在 {minutes} 分钟内用文字描述问题,照片会一并提交。"
    if open_number:
        text += f"如果是补充工单 {open_number} 的照片,请回复“补充”。"
    return text


def photo_needs_text_reply() -> str:
    return "照片已收到,但暂时无法保存。请先用文字描述问题,提交后再发照片补充。"


def location_set_reply(number: str, label: str | None, grid: str | None) -> str:
    where = f"({label})" if label else ""
    text = f"位置已补充到工单 {number}{where}。"
    if grid:
        text += f"所属网格:{grid}。"
    return text


def location_held_reply(minutes: int, open_number: str | None) -> str:
    text = f"位置已收到。请在 {minutes} 分钟内用文字描述问题,位置会一并提交。"
    if open_number:
        text += f"如果是补充工单 {open_number} 的位置,请回复“补充”。"
    return text


def supplemented_reply(number: str, photos: int, located: bool) -> str:
    parts = ([f"{photos} 张照片"] if photos else []) + (["位置"] if located else [])
    return f"已把{'和'.join(parts)}补充到工单 {number}。"


def nothing_to_supplement_reply(number: str | None) -> str:
    target = f"工单 {number}" if number else "您最近的工单"
    return f"请直接发送照片或位置,会补充到{target}。"


def no_open_order_reply() -> str:
    return "您目前没有办理中的工单。请先用文字描述问题提交诉求,再发照片或位置补充。"


def order_closed_reply(number: str, state: str) -> str:
    return f"工单 {number} 已{STATE_LABELS.get(state, state)},不能再补充了。如有新问题请直接发文字描述。"


def invalid_input_reply(message: str) -> str:
    return f"{message}。请修改后重新发送。"


def note_added_reply(number: str, note: str) -> str:
    return f"已补充到工单 {number}:“{snippet(note, 30)}”。处理这件事的工作人员会看到。"


def note_filed_as_report_reply(submitted: str) -> str:
    """A note with no open order to go on: its words became a new report (what the resident wanted heard)."""
    return f"您目前没有办理中的工单,已把这条补充作为新的诉求提交。\n{submitted}"


def note_without_order_reply() -> str:
    return f"您目前没有办理中的工单,这条补充没有可以加的地方。\n{SAY_WHAT}"
