"""Orders rather than figures: the overdue board (open and late, now), the newest-orders feed, and a period's
orders for export. Their text is shown to everyone with personal data masked (orders.privacy): a wall screen, a
spreadsheet sent around, a supervisor who wants to call back opens the order itself."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from orders.lifecycle import STATE_LABELS
from orders.privacy import redact
from orders.sql import Sql
from orders.stats.base import StatsBase, _as_datetime
from orders.stats.definitions import Filters, Period, format_duration


class ListQueries(StatsBase):
    """The lists of orders the dashboard and the export show."""

    # -------------------------------------------------------------- the dashboard's other panels
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
        text = redact(row.get("text")) or ""  # before cutting: half a number would no longer look like one
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
            for row in rows:
                row["text"] = redact(row["text"])
            yield rows
            last_id = rows[-1]["id"]
