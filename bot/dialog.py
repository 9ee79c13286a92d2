"""The resident's dialog: what a message means (intents) and what the bot answers (reply texts).

Pure functions: no database, no store, no clock of their own, so whole transcripts are unit-testable. The
conversation module gathers the facts (orders, states, deadlines) and calls these.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from orders.clock import SHANGHAI
from orders.lifecycle import ACTION_LABELS, STATE_LABELS


class Kind(StrEnum):
    NEW_REQUEST = "new_request"
    GREETING = "greeting"
    THANKS = "thanks"
    HELP = "help"
    REPORT_HINT = "report_hint"  # "我要反映" with nothing to report yet
    MY_ORDERS = "my_orders"
    QUERY = "query"  # one order by its number
    CANCEL = "cancel"
    RATE = "rate"
    RATE_HINT = "rate_hint"  # "评价" without a score
    SUPPLEMENT = "supplement"  # "补充": attach the photos/location just sent to an existing order
    UNCLEAR = "unclear"


@dataclass(frozen=True)
class Intent:
    kind: Kind
    number: str | None = None
    score: int | None = None
    comment: str | None = None
    resolved: bool | None = None  # False: the resident says the problem is not solved (重办)


# Shortest meaningful request: "路灯坏了" is four characters; anything shorter is asked again, not filed.
MIN_REQUEST_CHARS = 4

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

# Satisfaction words, longest first so 不满意 is not read as 满意.
RATING_WORDS = (("非常不满意", 1), ("很不满意", 1), ("不满意", 2), ("不太满意", 2), ("一般", 3), ("基本满意", 4),
                ("比较满意", 4), ("满意", 5), ("很满意", 5), ("非常满意", 5))
_RATING_WORDS_LONGEST_FIRST = sorted(RATING_WORDS, key=lambda item: -len(item[0]))
# The survey message asks for "未解决" when the problem is still there: that reopens the order.
UNRESOLVED_WORDS = ("还没有解决", "还没解决", "没有解决", "没解决", "未解决", "没有办好", "没办好", "没修好", "还是没好")
UNRESOLVED_SCORE = 2
_BARE_RATING_WORDS = {word for word, _ in RATING_WORDS} | set(UNRESOLVED_WORDS)
_SCORE = re.compile(r"^([1-5])\s*(?:分|星|颗星)?(?=$|[\s,，.。!！、:：;；~～])[\s,，.。!！、:：;；~～]*(.*)$", re.S)
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


def _strip_words(bare: str, words: tuple[str, ...]) -> str:
    rest = bare
    for word in sorted(words, key=len, reverse=True):
        rest = rest.replace(word.replace(" ", ""), "")
    return rest


def _only_words(bare: str, words: tuple[str, ...], *, needs: tuple[str, ...] = ()) -> bool:
    """True when `bare` is nothing but these words (and filler particles), e.g. "谢谢啦", "你好你好";
    with `needs`, one of those must be among them ("你好,我要反映个问题" needs a reporting word)."""
    if not bare or (needs and not any(word in bare for word in needs)):
        return False
    rest = _strip_words(bare, words)
    return rest != bare and all(ch in _FILLERS for ch in rest)


@dataclass(frozen=True)
class Rating:
    score: int
    resolved: bool | None
    comment: str | None


def _rest(text: str) -> str | None:
    return text.lstrip(" ,，.。!！、:：;；~～").strip() or None


def _unresolved(text: str | None) -> bool:
    return bool(text) and any(word in text for word in UNRESOLVED_WORDS)


def parse_rating(text: str) -> Rating | None:
    """A reply to a survey: "5", "4分 修得很快", "满意", "不满意,路灯还是不亮", "未解决 灯还是不亮"."""
    cleaned = normalize(text)
    match = _SCORE.match(cleaned)
    if match:
        comment = match.group(2).strip() or None
        return Rating(int(match.group(1)), False if _unresolved(comment) else None, comment)
    for word in sorted(UNRESOLVED_WORDS, key=len, reverse=True):
        if cleaned.startswith(word):
            return Rating(UNRESOLVED_SCORE, False, _rest(cleaned[len(word):]) or word)
    for word, score in _RATING_WORDS_LONGEST_FIRST:
        if cleaned.startswith(word):
            comment = _rest(cleaned[len(word):])
            return Rating(score, False if _unresolved(comment) else None, comment)
    return None


def understand(text: str, *, prefix: str = "YK", pending_survey: bool = False) -> Intent:
    """One text (or recognised voice) message -> what the resident wants."""
    cleaned = normalize(text)
    bare = _bare(text)
    number = find_order_number(text, prefix)
    if pending_survey:
        rating = parse_rating(text)
        if rating is not None:
            return Intent(Kind.RATE, score=rating.score, comment=rating.comment, resolved=rating.resolved)
    if any(cleaned.startswith(verb) for verb in CANCEL_VERBS):
        rest = bare
        for word in (*CANCEL_VERBS, "工单", "这个", "一下", "我的", "反映", "订单"):
            rest = rest.replace(word, "")
        if number or not rest:
            return Intent(Kind.CANCEL, number=number)
    if any(cleaned.startswith(word) for word in SUPPLEMENT_WORDS) and (number or bare in SUPPLEMENT_WORDS):
        return Intent(Kind.SUPPLEMENT, number=number)
    if number:
        return Intent(Kind.QUERY, number=number)
    if not bare:
        return Intent(Kind.UNCLEAR if cleaned else Kind.HELP)
    if bare in HELP_WORDS or cleaned in HELP_WORDS:
        return Intent(Kind.HELP)
    if bare in MY_ORDERS_WORDS or (len(bare) <= 12 and any(marker in bare for marker in QUERY_MARKERS)):
        return Intent(Kind.MY_ORDERS)  # "查一下工单进度", "我的工单怎么样了"
    if bare in RATE_WORDS or bare in _BARE_RATING_WORDS:
        return Intent(Kind.RATE_HINT)  # "满意" with nothing to rate: say so rather than file it
    if bare in REPORT_WORDS or _only_words(bare, REPORT_WORDS + REPORT_FILLERS + GREETINGS, needs=REPORT_WORDS):
        return Intent(Kind.REPORT_HINT)
    if _only_words(bare, GREETINGS):
        return Intent(Kind.GREETING)
    if _only_words(bare, THANKS + GREETINGS):
        return Intent(Kind.THANKS)
    if len(bare) < MIN_REQUEST_CHARS or bare.isdigit():
        return Intent(Kind.UNCLEAR)
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


def greeting_reply() -> str:
    return "您好!有什么需要反映的事情,直接发文字告诉我们就行;发“帮助”查看使用方法。"


def thanks_reply() -> str:
    return "不客气,为您服务是我们应该做的!还有其他事情随时告诉我们。"


def report_hint() -> str:
    return "请直接用文字描述您要反映的问题(什么事、在哪里、多久了),发送后会立即生成工单。也可以补充照片和位置。"


def unclear_reply() -> str:
    return "抱歉,没太明白您的意思。请用一句话描述遇到的问题,例如“新滩村二组的自来水停了两天”;发“帮助”查看使用方法。"


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


def status_reply(view: OrderView) -> str:
    lines = [f"工单 {view.number}:{STATE_LABELS.get(view.state, view.state)}",
             f"内容:{snippet(view.text, 40)}",
             f"提交时间:{format_time(view.submitted_at)}"]
    if view.department:
        lines.append(f"承办部门:{view.department}")
    if view.deadline and view.state in ("dispatched", "accepted", "reopened"):
        lines.append(f"办理时限:{format_deadline(view.deadline)}")
    if view.last_action and view.last_at:
        step = f"最新进展:{format_time(view.last_at)} {ACTION_LABELS.get(view.last_action, view.last_action)}"
        if view.last_note:
            step += f"——{snippet(view.last_note, 60)}"
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
        lines.append(f"· {view.number} {snippet(view.text)}【{STATE_LABELS.get(view.state, view.state)}】")
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


def rate_hint(pending: list[str]) -> str:
    if not pending:
        return "您目前没有待评价的工单。工单办结后,我们会请您评价。"
    return (f"工单 {pending[0]} 已办结,请回复 1–5 分评价(5 分最满意),可以加一句意见,"
            "例如“5 修得很快”或“不满意 路灯还是不亮”。")


def rated_reply(number: str, score: int, state: str, escalated: bool, next_pending: str | None) -> str:
    if state == "reopened":
        text = f"很抱歉没有让您满意。工单 {number} 已转回承办部门重新办理,我们会跟进到底。"
    elif escalated:
        text = f"很抱歉没有让您满意。工单 {number} 已转交镇督办,领导会直接过问。"
    elif score >= 4:
        text = f"感谢您对工单 {number} 的评价({score} 分)!您的满意是我们最大的动力。"
    else:
        text = f"感谢您对工单 {number} 的评价({score} 分),我们会继续改进。"
    if next_pending:
        text += f"\n您还有工单 {next_pending} 待评价,请继续回复 1–5 分。"
    return text


def already_rated_reply(number: str) -> str:
    return f"工单 {number} 已经评价过了,感谢您的反馈。"


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
