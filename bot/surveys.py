"""验单 in the chat: reading a resident's answer to a survey as a rating, and the replies about ratings.

Pure functions, like bot.dialog (which asks parse_rating whether a text is a score). A survey asks for 1–5 (5 most
satisfied) or "未解决"; residents also answer in words ("满意", "一般", "没解决", "非常好"), in Chinese numerals
("五星", "三分") or with stars ("⭐⭐⭐⭐"). An answer that names no score ("还行吧": 3 or 4?) is not guessed: the
resident is asked for the number again.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_SEPARATORS = " ,，.。!！、:：;；~～"
_FILLERS = "啊呀吧哦喔嗯呢啦哈了的嘛哇噢"

# Satisfaction words, matched at the start of the answer, longest first so 不满意 is not read as 满意.
RATING_WORDS = (("非常不满意", 1), ("很不满意", 1), ("不满意", 2), ("不太满意", 2), ("一般般", 3), ("一般", 3),
                ("基本满意", 4), ("比较满意", 4), ("满意", 5), ("很满意", 5), ("非常满意", 5))
# Praise and blame that also open ordinary sentences ("很好奇…", "不错过…"): a rating only when the word stands
# alone, or a separator or "谢谢" follows it.
PRAISE_WORDS = (("非常好", 5), ("很好", 5), ("太好了", 5), ("好评", 5), ("很不错", 5), ("还不错", 4),
                ("不错", 4), ("挺好", 4), ("很差", 1), ("太差", 1), ("差评", 1))
_WORDS_LONGEST_FIRST = sorted([(word, score, False) for word, score in RATING_WORDS]
                              + [(word, score, True) for word, score in PRAISE_WORDS], key=lambda item: -len(item[0]))
# The survey message asks for "未解决" when the problem is still there: that reopens the order.
UNRESOLVED_WORDS = ("还没有解决", "还没解决", "没有解决", "没解决", "未解决", "没有办好", "没办好", "没修好", "还是没好")
UNRESOLVED_SCORE = 2
# Answers that say something about the outcome but no score: asked again rather than guessed.
VAGUE_ANSWERS = ("还行", "还可以", "凑合", "马马虎虎", "就那样", "过得去", "说得过去")
BARE_ANSWERS = frozenset(word for word, _ in RATING_WORDS + PRAISE_WORDS) | set(UNRESOLVED_WORDS)
_UNRESOLVED_LONGEST_FIRST = sorted(UNRESOLVED_WORDS, key=len, reverse=True)

_NUMERALS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5}
# "5", "4分 修得很快", "五星", "三分", "5星好评"; a Chinese numeral needs its unit ("五" alone may be anything)
_SCORE = re.compile(rf"^(?:([1-5])|([一二两三四五])(?=\s*(?:分|星|颗星)))\s*(?:分|星|颗星)?"
                    rf"(?=$|[{_SEPARATORS}]|好评)[{_SEPARATORS}]*(.*)$", re.S)
_STARS = re.compile(rf"^([⭐★🌟☆]{{1,5}})(?![⭐★🌟☆])[{_SEPARATORS}]*(.*)$", re.S)


@dataclass(frozen=True)
class Rating:
    score: int
    resolved: bool | None  # False: the resident says the problem is not solved (重办)
    comment: str | None


def _clean(text: str) -> str:
    # the emoji variation selector (⭐️) would hide a star from the patterns
    return unicodedata.normalize("NFKC", text or "").replace("\ufe0f", "").strip().lower()


def _rest(text: str) -> str | None:
    return text.lstrip(_SEPARATORS).strip() or None


def _unresolved(text: str | None) -> bool:
    return bool(text) and any(word in text for word in UNRESOLVED_WORDS)


def _standing_alone(rest: str) -> bool:
    """Nothing, particles, a separator or thanks after a word: it is the answer, not the start of a sentence."""
    rest = rest.lstrip(_FILLERS)
    return not rest or rest[0] in _SEPARATORS or rest.startswith(("谢谢", "感谢"))


def parse_rating(text: str) -> Rating | None:
    """A reply to a survey: "5", "4分 修得很快", "五星", "⭐⭐⭐⭐", "满意", "不满意,路灯还是不亮", "未解决 灯还是不亮"."""
    cleaned = _clean(text)
    stars = _STARS.match(cleaned)
    if stars and (score := sum(star != "☆" for star in stars.group(1))):
        comment = stars.group(2).strip() or None
        return Rating(score, False if _unresolved(comment) else None, comment)
    match = _SCORE.match(cleaned)
    if match:
        score = int(match.group(1)) if match.group(1) else _NUMERALS[match.group(2)]
        comment = match.group(3).strip() or None
        return Rating(score, False if _unresolved(comment) else None, comment)
    for word in _UNRESOLVED_LONGEST_FIRST:
        if cleaned.startswith(word):
            return Rating(UNRESOLVED_SCORE, False, _rest(cleaned[len(word):]) or word)
    for word, score, must_stand_alone in _WORDS_LONGEST_FIRST:
        if cleaned.startswith(word):
            rest = cleaned[len(word):]
            if must_stand_alone and not _standing_alone(rest):
                continue
            comment = _rest(rest.lstrip(_FILLERS) if must_stand_alone else rest)
            return Rating(score, False if _unresolved(comment) else None, comment)
    return None


def is_vague_answer(text: str) -> bool:
    """"还行吧", "还可以啦": about the outcome, but no score."""
    if not any(word in text for word in VAGUE_ANSWERS):
        return False
    bare = "".join(ch for ch in _clean(text) if ch.isalnum()).rstrip(_FILLERS)
    return bare in VAGUE_ANSWERS


# ---------------------------------------------------------------------------------------------- reply texts
def rate_hint(pending: list[str]) -> str:
    if not pending:
        return "您目前没有待评价的工单。工单办结后,我们会请您评价。"
    return (f"工单 {pending[0]} 已办结,请回复 1–5 分评价(5 分最满意),可以加一句意见,"
            "例如“5 修得很快”或“不满意 路灯还是不亮”。")


def survey_again_reply(pending: list[str]) -> str:
    """The rating question again, for an answer that names no score while a survey waits."""
    return (f"请给工单 {pending[0]} 打个分:直接回复 1–5 的数字(5 分最满意,3 分一般,1 分很不满意),"
            "可以加一句意见,例如“4 还行”;问题没解决请回复“未解决”。")


def rated_reply(number: str, score: int, state: str, escalated: bool, next_pending: str | None) -> str:
    if state in ("reopened", "merged"):  # merged: following its primary again, which is being redone
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
