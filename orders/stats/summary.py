"""The figures: for a period, the counts, the rates and the times to accept and resolve, in total (summary) or
per category, department, grid, urgency, day, week or month (figures)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from orders.errors import InvalidInput
from orders.sql import Sql
from orders.stats.base import StatsBase
from orders.stats.definitions import (_ACCEPTED_STATES, _OPEN, _RESOLVED_STATES, _SET_ASIDE, COUNT_LABELS, DIMENSIONS,
                                      DURATION_LABELS, Figures, Filters, Period, Rate, Spread)

# The orders the rates are about: all but those set aside (不予受理). The states are ours, written as literals.
_COUNTED = "o.state NOT IN (" + ", ".join(f"'{state}'" for state in _SET_ASIDE) + ")"
# 合并工单: the matter is the primary's; an order merged into another (merged_into_id set, whatever its state now)
# counts as a report (受理, its own ratings) but not again as a matter (响应率, 办结率, the handling's counts).
_MATTER = "o.merged_into_id IS NULL"
# What reopens an order (orders/surveys.py): a rating of 1–2 or "未解决".
_UNSATISFIED = "(score <= 2 OR NOT resolved)"


class SummaryQueries(StatsBase):
    """The figures, from one scan of the orders and one of the ratings per question."""

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
                                ("ratings", "satisfied", "rated", "rated_resolved", "closed_unresolved")}}
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
            "received", "matters", "merged", "dispatched", "accepted_on_time", "response_due", "accepted", "resolved",
            "awaiting_rating",
            "closed_unrated", "cancelled", "invalid", "open", "awaiting_acceptance", "overdue", "resolved_late",
            "escalated", "reopened", "auto_dispatched", "auto_corrected", "ratings", "satisfied", "rated",
            "rated_resolved", "closed_unresolved")}
        n["resolved"] -= n["closed_unresolved"]  # 办结(未解决) is counted apart, not as 办结
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
                {flag(_MATTER)} AS matters,
                {flag(f"NOT {_MATTER}")} AS merged,
                {flag(f"o.dispatched_at IS NOT NULL AND {_COUNTED} AND {_MATTER}")} AS dispatched,
                {flag(f"o.accepted_within_deadline AND {_COUNTED} AND {_MATTER}")} AS accepted_on_time,
                {flag(f"o.dispatched_at IS NOT NULL AND {_COUNTED} AND {_MATTER} AND "
                      f"(o.accepted_within_deadline IS NOT NULL OR "
                      f"(o.state = 'dispatched' AND {self._t('o.accept_deadline')} < {q.time(now)}))")} AS response_due,
                {flag(f"o.state = 'dispatched' AND {self._t('o.accept_deadline')} >= {q.time(now)}")}
                    AS awaiting_acceptance,
                {flag(f"o.state IN {q.in_list(_ACCEPTED_STATES)} AND {_MATTER}")} AS accepted,
                {flag(f"o.state IN {q.in_list(_RESOLVED_STATES)} AND {_MATTER}")} AS resolved,
                {flag("o.state = 'resolved'")} AS awaiting_rating,
                {flag("o.state = 'closed_unrated'")} AS closed_unrated,
                {flag("o.state = 'cancelled'")} AS cancelled,
                {flag("o.state = 'invalid'")} AS invalid,
                {flag(f"o.state IN {q.in_list(_OPEN)}")} AS open,
                {flag(self._overdue_sql(q, now))} AS overdue,
                {flag(f"o.state IN {q.in_list(_RESOLVED_STATES)} AND {_MATTER} AND "
                      f"{self._t('o.resolved_at')} > {self._t('o.resolve_deadline')}")}
                    AS resolved_late,
                {flag(f"o.escalation_level > 0 AND {_MATTER}")} AS escalated,
                {flag(f"o.reopen_count > 0 AND {_MATTER}")} AS reopened,
                {flag(f"o.auto_dispatched AND {_COUNTED} AND {_MATTER}")} AS auto_dispatched,
                {flag(f"o.auto_dispatched AND o.routing_corrected AND {_COUNTED} AND {_MATTER}")} AS auto_corrected
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
        # 办结(未解决): still verified after an unsatisfied latest rating, which no longer reopens it.
        sql = f"""
            WITH rated AS (
                SELECT {key} AS k, r.score, r.resolved, o.state, o.merged_into_id,
                    ROW_NUMBER() OVER (PARTITION BY r.order_id ORDER BY r.round DESC) AS nth
                FROM orders o JOIN rating r ON r.order_id = o.id
                WHERE {where} AND {_COUNTED} AND {self._t("r.at")} >= {q.time(period.start_at)}
            )
            SELECT k,
                COUNT(*) AS ratings,
                SUM(CASE WHEN score >= 4 THEN 1 ELSE 0 END) AS satisfied,
                SUM(CASE WHEN nth = 1 THEN 1 ELSE 0 END) AS rated,
                SUM(CASE WHEN nth = 1 AND resolved THEN 1 ELSE 0 END) AS rated_resolved,
                SUM(CASE WHEN nth = 1 AND state = 'verified' AND {_UNSATISFIED} AND merged_into_id IS NULL
                    THEN 1 ELSE 0 END) AS closed_unresolved
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
                                               f"o.state IN {q.in_list(_ACCEPTED_STATES)} AND {_MATTER}")
        else:
            start, later = "o.submitted_at", "o.resolved_at"
            present = f"o.resolved_at IS NOT NULL AND o.state IN {q.in_list(_RESOLVED_STATES)} AND {_MATTER}"
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


def _key(value: Any, by: str | None) -> Any:
    """Group keys alike on both databases: days and weeks as YYYY-MM-DD, months as YYYY-MM."""
    if isinstance(value, date):
        value = value.isoformat()
    if by == "month" and isinstance(value, str):
        return value[:7]
    return value


def _int(value: Any) -> int | None:
    return None if value is None else int(round(float(value)))
