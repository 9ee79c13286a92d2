"""What every statistics query shares: the settings (time zone, clock, connection), the dialect, and the SQL
for the period and filters, the group keys, timestamps, durations and "overdue now"."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections

from orders.clock import Clock
from orders.errors import InvalidInput
from orders.sql import Sql
from orders.stats.definitions import _OPEN, DIMENSIONS, Filters, Period, parse_period
from orders.taxonomy import load_taxonomy


class StatsBase:
    """The settings and the SQL helpers the queries are built with."""

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


def _as_datetime(value: Any) -> datetime | None:
    """SQLite hands back text, PostgreSQL datetimes; both come out aware."""
    if value is None or isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
