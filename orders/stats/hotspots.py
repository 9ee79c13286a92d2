"""热点诉求 (read side): the recent reports placed in their villages, grouped into hot spots (orders/hotspots.py),
and shown as the other lists are: times local, the text masked (orders.privacy) and cut to a summary, with when the
supervisors were told of each (orders/hotspot_alerts.py)."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from orders import models
from orders.hotspots import Hotspot, Report, Similarity, find_hotspots, place_of
from orders.lifecycle import State
from orders.privacy import redact
from orders.sql import Sql
from orders.stats.base import StatsBase, _as_datetime

# Reports that are no matter for anyone: withdrawn by the resident, or closed as not a request (spam, outside the
# remit). Every other state counts, a merged duplicate too: it is one more resident reporting the matter.
NOT_REPORTS = (State.CANCELLED, State.INVALID)
MAX_REPORTS = 5000  # the newest this many within the window (a wider window on a busy township: the recent part)
SUMMARY_CHARS = 40


class HotspotQueries(StatsBase):
    """The hot spots of the last hours."""

    async def recent_reports(self, since: datetime, until: datetime) -> list[Report]:
        """Orders submitted in [since, until], each in its village (its grid's, else one its text names); those in no
        village are left out: a hot spot is a place."""
        q = Sql(self.dialect)
        submitted = self._t("o.submitted_at")
        sql = f"""
            SELECT o.id, o.number, o.text, o.submitted_at, g.village
            FROM orders o LEFT JOIN grid g ON g.id = o.grid_id
            WHERE {submitted} >= {q.time(since)} AND {submitted} <= {q.time(until)}
              AND o.state NOT IN {q.in_list(str(state) for state in NOT_REPORTS)}
            ORDER BY o.id DESC LIMIT {q.param(MAX_REPORTS)}
        """
        rows = await self._rows(sql, q.values)
        villages = await self.village_names() if any(not row["village"] for row in rows) else []
        reports = []
        for row in rows:
            village = place_of(row["text"] or "", row["village"], villages)
            if village is not None:
                reports.append(Report(row["id"], row["number"], village, row["text"] or "",
                                      _as_datetime(row["submitted_at"])))
        return reports

    async def village_names(self) -> list[str]:
        """The township's villages: the township file's list and every grid's."""
        names = set(await models.Grid.all().using_db(self._conn).distinct().values_list("village", flat=True))
        township = await models.Township.all().using_db(self._conn).first()
        if township is not None:
            names.update(name for name in township.villages or [] if isinstance(name, str))
        return sorted(name for name in names if name)

    async def hotspots(self, similarity: Similarity, *, hours: int, min_reports: int, threshold: float,
                       top_terms: int = 5, now: datetime | None = None) -> list[Hotspot]:
        now = now or self.clock.now()
        reports = await self.recent_reports(now - timedelta(hours=hours), now)
        return find_hotspots(reports, similarity, threshold=threshold, min_reports=min_reports, top_terms=top_terms)

    async def alerted_at(self, order_ids: list[int]) -> dict[int, datetime]:
        """When the supervisors were told of the hot spot each of these orders belongs to (absent: in none)."""
        if not order_ids:
            return {}
        rows = await models.HotspotAlertOrder.filter(order_id__in=order_ids).using_db(self._conn) \
            .values_list("order_id", "alert__alerted_at")
        return {order_id: _as_datetime(at) for order_id, at in rows}

    async def hotspot_rows(self, spots: list[Hotspot]) -> list[dict[str, Any]]:
        """The hot spots as the API shows them: no personal data (the summary masked like the feed's)."""
        told = await self.alerted_at([order_id for spot in spots for order_id in spot.order_ids])
        rows = []
        for spot in spots:
            text = redact(spot.reports[-1].text) or ""
            alerted = min((told[i] for i in spot.order_ids if i in told), default=None)
            rows.append({
                "place": spot.village, "terms": [redact(term) or "" for term in spot.terms], "count": spot.count,
                "numbers": spot.numbers,
                "first_reported_at": self._local_iso(spot.first_at), "last_reported_at": self._local_iso(spot.last_at),
                "summary": text[:SUMMARY_CHARS] + ("…" if len(text) > SUMMARY_CHARS else ""),
                "alerted_at": self._local_iso(alerted),
            })
        return rows

    def _local_iso(self, value: Any) -> str | None:
        moment = _as_datetime(value)
        return moment.astimezone(self.tz).isoformat(timespec="minutes") if moment else None
