"""Statistics (read side): the 三率 and the figures around them, as SQL aggregates on SQLite and PostgreSQL.

The definitions, written once (the README and the dashboard quote RATE_DEFINITIONS):

Every figure is about the orders *received in the period* (submitted_at in [start, end)), as they stand
now. So each numerator is a part of its denominator, a rate never exceeds 100%, and a past month's figures
only move while its orders are still being worked.

- 响应率 (按时接单率): orders accepted within the acceptance deadline ÷ dispatched orders whose acceptance is
  decided (accepted, or still waiting after the deadline passed). An order dispatched ten minutes ago is not
  yet a miss; an order returned or cancelled before anyone accepted it is neither.
- 办结率: orders that stand resolved (resolved, verified, closed unrated) ÷ orders a department accepted (those
  and the ones accepted and now being worked or redone).
- 解决率: orders whose latest rating says "resolved" ÷ orders rated.
- 满意率: ratings of 4–5 ÷ ratings given (every round: a reopened order's unhappy first rating still counts).
  Unrated orders are counted apart (awaiting_rating, closed_unrated), never as satisfied.
- 自动派单率: automatically dispatched ÷ dispatched; 自动派单纠正率: automatic dispatches later corrected by a
  person (redispatched or returned) ÷ automatic dispatches.
- Time to accept: accepted_at − the later of dispatched_at and reopened_at. Time to resolve: resolved_at −
  submitted_at (the resident's wait). Median and p90 are nearest-rank (the value at rank ⌈p·n⌉), in SQL.
- Overdue now: open orders flagged overdue by the deadline sweep, or past their resolve deadline, or dispatched
  and still not accepted after the acceptance deadline. Resolved late: resolved after the resolve deadline.

A rate whose denominator is 0 has no value: it is None and shown as "—", never 0% or 100%.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections

from orders.clock import Clock
from orders.errors import InvalidInput
from orders.lifecycle import OPEN_STATES, STATE_LABELS
from orders.sql import Sql
from orders.taxonomy import load_taxonomy

MAX_PERIOD_DAYS = 3660
DASH = "—"

# name -> (Chinese name, numerator, denominator). The one place the rates are defined for people.
RATE_DEFINITIONS: dict[str, tuple[str, str, str]] = {
    "response": ("响应率", "按时限接单的工单", "已派单且接单已有结果的工单(已接单,或超过接单时限仍未接单)"),
    "completion": ("办结率", "已办结的工单", "部门已接单的工单"),
    "resolution": ("解决率", "最近一次评价为“已解决”的工单", "已评价的工单"),
    "satisfaction": ("满意率", "4–5 分的评价", "全部评价(每轮评价都算)"),
    "auto_dispatch": ("自动派单率", "自动派单的工单", "已派单的工单"),
    "auto_corrected": ("自动派单纠正率", "自动派单后被人工改派或退单的工单", "自动派单的工单"),
}

COUNT_LABELS: dict[str, str] = {
    "received": "受理",
    "dispatched": "派单",
    "accepted": "接单",
    "resolved": "办结",
    "rated": "已评价",
    "ratings": "评价次数",
    "awaiting_rating": "待评价",
    "closed_unrated": "未评价关闭",
    "unrated": "未评价",
    "cancelled": "已取消",
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
DIMENSION_LABELS = {"category": "分类", "department": "部门", "grid": "网格", "urgency": "紧急程度",
                    "day": "日", "week": "周", "month": "月"}

_ACCEPTED_STATES = ("accepted", "resolved", "verified", "closed_unrated", "reopened")
_RESOLVED_STATES = ("resolved", "verified", "closed_unrated")
_OPEN = tuple(sorted(str(state) for state in OPEN_STATES))


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

    def span(first: date, end: date, label: str) -> Period:
        if end <= first:
            raise InvalidInput(f"时间段结束日期早于开始日期:{text}")
        if (end - first).days > MAX_PERIOD_DAYS:
            raise InvalidInput(f"时间段太长(最多 {MAX_PERIOD_DAYS} 天):{text}")
        return Period(first, end, label, tz)

    def month_after(day: date) -> date:
        return date(day.year + (day.month == 12), day.month % 12 + 1, 1)

    try:
        if raw == "today":
            return span(today, today + timedelta(days=1), "今天")
        if raw == "yesterday":
            return span(today - timedelta(days=1), today, "昨天")
        if match := re.fullmatch(r"(\d{1,4})d", raw):
            days = int(match.group(1))
            if days < 1:
                raise InvalidInput("最近天数至少为 1")
            return span(today - timedelta(days=days - 1), today + timedelta(days=1), f"最近 {days} 天")
        if raw in ("month", "this-month"):
            first = today.replace(day=1)
            return span(first, month_after(first), f"{first.year} 年 {first.month} 月")
        if raw == "last-month":
            first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
            return span(first, month_after(first), f"{first.year} 年 {first.month} 月")
        if raw == "year":
            return span(date(today.year, 1, 1), date(today.year + 1, 1, 1), f"{today.year} 年")
        if re.fullmatch(r"\d{4}", raw):
            year = int(raw)
            return span(date(year, 1, 1), date(year + 1, 1, 1), f"{year} 年")
        if re.fullmatch(r"\d{4}-\d{2}", raw):
            first = date.fromisoformat(raw + "-01")
            return span(first, month_after(first), f"{first.year} 年 {first.month} 月")
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = date.fromisoformat(raw)
            return span(day, day + timedelta(days=1), raw)
        if match := re.fullmatch(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})", raw):
            first, last = date.fromisoformat(match.group(1)), date.fromisoformat(match.group(2))
            return span(first, last + timedelta(days=1), f"{first} 至 {last}")
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


class Stats:
    """The statistics queries. One instance per process is fine: it holds no state but its settings."""

    def __init__(self, timezone_name: str = "Asia/Shanghai", clock: Clock | None = None,
                 connection_name: str = "default") -> None:
        self.tz = ZoneInfo(timezone_name)
        self.clock = clock or Clock()
        self.connection_name = connection_name

    # -------------------------------------------------------------- helpers
    @property
    def _conn(self):
        return connections.get(self.connection_name)

    @property
    def dialect(self) -> str:
        return self._conn.capabilities.dialect

    def today(self) -> date:
        return self.clock.now().astimezone(self.tz).date()

    def period(self, text: str | None, default: str = "30d") -> Period:
        return parse_period(text, self.today(), self.tz, default)

    async def _rows(self, sql: str, values: Sequence[Any]) -> list[dict[str, Any]]:
        return await self._conn.execute_query_dict(sql, list(values))

    def _local_day_sql(self, column: str) -> str:
        """SQLite: the local calendar day of a timestamp column, as text YYYY-MM-DD. SQLite has no time zones:
        a fixed offset, exact for zones without daylight saving (China)."""
        offset = self.tz.utcoffset(datetime(2000, 1, 1)) or timedelta(0)
        return f"date({column}, '{int(offset.total_seconds())} seconds')"

    def _t(self, column: str) -> str:
        """A timestamp column made comparable. SQLite keeps text with whatever offset it was written with
        (Tortoise's create writes UTC, its update the value's own offset), so compare Julian days there."""
        return f"julianday({column})" if self.dialect == "sqlite" else column

    def _key_sql(self, dimension: str | None) -> str:
        if dimension is None:
            return "'all'"
        if dimension == "category":
            return "o.category"
        if dimension == "department":
            return "o.department_id"
        if dimension == "grid":
            return "o.grid_id"
        if dimension == "urgency":
            return "o.urgency"
        if self.dialect == "postgres":  # dates, not text: cheaper per row; _key() turns them into text
            local = f"(o.submitted_at AT TIME ZONE '{str(self.tz.key).replace(chr(39), '')}')"
            unit = {"day": "day", "week": "week", "month": "month"}.get(dimension)
            if unit:
                return f"(date_trunc('{unit}', {local}))::date"  # a week starts on Monday
        day = self._local_day_sql("o.submitted_at")
        if dimension == "day":
            return day
        if dimension == "month":
            return f"substr({day}, 1, 7)"
        if dimension == "week":  # the Monday starting the week
            return f"date({day}, '-6 days', 'weekday 1')"
        raise InvalidInput(f"不能按“{dimension}”分组;可用:{'、'.join(DIMENSIONS)}")

    def _group_by(self, dimension: str | None) -> str:
        # Without a dimension: no GROUP BY (PostgreSQL refuses a constant there), one row even with no orders.
        return "" if dimension is None else f"GROUP BY {self._key_sql(dimension)}"

    def _seconds_sql(self, later: str, earlier: str) -> str:
        if self.dialect == "postgres":
            return f"ROUND(EXTRACT(EPOCH FROM ({later} - {earlier})))"
        return f"ROUND((julianday({later}) - julianday({earlier})) * 86400)"

    async def _where(self, q: Sql, period: Period, filters: Filters) -> str:
        submitted = self._t("o.submitted_at")
        clauses = [f"{submitted} >= {q.time(period.start_at)}", f"{submitted} < {q.time(period.end_at)}"]
        taxonomy = load_taxonomy()
        if filters.category and filters.category not in taxonomy.categories:
            raise InvalidInput(f"没有这个分类:{filters.category}(可用:{'、'.join(taxonomy.categories)})")
        if filters.urgency and filters.urgency not in taxonomy.urgencies:
            raise InvalidInput(f"没有这个紧急程度:{filters.urgency}(可用:{'、'.join(taxonomy.urgencies)})")
        if filters.category:
            clauses.append(f"o.category = {q.param(filters.category)}")
        if filters.urgency:
            clauses.append(f"o.urgency = {q.param(filters.urgency)}")
        one = "$1" if q.dialect == "postgres" else "?"
        if filters.department:
            rows = await self._rows(f"SELECT id FROM department WHERE code = {one}", [filters.department])
            if not rows:
                raise InvalidInput(f"没有这个部门:{filters.department}")
            clauses.append(f"o.department_id = {q.param(rows[0]['id'])}")
        if filters.grid:
            rows = await self._rows(f"SELECT id FROM grid WHERE code = {one}", [filters.grid])
            if not rows:
                raise InvalidInput(f"没有这个网格:{filters.grid}")
            clauses.append(f"o.grid_id = {q.param(rows[0]['id'])}")
        return " AND ".join(clauses)

    def _overdue_sql(self, q: Sql, now: datetime) -> str:
        """Open and late: the one definition the count and the overdue list share."""
        return (f"(o.state IN {q.in_list(_OPEN)} AND (o.overdue OR {self._t('o.resolve_deadline')} < {q.time(now)}"
                f" OR (o.state = 'dispatched' AND {self._t('o.accept_deadline')} < {q.time(now)})))")

    # -------------------------------------------------------------- the figures
    async def figures(self, period: Period, filters: Filters = Filters(), by: str | None = None,
                      durations: bool = True) -> list[Figures]:
        """One Figures per group (a single one, key 'all', without `by`); groups with no orders are absent.
        durations=False skips the medians (the dashboard's charts do not show them): less sorting."""
        if by is not None and by not in DIMENSIONS:
            raise InvalidInput(f"不能按“{by}”分组;可用:{'、'.join(DIMENSIONS)}")
        counts = await self._order_counts(period, filters, by, durations)
        ratings = await self._rating_counts(period, filters, by)
        if not durations:
            accept = resolve = {}
        elif self.dialect == "postgres":  # the percentiles came with the counts, from the same scan
            accept, resolve = ({key: Spread(int(row[f"{what}_n"] or 0), _int(row[f"{what}_median"]),
                                            _int(row[f"{what}_p90"])) for key, row in counts.items()}
                               for what in ("accept", "resolve"))
        else:
            accept = await self._spread(period, filters, by, "accept")
            resolve = await self._spread(period, filters, by, "resolve")
        labels = await self._labels(by, counts.keys())
        result = []
        for key, row in counts.items():
            rating = ratings.get(key, {})
            merged = {**row, **{name: int(rating.get(name) or 0) for name in
                                ("ratings", "satisfied", "rated", "rated_resolved")}}
            result.append(self._build(key, labels.get(key, str(key)), merged,
                                      {"accept": accept.get(key, Spread(0, None, None)),
                                       "resolve": resolve.get(key, Spread(0, None, None))}))
        if by in ("day", "week", "month"):
            result.sort(key=lambda figures: str(figures.key))
        else:
            result.sort(key=lambda figures: (-figures.counts["received"], str(figures.label)))
        return result

    async def summary(self, period: Period, filters: Filters = Filters()) -> Figures:
        groups = await self.figures(period, filters)
        return groups[0] if groups else self._build("all", "合计", {}, {})

    @staticmethod
    def _build(key: Any, label: str, row: dict[str, Any], durations: dict[str, Spread]) -> Figures:
        n = {name: int(row.get(name) or 0) for name in (
            "received", "dispatched", "accepted_on_time", "response_due", "accepted", "resolved", "awaiting_rating",
            "closed_unrated", "cancelled", "open", "awaiting_acceptance", "overdue", "resolved_late", "escalated",
            "reopened", "auto_dispatched", "auto_corrected", "ratings", "satisfied", "rated", "rated_resolved")}
        counts = {name: n[name] for name in COUNT_LABELS if name in n}
        counts["unrated"] = n["awaiting_rating"] + n["closed_unrated"]
        rates = {
            "response": Rate(n["accepted_on_time"], n["response_due"]),
            "completion": Rate(n["resolved"], n["accepted"]),
            "resolution": Rate(n["rated_resolved"], n["rated"]),
            "satisfaction": Rate(n["satisfied"], n["ratings"]),
            "auto_dispatch": Rate(n["auto_dispatched"], n["dispatched"]),
            "auto_corrected": Rate(n["auto_corrected"], n["auto_dispatched"]),
        }
        durations = {name: durations.get(name, Spread(0, None, None)) for name in DURATION_LABELS}
        return Figures(key, label, counts, rates, durations)

    async def _order_counts(self, period: Period, filters: Filters, by: str | None,
                            durations: bool = True) -> dict[Any, dict[str, Any]]:
        q = Sql(self.dialect)  # "?" placeholders are positional: parameters are added in the text's order
        now = self.clock.now()
        key = self._key_sql(by)
        with_percentiles = durations and self.dialect == "postgres"

        def flag(condition: str) -> str:
            if self.dialect == "postgres":  # measured: about half the cost of SUM(CASE …) per row
                return f"COUNT(*) FILTER (WHERE {condition})"
            return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"

        select = f"""
            SELECT {key} AS k,
                COUNT(*) AS received,
                {flag("o.dispatched_at IS NOT NULL")} AS dispatched,
                {flag("o.accepted_within_deadline")} AS accepted_on_time,
                {flag(f"o.dispatched_at IS NOT NULL AND (o.accepted_within_deadline IS NOT NULL OR "
                      f"(o.state = 'dispatched' AND {self._t('o.accept_deadline')} < {q.time(now)}))")} AS response_due,
                {flag(f"o.state = 'dispatched' AND {self._t('o.accept_deadline')} >= {q.time(now)}")}
                    AS awaiting_acceptance,
                {flag(f"o.state IN {q.in_list(_ACCEPTED_STATES)}")} AS accepted,
                {flag(f"o.state IN {q.in_list(_RESOLVED_STATES)}")} AS resolved,
                {flag("o.state = 'resolved'")} AS awaiting_rating,
                {flag("o.state = 'closed_unrated'")} AS closed_unrated,
                {flag("o.state = 'cancelled'")} AS cancelled,
                {flag(f"o.state IN {q.in_list(_OPEN)}")} AS open,
                {flag(self._overdue_sql(q, now))} AS overdue,
                {flag(f"o.state IN {q.in_list(_RESOLVED_STATES)} AND "
                      f"{self._t('o.resolved_at')} > {self._t('o.resolve_deadline')}")}
                    AS resolved_late,
                {flag("o.escalation_level > 0")} AS escalated,
                {flag("o.reopen_count > 0")} AS reopened,
                {flag("o.auto_dispatched")} AS auto_dispatched,
                {flag("o.auto_dispatched AND o.routing_corrected")} AS auto_corrected
                {self._percentile_columns() if with_percentiles else ""}"""
        where = await self._where(q, period, filters)
        if with_percentiles:
            # Each duration computed once per row in a derived table (still "o"), then counted and ranked.
            accept, accept_present = self._duration(q, "accept", as_interval=True)
            resolve, resolve_present = self._duration(q, "resolve", as_interval=True)
            source = (f"(SELECT o.*, CASE WHEN {accept_present} THEN {accept} END AS accept_d, "
                      f"CASE WHEN {resolve_present} THEN {resolve} END AS resolve_d "
                      f"FROM orders o WHERE {where}) o")
            sql = f"{select} FROM {source} {self._group_by(by)}"
        else:
            sql = f"{select} FROM orders o WHERE {where} {self._group_by(by)}"
        return {_key(row["k"], by): row for row in await self._rows(sql, q.values)}

    async def _rating_counts(self, period: Period, filters: Filters, by: str | None) -> dict[Any, dict[str, Any]]:
        q = Sql(self.dialect)
        key = self._key_sql(by)
        where = await self._where(q, period, filters)
        # nth = 1: an order's latest rating (highest round), numbered in the same pass over the joined rows.
        # r.at >= start is always true (a rating follows its order) and lets the index on rating.at bound the scan.
        sql = f"""
            WITH rated AS (
                SELECT {key} AS k, r.score, r.resolved,
                    ROW_NUMBER() OVER (PARTITION BY r.order_id ORDER BY r.round DESC) AS nth
                FROM orders o JOIN rating r ON r.order_id = o.id
                WHERE {where} AND {self._t("r.at")} >= {q.time(period.start_at)}
            )
            SELECT k,
                COUNT(*) AS ratings,
                SUM(CASE WHEN score >= 4 THEN 1 ELSE 0 END) AS satisfied,
                SUM(CASE WHEN nth = 1 THEN 1 ELSE 0 END) AS rated,
                SUM(CASE WHEN nth = 1 AND resolved THEN 1 ELSE 0 END) AS rated_resolved
            FROM rated GROUP BY k
        """
        return {_key(row["k"], by): row for row in await self._rows(sql, q.values)}

    def _duration(self, q: Sql, what: str, as_interval: bool = False) -> tuple[str, str]:
        """(seconds, condition): the duration's SQL and when an order has one. as_interval (PostgreSQL):
        the interval itself, cheaper to sort; rounding to seconds after ranking gives the same value."""
        if what == "accept":
            start = (f"CASE WHEN o.reopened_at IS NOT NULL AND {self._t('o.reopened_at')} > "
                     f"{self._t('o.dispatched_at')} THEN o.reopened_at ELSE o.dispatched_at END")
            later, present = "o.accepted_at", (f"o.accepted_at IS NOT NULL AND o.dispatched_at IS NOT NULL AND "
                                               f"o.state IN {q.in_list(_ACCEPTED_STATES)}")
        else:
            start, later = "o.submitted_at", "o.resolved_at"
            present = f"o.resolved_at IS NOT NULL AND o.state IN {q.in_list(_RESOLVED_STATES)}"
        seconds = f"({later} - {start})" if as_interval else self._seconds_sql(later, start)
        return seconds, present

    @staticmethod
    def _percentile_columns() -> str:
        """PostgreSQL: median and p90 as ordered-set aggregates in the counting scan. percentile_disc(p) is the
        value at rank ⌈p·n⌉ (nulls, the orders without the duration, are skipped): the same as _spread."""
        columns = []
        for what in ("accept", "resolve"):
            value = f"o.{what}_d"
            columns += [f"COUNT({value}) AS {what}_n"]
            columns += [f"ROUND(EXTRACT(EPOCH FROM percentile_disc({p}) WITHIN GROUP (ORDER BY {value})))"
                        f" AS {what}_{name}" for p, name in ((0.5, "median"), (0.9, "p90"))]
        return ", " + ", ".join(columns)

    async def _spread(self, period: Period, filters: Filters, by: str | None, what: str) -> dict[Any, Spread]:
        """SQLite: nearest-rank median and p90 per group, ranked by a window function inside the database."""
        q = Sql(self.dialect)
        key = self._key_sql(by)
        where = await self._where(q, period, filters)
        seconds, present = self._duration(q, what)
        sql = f"""
            WITH d AS (
                SELECT {key} AS k, {seconds} AS s FROM orders o WHERE {where} AND {present}
            ), ranked AS (
                SELECT k, s, ROW_NUMBER() OVER (PARTITION BY k ORDER BY s) AS rn, COUNT(*) OVER (PARTITION BY k) AS n
                FROM d
            )
            SELECT k, MAX(n) AS n,
                MAX(CASE WHEN rn = (n + 1) / 2 THEN s END) AS median,
                MAX(CASE WHEN rn = (9 * n + 9) / 10 THEN s END) AS p90
            FROM ranked GROUP BY k
        """
        # ⌈n/2⌉ = (n+1) div 2 and ⌈9n/10⌉ = (9n+9) div 10 in integer arithmetic: exact on both databases.
        return {_key(row["k"], by): Spread(int(row["n"]), _int(row["median"]), _int(row["p90"]))
                for row in await self._rows(sql, q.values)}

    async def _labels(self, by: str | None, keys: Iterable[Any]) -> dict[Any, str]:
        keys = list(keys)
        if by is None:
            return {key: "合计" for key in keys}
        if by == "department":
            names = {row["id"]: row["name"] for row in await self._rows("SELECT id, name FROM department", [])}
            return {key: names.get(key, "未派单") if key is not None else "未派单" for key in keys}
        if by == "grid":
            names = {row["id"]: row["name"] for row in await self._rows("SELECT id, name FROM grid", [])}
            return {key: names.get(key, "未定位") if key is not None else "未定位" for key in keys}
        if by == "category":
            return {key: key or "未分类" for key in keys}
        if by == "week":
            return {key: f"{key} 起一周" for key in keys}
        return {key: str(key) for key in keys}

    # -------------------------------------------------------------- the dashboard's other panels
    async def trend(self, period: Period, filters: Filters = Filters(), by: str = "day",
                    durations: bool = True) -> list[Figures]:
        """Per day (or week) with empty buckets filled, so a chart's x axis has no holes."""
        if by not in ("day", "week"):
            raise InvalidInput("趋势只能按日(day)或周(week)")
        found = {figures.key: figures for figures in await self.figures(period, filters, by, durations)}
        step = 1 if by == "day" else 7
        first = period.first_day if by == "day" else period.first_day - timedelta(days=period.first_day.weekday())
        buckets, day = [], first
        while day < period.end_day:
            key = day.isoformat()
            buckets.append(found.get(key) or self._build(key, key if by == "day" else f"{key} 起一周", {}, {}))
            day += timedelta(days=step)
        return buckets

    async def overdue(self, limit: int = 50) -> list[dict[str, Any]]:
        """Open orders past a deadline, the longest overdue first (not limited to a period: it is now)."""
        q = Sql(self.dialect)
        now = self.clock.now()
        sql = f"""
            SELECT o.id, o.number, o.category, o.urgency, o.state, o.escalation_level, o.submitted_at,
                   o.accept_deadline, o.resolve_deadline, d.name AS department, g.name AS grid, o.text
            FROM orders o LEFT JOIN department d ON d.id = o.department_id LEFT JOIN grid g ON g.id = o.grid_id
            WHERE {self._overdue_sql(q, now)}
            ORDER BY COALESCE({self._t("o.resolve_deadline")}, {self._t("o.accept_deadline")}), o.id
            LIMIT {q.param(max(1, min(int(limit), 500)))}
        """
        rows = await self._rows(sql, q.values)
        return [self._order_row(row, now) for row in rows]

    async def feed(self, after_id: int = 0, limit: int = 20) -> list[dict[str, Any]]:
        """The newest orders (after `after_id` when polling), newest first."""
        q = Sql(self.dialect)
        sql = f"""
            SELECT o.id, o.number, o.category, o.urgency, o.state, o.escalation_level, o.submitted_at,
                   o.accept_deadline, o.resolve_deadline, d.name AS department, g.name AS grid, o.text
            FROM orders o LEFT JOIN department d ON d.id = o.department_id LEFT JOIN grid g ON g.id = o.grid_id
            WHERE o.id > {q.param(max(0, int(after_id)))}
            ORDER BY o.id DESC
            LIMIT {q.param(max(1, min(int(limit), 200)))}
        """
        return [self._order_row(row, None) for row in await self._rows(sql, q.values)]

    def _order_row(self, row: dict[str, Any], now: datetime | None) -> dict[str, Any]:
        text = row.get("text") or ""
        out = {
            "id": row["id"], "number": row["number"], "category": row["category"] or "未分类",
            "urgency": row["urgency"], "state": row["state"],
            "state_label": STATE_LABELS.get(row["state"], row["state"]),
            "escalation_level": row["escalation_level"], "department": row.get("department") or "未派单",
            "grid": row.get("grid") or "未定位",
            "summary": text[:40] + ("…" if len(text) > 40 else ""),  # a summary: the dashboard is on a wall
            "submitted_at": self._local_iso(row["submitted_at"]),
            "resolve_deadline": self._local_iso(row.get("resolve_deadline")),
        }
        if now is not None:
            deadline = _as_datetime(row.get("resolve_deadline"))
            accept = _as_datetime(row.get("accept_deadline"))
            late_since = min((moment for moment in (deadline, accept if row["state"] == "dispatched" else None)
                              if moment is not None and moment < now), default=None)
            out["overdue_seconds"] = int((now - late_since).total_seconds()) if late_since else 0
            out["overdue_display"] = format_duration(out["overdue_seconds"]) if late_since else "已标记超期"
        return out

    def _local_iso(self, value: Any) -> str | None:
        moment = _as_datetime(value)
        return moment.astimezone(self.tz).isoformat(timespec="minutes") if moment else None

    # -------------------------------------------------------------- export
    async def orders_for_export(self, period: Period, batch: int = 2000) -> AsyncIterator[list[dict[str, Any]]]:
        """The period's orders in id order, a batch at a time (keyset paging: memory stays flat)."""
        last_id = 0
        while True:
            q = Sql(self.dialect)
            where = await self._where(q, period, Filters())
            sql = f"""
                SELECT o.id, o.number, o.submitted_at, o.category, o.urgency, o.state, d.name AS department,
                       g.name AS grid, o.auto_dispatched, o.routing_corrected, o.dispatched_at, o.accepted_at,
                       o.accepted_within_deadline, o.resolved_at, o.resolve_deadline, o.overdue, o.escalation_level,
                       o.reopen_count, o.text,
                       (SELECT r.score FROM rating r WHERE r.order_id = o.id ORDER BY r.round DESC LIMIT 1) AS score,
                       (SELECT r.resolved FROM rating r WHERE r.order_id = o.id ORDER BY r.round DESC LIMIT 1)
                           AS rated_resolved
                FROM orders o LEFT JOIN department d ON d.id = o.department_id LEFT JOIN grid g ON g.id = o.grid_id
                WHERE {where} AND o.id > {q.param(last_id)}
                ORDER BY o.id LIMIT {q.param(batch)}
            """
            rows = await self._rows(sql, q.values)
            if not rows:
                return
            yield rows
            last_id = rows[-1]["id"]


def _key(value: Any, by: str | None) -> Any:
    """Group keys alike on both databases: days and weeks as YYYY-MM-DD, months as YYYY-MM."""
    if isinstance(value, date):
        value = value.isoformat()
    if by == "month" and isinstance(value, str):
        return value[:7]
    return value


def _int(value: Any) -> int | None:
    return None if value is None else int(round(float(value)))


def _as_datetime(value: Any) -> datetime | None:
    """SQLite hands back text, PostgreSQL datetimes; both come out aware."""
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
