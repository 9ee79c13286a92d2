"""The resident's dialog: what a message means (intents) and what the bot answers (reply texts).

Pure functions: no database, no store, no clock of their own, so whole transcripts are unit-testable. The
conversation module gathers the facts (orders, states, deadlines) and calls these; answers to a survey are read
by bot.surveys.

A text these rules do not place is a NEW_REQUEST candidate, however short ("停水了", "狗咬人"): the router's screen
(classifiers.Prediction.request) decides whether it is a request at all, and a text that is none ("你好10",
"测试", "asdfgh") gets not_request_reply instead of an order. The rules here catch only what needs no model:
commands, greetings and thanks in so many words, digits, emoji.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.binding import bind_code
from bot.linking import contact_phone_of, is_link_request
from bot.surveys import BARE_ANSWERS, is_vague_answer, parse_rating, rate_hint
from orders.clock import SHANGHAI
from orders.lifecycle import ACTION_LABELS, STATE_LABELS


class Kind(StrEnum):
    NEW_REQUEST = "new_request"  # a request, unless the router's screen says otherwise
    NOT_REQUEST = "not_request"  # no request at all: Intent.reason says what (a code of classifiers.REASONS)
    GREETING = "greeting"
    THANKS = "thanks"
    HELP = "help"
    REPORT_HINT = "report_hint"  # "我要反映" with nothing to report yet
    MY_ORDERS = "my_orders"
    QUERY = "query"  # one order by its number
    CANCEL = "cancel"
    RATE = "rate"
    RATE_HINT = "rate_hint"  # "评价", or a rating with no survey waiting
    VAGUE_RATING = "vague_rating"  # "还行吧": about the outcome, but no score
    SUPPLEMENT = "supplement"  # "补充": attach the photos/location just sent to an existing order
    NOTE = "note"  # "补充:水管在老井旁边": the words go onto an existing order (Intent.note)
    BIND = "bind"  # "绑定 ABCD2345": a staff member binds the official account (bot.binding)
    LINK = "link"  # "绑定小程序": the resident asks for a code that links the mini-program (bot.linking)
    CONTACT = "contact"  # "我的电话 139…": the resident leaves a contact phone (Intent.phone)


@dataclass(frozen=True)
class Intent:
    kind: Kind
    number: str | None = None
    score: int | None = None
    comment: str | None = None
    resolved: bool | None = None  # False: the resident says the problem is not solved (重办)
    reason: str | None = None  # NOT_REQUEST: a code of classifiers.REASONS ("digits", "empty", "symbols" here)
    note: str | None = None  # NOTE: the words to add, without "补充:" and the order number
    code: str | None = None  # BIND: the invitation code ("" when none was given)
    phone: str | None = None  # CONTACT: the number, as digits


GREETINGS = ("你好", "您好", "你们好", "大家好", "在吗", "在不在", "有人吗", "hello", "hi", "嗨", "哈喽", "早上好",
             "上午好", "中午好", "下午好", "晚上好", "早安", "晚安", "早")
THANKS = ("谢谢你们", "谢谢您", "谢谢", "感谢", "多谢", "辛苦了", "辛苦", "麻烦了", "好的", "收到", "知道了",
          "明白了", "ok", "okay", "嗯嗯", "嗯", "好", "谢", "thanks", "thank you", "thankyou", "已解决", "解决了",
          "已经解决", "修好了", "弄好了", "已经好了", "好了")
HELP_WORDS = ("帮助", "help", "怎么用", "如何使用", "使用说明", "说明", "功能", "菜单", "你是谁", "怎么反映",
              "怎么办理", "?", "？")
REPORT_WORDS = ("我要反映", "反映问题", "我要投诉", "投诉", "我要报修", "报修", "我要举报", "举报", "我要反映问题",
                "反映", "我有问题", "我有事")
MY_ORDERS_WORDS = ("我的工单", "查询", "查询工单", "工单查询", "查工单", "进度", "查进度", "查询进度", "工单进度",
                   "我的反映", "我反映的问题", "工单", "办得怎么样了", "处理得怎么样了")
RATE_WORDS = ("评价", "我要评价", "回访", "评分", "打分")
SUPPLEMENT_WORDS = ("补充", "补充照片", "补充位置", "添加", "加到工单", "补充到工单")
CANCEL_VERBS = ("取消", "撤销", "撤回")
# Words that say nothing about the matter itself: "我想反映一个问题" is still only a wish to report.
REPORT_FILLERS = ("我想", "我要", "想要", "一个", "一下", "一件", "个", "件", "问题", "情况", "事情", "事", "请问", "能不能",
                  "可以", "怎么", "我")
QUERY_MARKERS = ("工单", "进度", "我反映的")
_FILLERS = set("啊呀吧哦喔嗯呢啦哈了的吗么嘛哇噢?")

# "补充:…", "补充说明 …", "再补充一下,…", "补充 YK20261124-0001 …": words for an order the resident has
_NOTE_OPENER = re.compile(r"^(?:我)?(?:再)?补充(?:说明|一下|一点|一句|两句|几句)?", re.IGNORECASE)
_NOTE_EDGES = " \t\n:：,，.。、;；-—~～!！"
# What follows "补充" when the resident means the photos or location just sent ("再补充一张照片")
_ATTACHMENT_WORDS = ("照片", "图片", "相片", "位置", "定位", "到工单", "工单", "一张", "两张", "几张", "张", "一下")
# "补充医疗保险怎么报销": 补充 as an adjective opens a request, unless a separator marks "补充:" as an addition
_NOT_NOTES = ("医疗", "养老", "保险", "协议", "耕地", "公积金", "营养")

_EMOTICON = re.compile(r"\[[^\[\]]{1,8}\]|/:[^\s]{1,6}")  # WeChat's [微笑] and /::) emoticons


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, no surrounding space (what the rules below compare against)."""
    return unicodedata.normalize("NFKC", text or "").strip().lower()


def _bare(text: str) -> str:
    """Letters, digits and CJK only: punctuation, spaces, emoji and WeChat emoticons removed."""
    text = _EMOTICON.sub("", normalize(text))
    return "".join(ch for ch in text if ch.isalnum() or ch in "?")


def order_number_pattern(prefix: str) -> re.Pattern[str]:
    # Lenient about case, spaces and the dash residents type: "yk20261124 0001", "YK20261124－0001".
    return re.compile(rf"{re.escape(prefix.lower())}\s*(\d{{8}})\s*[-_—–~]?\s*(\d{{4}})(?!\d)", re.IGNORECASE)


def find_order_number(text: str, prefix: str) -> str | None:
    match = order_number_pattern(prefix).search(normalize(text))
    return f"{prefix}{match.group(1)}-{match.group(2)}" if match else None


@functools.cache
def _longest_first(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted((word.replace(" ", "") for word in words), key=len, reverse=True))


def _strip_words(bare: str, words: tuple[str, ...]) -> str:
    rest = bare
    for word in _longest_first(words):
        rest = rest.replace(word, "")
    return rest


def _only_words(bare: str, words: tuple[str, ...], *, needs: tuple[str, ...] = ()) -> bool:
    """True when `bare` is nothing but these words (and filler particles), e.g. "谢谢啦", "你好你好";
    with `needs`, one of those must be among them ("你好,我要反映个问题" needs a reporting word)."""
    if not bare or (needs and not any(word in bare for word in needs)):
        return False
    rest = _strip_words(bare, words)
    return rest != bare and all(ch in _FILLERS for ch in rest)


def _addition(text: str, prefix: str) -> Intent | None:
    """"补充…" as NOTE (words for an order) or SUPPLEMENT (the photos or location just sent); None otherwise."""
    source = unicodedata.normalize("NFKC", text or "").strip()  # case kept: the note is the resident's words
    opener = _NOTE_OPENER.match(source)
    if opener is None:
        return None
    rest = source[opener.end():]
    separated = rest[:1] in _NOTE_EDGES
    found = order_number_pattern(prefix).search(rest)
    number = f"{prefix}{found.group(1)}-{found.group(2)}" if found else None
    if found:
        rest = f"{rest[:found.start()]} {rest[found.end():]}"
    note = rest.strip(_NOTE_EDGES)
    bare = _bare(note)
    if not bare or _only_words(bare, _ATTACHMENT_WORDS):
        return Intent(Kind.SUPPLEMENT, number=number)
    if not (separated or number) and note.startswith(_NOT_NOTES):
        return None
    return Intent(Kind.NOTE, number=number, note=note)


def _without_words(cleaned: str) -> str:
    """NOT_REQUEST's reason for a text with no letters or digits: punctuation only, or emoji and emoticons."""
    rest = _EMOTICON.sub("", cleaned)
    return "symbols" if rest and all(unicodedata.category(ch)[0] in "PZ" for ch in rest) else "empty"


def understand(text: str, *, prefix: str = "YK", pending_survey: bool = False) -> Intent:
    """One text (or recognised voice) message -> what the resident wants."""
    cleaned = normalize(text)
    bare = _bare(text)
    number = find_order_number(text, prefix)
    rating = parse_rating(text)
    if pending_survey and rating is not None:
        return Intent(Kind.RATE, score=rating.score, comment=rating.comment, resolved=rating.resolved)
    if is_link_request(text):
        return Intent(Kind.LINK)
    if (phone := contact_phone_of(text)) is not None:
        return Intent(Kind.CONTACT, phone=phone)
    if (code := bind_code(text)) is not None:
        return Intent(Kind.BIND, code=code)
    if any(cleaned.startswith(verb) for verb in CANCEL_VERBS):
        rest = bare
        for word in (*CANCEL_VERBS, "工单", "这个", "一下", "我的", "反映", "订单"):
            rest = rest.replace(word, "")
        if number or not rest:
            return Intent(Kind.CANCEL, number=number)
    addition = _addition(text, prefix)
    if addition is not None:
        return addition
    if any(cleaned.startswith(word) for word in SUPPLEMENT_WORDS) and (number or bare in SUPPLEMENT_WORDS):
        return Intent(Kind.SUPPLEMENT, number=number)
    if number:
        return Intent(Kind.QUERY, number=number)
    if bare in RATE_WORDS or bare in BARE_ANSWERS or (rating is not None and rating.comment is None
                                                      and not bare.isdigit()):
        return Intent(Kind.RATE_HINT)  # "满意", "五星" with nothing to rate: say so rather than file it
    if is_vague_answer(text):
        return Intent(Kind.VAGUE_RATING)
    if not bare.strip("?"):
        return Intent(Kind.NOT_REQUEST, reason=_without_words(cleaned)) if cleaned and not bare else Intent(Kind.HELP)
    if bare in HELP_WORDS or cleaned in HELP_WORDS:
        return Intent(Kind.HELP)
    if bare in MY_ORDERS_WORDS or (len(bare) <= 12 and any(marker in bare for marker in QUERY_MARKERS)):
        return Intent(Kind.MY_ORDERS)  # "查一下工单进度", "我的工单怎么样了"
    if bare in REPORT_WORDS or _only_words(bare, REPORT_WORDS + REPORT_FILLERS + GREETINGS, needs=REPORT_WORDS):
        return Intent(Kind.REPORT_HINT)
    if _only_words(bare, GREETINGS):
        return Intent(Kind.GREETING)
    if _only_words(bare, THANKS + GREETINGS):
        return Intent(Kind.THANKS)
    if bare.isdigit():
        return Intent(Kind.NOT_REQUEST, reason="digits")  # a lone number outside a survey: ask what it means
    return Intent(Kind.NEW_REQUEST)


# ---------------------------------------------------------------------------------------------- reply texts
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
