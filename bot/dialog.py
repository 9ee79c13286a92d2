"""The resident's dialog: what a message means (intents). What the bot answers: bot.replies.

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
from enum import StrEnum

from bot.binding import bind_code
from bot.linking import contact_phone_of, is_link_request
from bot.surveys import BARE_ANSWERS, is_vague_answer, parse_rating


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
