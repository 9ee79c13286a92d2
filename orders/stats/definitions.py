"""The statistics' definitions: what each rate and count means, the periods people type, and the values
the queries hand back (Rate, Spread, Figures, Period, Filters).

The definitions, written once (the README and the dashboard quote RATE_DEFINITIONS):

Every figure is about the orders *received in the period* (submitted_at in [start, end)), as they stand
now. So each numerator is a part of its denominator, a rate never exceeds 100%, and a past month's figures
only move while its orders are still being worked.

- 响应率 (按时接单率): orders accepted within the acceptance deadline ÷ dispatched orders whose acceptance is
  decided (accepted, or still waiting after the deadline passed). An order dispatched ten minutes ago is not
  yet a miss; an order returned or cancelled before anyone accepted it is neither.
- 办结率: orders that stand resolved (resolved, verified, closed unrated) ÷ orders a department accepted (those
  and the ones accepted and now being worked or redone). An order still unsatisfied after its last 重办 (rated
  1–2 or "未解决" once the reopenings ran out: it stays verified and goes to the supervisor) is 办结(未解决),
  counted apart (closed_unresolved) and not in the numerator.
- 解决率: orders whose latest rating says "resolved" ÷ orders rated.
- 满意率: ratings of 4–5 ÷ ratings given (every round: a reopened order's unhappy first rating still counts).
  Unrated orders are counted apart (awaiting_rating, closed_unrated), never as satisfied.
- 自动派单率: automatically dispatched ÷ dispatched; 自动派单纠正率: automatic dispatches later corrected by a
  person (redispatched or returned) ÷ automatic dispatches.
- Time to accept: accepted_at − the later of dispatched_at and reopened_at. Time to resolve: resolved_at −
  submitted_at (the resident's wait). Median and p90 are nearest-rank (the value at rank ⌈p·n⌉), in SQL.
- Overdue now: open orders flagged overdue by the deadline sweep, or past their resolve deadline, or dispatched
  and still not accepted after the acceptance deadline. Resolved late: resolved after the resolve deadline.

Orders closed without being worked (不予受理, `invalid`: spam, duplicates, matters outside the township's remit) are
received but counted apart (invalid) and are in no rate, neither numerator nor denominator, whatever they went
through before (an automatic dispatch, a rating before a 退单).

合并工单: several residents reporting one matter are several reports (受理 counts each, received) and one matter
(受理事项, matters: the orders not merged into another). The matter is counted once, as its primary, in 响应率,
办结率, the automatic dispatch rates, the handling's counts and the durations; an order merged into another is
counted apart (merged) and, while it follows, is in no rate. When the primary is resolved each reporter is surveyed
on their own order: 解决率 and 满意率 count every reporter's rating (the merged orders' too).

A rate whose denominator is 0 has no value: it is None and shown as "—", never 0% or 100%.
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from orders.errors import InvalidInput
from orders.lifecycle import OPEN_STATES, SET_ASIDE_STATES

MAX_PERIOD_DAYS = 3660
# The days a period may cover: no order is older or newer, and the ends of Python's and the databases' calendars
# (year 1, year 9999) overflow once a day is added or the time zone is taken off.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)
DASH = "—"

# name -> (Chinese name, numerator, denominator). The one place the rates are defined for people.
# Every denominator leaves out the orders closed as 不予受理 (invalid): they are counted apart.
# 合并工单: 响应率 and 办结率 count the matter once (the primary, not the orders merged into it); 解决率 and 满意率
# count every reporter's rating.
RATE_DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "response": ("响应率", "按时限接单的工单",
                 "已派单且接单已有结果的工单(已接单,或超过接单时限仍未接单;不含不予受理;合并的只算主工单)"),
    "completion": ("办结率", "已办结的工单(不含办结(未解决))",
                   "部门已接单的工单(不含不予受理;同一事项合并的只算主工单)"),
    "resolution": ("解决率", "最近一次评价为“已解决”的工单",
                   "已评价的工单(不含不予受理;合并的每位反映人各算一次)"),
    "satisfaction": ("满意率", "4–5 分的评价", "全部评价(每轮评价都算;合并的每位反映人的评价都算;不含不予受理的工单)"),
    "auto_dispatch": ("自动派单率", "自动派单的工单", "已派单的工单(不含不予受理;合并的只算主工单)"),
    "auto_corrected": ("自动派单纠正率", "自动派单后被人工改派或退单的工单", "自动派单的工单(不含不予受理;合并的只算主工单)"),
}

# The counts that need a sentence (the others say what they are).
COUNT_DEFINITIONS: dict[str, str] = {
    "invalid": "网格员、督办员或管理员以无效信息、重复反映、不属于本镇受理范围、信息不足为由关闭的工单;"
               "计入受理数,单独计数,不进入任何比率的分子和分母",
    "closed_unresolved": "重办次数用完后群众仍评价不满意(1–2 分或“未解决”)、转督办的工单;"
                         "不计入办结,单独计数",
    "unrated": "办结后尚未评价和回访期满未评价关闭的工单,不算作满意",
    "matters": "受理的事项数:同一事项多人反映、合并办理的只算一件(主工单)",
    "merged": "合并到其他工单(同一事项)随主工单办理的工单;计入受理,不计入受理事项、响应率和办结率,"
              "主工单办结后各自回访,评价计入解决率和满意率",
}

COUNT_LABELS: dict[str, str] = {
    "received": "受理",
    "matters": "受理事项",
    "merged": "合并工单",
    "dispatched": "派单",
    "accepted": "接单",
    "resolved": "办结",
    "closed_unresolved": "办结(未解决)",
    "rated": "已评价",
    "ratings": "评价次数",
    "awaiting_rating": "待评价",
    "closed_unrated": "未评价关闭",
    "unrated": "未评价",
    "cancelled": "已取消",
    "invalid": "不予受理",
    "open": "在办",
    "awaiting_acceptance": "待接单(未超时)",
    "overdue": "当前超期",
    "resolved_late": "超期办结",
    "escalated": "升级督办",
    "reopened": "重办",
    "auto_dispatched": "自动派单",
}

DURATION_LABELS = {"accept": "接单用时", "resolve": "办结用时"}

DIMENSIONS = ("category", "department", "grid", "urgency", "day", "week", "month")
TREND_DIMENSIONS = ("day", "week")  # a trend's buckets: filled in, so a chart's x axis has no holes
DIMENSION_LABELS = {"category": "分类", "department": "部门", "grid": "网格", "urgency": "紧急程度",
                    "day": "日", "week": "周", "month": "月"}

_ACCEPTED_STATES = ("accepted", "resolved", "verified", "closed_unrated", "reopened")
_RESOLVED_STATES = ("resolved", "verified", "closed_unrated")
_OPEN = tuple(sorted(str(state) for state in OPEN_STATES))
_SET_ASIDE = tuple(sorted(str(state) for state in SET_ASIDE_STATES))  # in no rate


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class Rate:
    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return None if self.denominator == 0 else self.numerator / self.denominator

    @property
    def display(self) -> str:
        value = self.value
        return DASH if value is None else f"{value * 100:.1f}%"

    def to_dict(self) -> dict[str, Any]:
        value = self.value
        return {"numerator": self.numerator, "denominator": self.denominator,
                "value": None if value is None else round(value, 6), "display": self.display}


@dataclass(frozen=True)
class Spread:
    """Median and p90 of a duration in seconds over `count` orders (None when there are none)."""

    count: int
    median: int | None
    p90: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "median_seconds": self.median, "p90_seconds": self.p90,
                "median_display": format_duration(self.median), "p90_display": format_duration(self.p90)}


def format_duration(seconds: int | None) -> str:
    if seconds is None:
        return DASH
    if seconds < 3600:
        return f"{seconds / 60:.0f} 分钟"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} 小时"
    return f"{seconds / 86400:.1f} 天"


@dataclass
class Figures:
    key: Any
    label: str
    counts: dict[str, int]
    rates: dict[str, Rate]
    durations: dict[str, Spread]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "counts": dict(self.counts),
                "rates": {name: rate.to_dict() for name, rate in self.rates.items()},
                "durations": {name: spread.to_dict() for name, spread in self.durations.items()}}


@dataclass(frozen=True)
class Period:
    """[start, end) in local days; `start_at`/`end_at` are the aware instants the SQL compares with."""

    first_day: date
    end_day: date  # exclusive
    label: str
    tz: ZoneInfo

    @property
    def start_at(self) -> datetime:
        return datetime.combine(self.first_day, time(), self.tz)

    @property
    def end_at(self) -> datetime:
        return datetime.combine(self.end_day, time(), self.tz)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start": self.first_day.isoformat(),
                "end": (self.end_day - timedelta(days=1)).isoformat(), "days": self.days}


PERIOD_HELP = ("today、yesterday、7d/30d/90d(最近 N 天)、month(本月)、last-month(上月)、year(今年)、"
               "2026、2026-03、2026-03-01 或 2026-03-01..2026-03-31")


def parse_period(text: str | None, today: date, tz: ZoneInfo, default: str = "30d") -> Period:
    """A period from what people type; anything else is a clear error listing what is accepted."""
    raw = (text or default).strip().lower()

    def span(first: date, last: date, label: str) -> Period:
        if first < FIRST_DAY or last > LAST_DAY:
            raise InvalidInput(f"时间段应在 {FIRST_DAY} 至 {LAST_DAY} 之间:{text}")
        if last < first:
            raise InvalidInput(f"时间段结束日期早于开始日期:{text}")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise InvalidInput(f"时间段太长(最多 {MAX_PERIOD_DAYS} 天):{text}")
        return Period(first, last + timedelta(days=1), label, tz)

    def month(first: date) -> Period:
        last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        return span(first, last, f"{first.year} 年 {first.month} 月")

    def year(number: int) -> Period:
        return span(date(number, 1, 1), date(number, 12, 31), f"{number} 年")

    try:
        if raw == "today":
            return span(today, today, "今天")
        if raw == "yesterday":
            return span(today - timedelta(days=1), today - timedelta(days=1), "昨天")
        if match := re.fullmatch(r"(\d{1,4})d", raw):
            days = int(match.group(1))
            if days < 1:
                raise InvalidInput("最近天数至少为 1")
            return span(today - timedelta(days=days - 1), today, f"最近 {days} 天")
        if raw in ("month", "this-month"):
            return month(today.replace(day=1))
        if raw == "last-month":
            return month((today.replace(day=1) - timedelta(days=1)).replace(day=1))
        if raw == "year":
            return year(today.year)
        if re.fullmatch(r"\d{4}", raw):
            return year(int(raw))
        if re.fullmatch(r"\d{4}-\d{2}", raw):
            return month(date.fromisoformat(raw + "-01"))
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = date.fromisoformat(raw)
            return span(day, day, raw)
        if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", raw):
            first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
            return span(first, last, f"{first} 至 {last}")
    except ValueError:
        pass  # an impossible date such as 2026-02-30: the same message as any other bad input
    raise InvalidInput(f"时间段格式不对:{text!r}。可用:{PERIOD_HELP}")


@dataclass(frozen=True)
class Filters:
    """Narrow the orders by category name, department code, grid code, urgency name (all optional)."""

    category: str | None = None
    department: str | None = None
    grid: str | None = None
    urgency: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {key: value for key, value in self.__dict__.items() if value}
