"""热点诉求 alerts: when reports of one matter from one village reach hotspots.min_reports within
hotspots.window_hours, the supervisors are told, once.

Decided by the periodic sweep (orders/sweep.py), never while a resident waits for a reply: a report's grid may come
with a location sent after it, and the grouping reads every recent report of the village.

Once holds across restarts and workers because the database remembers it: a hot spot told of is a HotspotAlert row,
and each of its orders a HotspotAlertOrder row, unique per order, written in the same transaction as the outbox rows
of the alert. A hot spot seen again (the next sweep, grown by a report, or by another worker at the same moment)
shares an order with one already told: its new reports join that alert and nobody is told again. Two workers that
race to write the same alert collide on an order's row; the loser's transaction rolls back, outbox rows and all.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import Clock
from orders.config import HotspotsSection
from orders.hotspots import Hotspot, Similarity
from orders.lifecycle import Role
from orders.privacy import redact_all
from orders.sql import insert_rows
from orders.stats.hotspots import HotspotQueries
from orders.unit_of_work import _Notice, _StaffDirectory

log = logging.getLogger("sidan.hotspots")

HOTSPOT_ALERT = "notify_hotspot"  # the outbox kind
NUMBERS_IN_ALERT = 10  # a message names this many order numbers at most (the list is in the dashboard)


@dataclass
class AlertReport:
    alerted: int = 0  # hot spots the supervisors were told of now
    joined: int = 0  # reports that joined a hot spot told of before
    raced: int = 0  # hot spots another worker told of first


class HotspotAlerts:
    def __init__(self, settings: HotspotsSection, similarity: Similarity, queries: HotspotQueries,
                 clock: Clock | None = None) -> None:
        self.settings = settings
        self.similarity = similarity
        self.queries = queries
        self.clock = clock or queries.clock

    @classmethod
    def for_service(cls, service, similarity: Similarity | None) -> HotspotAlerts | None:
        """The alerts on the service's settings and clock; None without a similarity (no model loaded)."""
        if similarity is None:
            return None
        settings = service.settings
        return cls(settings.hotspots, similarity, HotspotQueries(settings.app.timezone, clock=service.clock))

    async def check(self, now: datetime | None = None) -> AlertReport:
        """Find the hot spots now and tell the supervisors of each new one."""
        report = AlertReport()
        if not self.settings.alert:
            return report
        cfg = self.settings
        spots = await self.queries.hotspots(self.similarity, hours=cfg.window_hours, min_reports=cfg.min_reports,
                                            threshold=cfg.similarity, top_terms=cfg.top_terms,
                                            now=now or self.clock.now())
        for spot in spots:
            await self._follow(spot, now or self.clock.now(), report)
        if report.alerted or report.joined:
            log.info("hot spots: %s", report)
        return report

    async def _follow(self, spot: Hotspot, now: datetime, report: AlertReport) -> None:
        try:
            async with in_transaction() as conn:
                known = dict(await models.HotspotAlertOrder.filter(order_id__in=spot.order_ids).using_db(conn)
                             .values_list("order_id", "alert_id"))
                if known:  # told already: its new reports join the earliest alert it shares an order with
                    alert_id = min(known.values())
                    new = [models.HotspotAlertOrder(alert_id=alert_id, order_id=order_id)
                           for order_id in spot.order_ids if order_id not in known]
                    if new:
                        await models.HotspotAlertOrder.bulk_create(new, ignore_conflicts=True, using_db=conn)
                        report.joined += len(new)
                    return
                await self._alert(conn, spot, now)
                report.alerted += 1
        except IntegrityError:  # another worker wrote this alert first (one of its orders' rows): its alert stands
            report.raced += 1
            log.info("hot spot %s (%s) already alerted by another worker", spot.village, spot.numbers[0])

    async def _alert(self, conn, spot: Hotspot, now: datetime) -> None:
        alert = await models.HotspotAlert.create(
            village=spot.village, terms=spot.terms, reports=spot.count, first_reported_at=spot.first_at,
            alerted_at=now, using_db=conn)
        await models.HotspotAlertOrder.bulk_create(
            [models.HotspotAlertOrder(alert_id=alert.id, order_id=order_id) for order_id in spot.order_ids],
            using_db=conn)
        first = await models.Order.get(id=spot.order_ids[0]).using_db(conn)
        directory = await _StaffDirectory.load(conn)
        recipients = directory.recipients(_Notice(HOTSPOT_ALERT, "role", Role.SUPERVISOR), first)
        # Through WeChat: personal data masked (the terms come from the router's vocabulary; masked all the same).
        payload = redact_all({
            "to": "staff", "number": first.number, "village": spot.village, "count": spot.count,
            "hours": self.settings.window_hours, "terms": spot.terms, "numbers": spot.numbers[:NUMBERS_IN_ALERT],
            "summary": f"{spot.village} {spot.count} 件:{'、'.join(spot.terms[:3]) or '同类诉求'}",
        })
        await insert_rows(conn, models.Outbox, [
            {"kind": HOTSPOT_ALERT, "order_id": first.id, "recipient": address.openid,
             "payload": {**payload, "channel": address.channel}, "dedup_key": f"hotspot:{alert.id}:{address.openid}",
             "next_attempt_at": now, "created_at": now}
            for address in recipients])
        if recipients:
            await models.HotspotAlert.filter(id=alert.id).using_db(conn).update(notified=len(recipients))
        else:
            log.warning("hot spot in %s (%s reports) but no active supervisor is bound to WeChat to tell",
                        spot.village, spot.count)
