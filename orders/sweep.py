"""The periodic sweep (督单 and 验单 by the clock): survey reminders, closing unrated orders, overdue orders and
escalation 村(网格) → 村委 → 乡镇.

Each change goes through a use case of OrderService (one transaction, an OrderEvent, the notifications in the
outbox), made conditional so that several workers sweeping at once change each order once: a step another worker
already took is refused (Conflict / IllegalTransition) and skipped here.

The rules, for open orders (dispatched, accepted, reopened):
- ordinary orders climb one level per missed checkpoint: the accept deadline (一小时介入; accepted late or not
  at all), the resolve deadline, and the resolve deadline passed by as long again as the order was given;
- disputes (平安建设 at 司法所) follow 三级调解: 村(网格) mediates until mediation_days[0] after dispatch, then
  村委 until mediation_days[1], then 乡镇 until the last, which is their resolve deadline;
- an order not accepted by its accept deadline, or not resolved by its resolve deadline, is flagged overdue;
  the supervisor hears of it (and of each step; the grid worker too when it reaches 村委).
For resolved orders: one reminder survey.reminder_hours after resolution, and closed_unrated once
survey.window_days have passed without a rating (never counted as satisfied).
And 热点诉求: with `hotspots` (orders/hotspot_alerts.py), the supervisors are told of each new hot spot, once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q

from orders import models
from orders.clock import local
from orders.deadlines import DeadlinePolicy
from orders.dispatcher import default_name, utc
from orders.errors import DomainError
from orders.hotspot_alerts import HotspotAlerts
from orders.lifecycle import ESCALATION_LEVELS, State
from orders.services import MAX_ESCALATION, Actor, OrderService
from orders.store import Store, StoreUnavailable

log = logging.getLogger("sidan.sweep")

WATCHED_STATES = (State.DISPATCHED, State.ACCEPTED, State.REOPENED)
UNACCEPTED_STATES = (State.DISPATCHED, State.REOPENED)
TURN_KEY = "sweep:turn"


@dataclass(frozen=True)
class Assessment:
    """Where an open order should stand now."""

    level: int  # the escalation level it should have reached (never below its current one)
    overdue: bool  # not accepted by its accept deadline, or not resolved by its resolve deadline
    steps: tuple[str, ...]  # steps[k]: why the order rises to level k + 1
    overdue_reason: str | None


def _when(moment: datetime) -> str:
    return local(moment).strftime("%m-%d %H:%M")


def assess(order: models.Order, now: datetime, policy: DeadlinePolicy, dispute: bool) -> Assessment:
    """Pure: the checkpoints the order has missed by `now` (unit-tested without a database)."""
    steps: list[str] = []
    overdue: list[str] = []
    starts = [moment for moment in (order.dispatched_at, order.reopened_at) if moment is not None]
    start = max(starts) if starts else None
    unaccepted = order.state in UNACCEPTED_STATES

    accept_by = order.accept_deadline
    if accept_by is not None and now > accept_by:
        if unaccepted:
            reason = f"超过接单时限({_when(accept_by)})仍未接单"
            overdue.append(reason)
            if not dispute:
                steps.append(reason)
        elif order.accepted_at is not None and order.accepted_at > accept_by and not dispute:
            steps.append(f"超过接单时限({_when(accept_by)})才接单")

    resolve_by = order.resolve_deadline
    if dispute:
        if start is not None:
            for level, due in enumerate(policy.mediation_deadlines(start)[:-1]):
                if now > due:
                    steps.append(f"{ESCALATION_LEVELS[level]}调解满 {policy.mediation_days[level]} 天仍未化解")
        if resolve_by is not None and now > resolve_by:
            overdue.append(f"超过调解时限({_when(resolve_by)})仍未化解")
    elif resolve_by is not None and now > resolve_by:
        reason = f"超过办结时限({_when(resolve_by)})仍未办结"
        steps.append(reason)
        overdue.append(reason)
        if start is not None and now > resolve_by + (resolve_by - start):
            steps.append(f"超过办结时限一倍({_when(resolve_by + (resolve_by - start))})仍未办结")

    level = max(order.escalation_level, min(MAX_ESCALATION, len(steps)))
    return Assessment(level, bool(overdue), tuple(steps), overdue[0] if overdue else None)


@dataclass
class SweepReport:
    skipped: bool = False  # another worker swept this interval
    closed: int = 0
    reminded: int = 0
    escalated: int = 0  # level steps
    marked_overdue: int = 0  # overdue without a new level
    conflicts: int = 0  # steps another worker took first
    hotspots_alerted: int = 0  # hot spots the supervisors were told of
    similar: int = 0  # reports whose similar orders were looked for here (orders/duplicates.py)


class Sweeper:
    def __init__(
        self,
        service: OrderService,
        store: Store | None = None,
        *,
        interval_seconds: float | None = None,
        name: str | None = None,
        hotspots: HotspotAlerts | None = None,
    ) -> None:
        self.service = service
        self.hotspots = hotspots  # None: no hot-spot alerts (no similarity to group reports by)
        self.settings = service.settings
        self.store = store
        self.interval = interval_seconds if interval_seconds is not None else self.settings.deadlines.sweep_seconds
        self.name = name or default_name()
        self.system = Actor.system("督办系统")

    @property
    def clock(self):
        return self.service.clock

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep sweeping; the next round sees the same orders again
                log.exception("sweep failed; trying again in %.0fs", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def _take_turn(self) -> bool:
        """One sweep per interval across all workers sharing the store (the steps are safe without it too)."""
        if self.store is None:
            return True
        try:
            return await self.store.set(TURN_KEY, self.name, ttl=max(1.0, self.interval * 0.9), only_if_absent=True)
        except StoreUnavailable:
            return True

    async def run_once(self) -> SweepReport:
        report = SweepReport()
        if not await self._take_turn():
            report.skipped = True
            return report
        now = utc(self.clock.now())
        await self.close_unrated(now, report)
        await self.remind(now, report)
        await self.deadlines(now, report)
        await self.alert_hotspots(now, report)
        report.similar = await self.service.find_pending_similar(now)  # 合并工单: look-ups a stopped worker left
        if report.closed or report.reminded or report.escalated or report.marked_overdue or report.hotspots_alerted:
            log.info("sweep: %s", report)
        return report

    # ------------------------------------------------------------------ 验单
    async def close_unrated(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(days=self.settings.survey.window_days)
        numbers = await models.Order.filter(state=State.RESOLVED, resolved_at__lte=cutoff).values_list("number",
                                                                                                      flat=True)
        for number in numbers:
            if await self._step(self.service.close_unrated(number), report):
                report.closed += 1

    async def remind(self, now: datetime, report: SweepReport) -> None:
        cutoff = now - timedelta(hours=self.settings.survey.reminder_hours)
        window_start = now - timedelta(days=self.settings.survey.window_days)
        rows = await models.Order.filter(state=State.RESOLVED, resolved_at__lte=cutoff,
                                         resolved_at__gt=window_start).values("id", "number", "reopen_count")
        if not rows:
            return
        keys = {f"survey-reminder:{row['id']}:{row['reopen_count']}": row["number"] for row in rows}
        done = set(await models.Outbox.filter(dedup_key__in=list(keys)).values_list("dedup_key", flat=True))
        for key, number in keys.items():
            if key not in done and await self._step(self.service.remind_survey(number), report):
                report.reminded += 1

    # ------------------------------------------------------------------ 热点诉求
    async def alert_hotspots(self, now: datetime, report: SweepReport) -> None:
        if self.hotspots is None:
            return
        try:
            report.hotspots_alerted = (await self.hotspots.check(now)).alerted
        except Exception:  # noqa: BLE001 - the deadlines were kept; the next round looks at the hot spots again
            log.exception("hot-spot check failed")

    # ------------------------------------------------------------------ 督单
    async def deadlines(self, now: datetime, report: SweepReport) -> None:
        departments = dict(await models.Department.all().values_list("id", "code"))
        # Overdue at the top level: nothing left to do for the sweep.
        orders = await (models.Order.filter(state__in=list(WATCHED_STATES), accept_deadline__lte=now)
                        .filter(Q(overdue=False) | Q(escalation_level__lt=MAX_ESCALATION)).order_by("id"))
        policy = self.service.deadlines
        for order in orders:
            dispute = policy.is_dispute(order.category, departments.get(order.department_id))
            due = assess(order, now, policy, dispute)
            await self._follow(order, due, report)

    async def _follow(self, order: models.Order, due: Assessment, report: SweepReport) -> None:
        level = order.escalation_level
        mark = True if due.overdue else None
        while level < due.level:
            step = self.service.escalate(order.number, self.system, reason=due.steps[level], to_level=level + 1,
                                         overdue=mark, expect_level=level)
            if not await self._step(step, report):
                return
            report.escalated += 1
            level += 1
        if due.level == order.escalation_level and due.overdue and not order.overdue:
            step = self.service.escalate(order.number, self.system, reason=f"已逾期:{due.overdue_reason}",
                                         to_level=level, overdue=True, expect_level=level)
            if await self._step(step, report):
                report.marked_overdue += 1

    async def _step(self, use_case, report: SweepReport) -> bool:
        try:
            await use_case
        except DomainError as exc:  # another worker (or a person) got there first: nothing left to do here
            report.conflicts += 1
            log.debug("sweep step skipped: %s", exc)
            return False
        return True

