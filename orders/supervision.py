"""督单: supervision of deadlines and of the departments' requests for more time.

Escalation raises an order 村(网格) → 村委 → 乡镇 and tells the supervisor (and the village at 村委): by hand, from
the deadline sweep (orders/sweep.py), or after an unsatisfied rating past its reopenings. A supervisor approves an
extension (延期, extend: the resolve deadline moves) or denies it; the department hears the decision either way, the
resident the new deadline when it is approved. An urgent report that reached nobody when it came
in is attended once a staff member opens it (attend_urgent) or acts on it (UnitOfWork._write).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from orders import models
from orders.errors import Conflict, InvalidInput
from orders.lifecycle import ESCALATION_LEVELS, Action, Role
from orders.outbox_kinds import EXTENSION_DECIDED
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text, _Notice

MAX_ESCALATION = 2
URGENT_ATTENDED = "attend_urgent"  # the event of attend_urgent


class Supervision(UnitOfWork):
    # ------------------------------------------------------------------ 督单
    async def escalate(
        self, number: str, actor: Actor, reason: str, to_level: int | None = None, overdue: bool | None = None,
        expect_level: int | None = None,
    ) -> models.Order:
        """Raise the escalation level 村(网格) → 村委 → 乡镇 and tell the supervisor (and the village at 村委).

        expect_level makes the step conditional (the periodic sweep, run by several workers): it is refused with
        Conflict when the order is no longer at that level, or, when only marking it overdue, already overdue."""
        return await self._apply(number, actor, Action.ESCALATE,
                                 self._escalate_plan(reason, to_level, overdue, expect_level), reason=reason)

    def _escalate_plan(self, reason: str, to_level: int | None, overdue: bool | None,
                       expect_level: int | None = None):
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            if expect_level is not None:
                only_marking = to_level == expect_level
                if order.escalation_level != expect_level or (only_marking and order.overdue == bool(overdue)):
                    raise Conflict(f"工单 {order.number} 已被督办,无需重复升级", number=order.number)
            from_level = order.escalation_level
            level = min(MAX_ESCALATION, to_level if to_level is not None else order.escalation_level + 1)
            level = max(level, order.escalation_level)
            change = _Change(fields={"escalation_level": level},
                             data={"from_level": from_level, "to_level": level,
                                   "level_name": ESCALATION_LEVELS[level]})
            if overdue is not None:
                change.fields["overdue"] = overdue
            notice = {"level": level, "from_level": from_level, "level_name": ESCALATION_LEVELS[level],
                      "reason": reason, "overdue": bool(overdue if overdue is not None else order.overdue)}
            change.after.append(lambda c: self._notify_role(c, order, "supervisor", "escalated", now, notice))
            if level == 1 and from_level < 1 and order.grid_id is not None:
                # 村委 is reached through the village's grid worker.
                change.after.append(lambda c: self._notify_grid(c, order, "escalated", now, notice))
            return change

        return plan

    # ------------------------------------------------------------------ 急难事无人接报
    async def attend_urgent(self, number: str, actor: Actor) -> bool:
        """A staff member opened an urgent report that reached nobody when it came in: it is in hand now. The flag
        clears once, recorded as an event (True); already cleared, or a resident looking, nothing changes (False)."""
        if actor.role in (Role.RESIDENT, Role.SYSTEM):
            return False
        now = self.clock.now()
        async with in_transaction() as conn:
            order = await self.get(number, actor, conn)
            if not await models.Order.filter(id=order.id, urgent_unnotified=True).using_db(conn) \
                    .update(urgent_unnotified=False, updated_at=now):
                return False
            await self._event(conn, order, actor, URGENT_ATTENDED, order.state, order.state, now,
                              reason="急难事报告时无人可通知,已由工作人员查看")
        return True

    # ------------------------------------------------------------------ 延期
    async def extend(self, number: str, actor: Actor, days: int | None = None, reason: str | None = None) -> models.Order:
        """A supervisor approves an extension: the resolve deadline moves."""

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            granted = days if days is not None else order.extension_days_requested
            if not granted or not 1 <= granted <= 90:
                raise InvalidInput("没有待批准的延期申请,请写明延期天数(1–90)")
            start = max(order.resolve_deadline or now, now) if order.overdue else (order.resolve_deadline or now)
            new_deadline = self.deadlines.add_days(start, granted)
            change = _Change(
                fields={"resolve_deadline": new_deadline, "extension_days_requested": None,
                        "overdue": bool(order.accept_deadline and not order.accepted_at and order.accept_deadline < now)},
                data={"days": granted, "resolve_deadline": new_deadline.isoformat()},
            )
            decided = {"approved": True, "days": granted, "resolve_deadline": new_deadline.isoformat()}
            department = await self._department_name(order, conn)
            change.after.append(lambda c: self._notify_resident(c, order, EXTENSION_DECIDED, now,
                                                                {**decided, "department": department}))
            self._tell_department(change, order, {**decided, "reason": reason or ""})
            return change

        return await self._apply(number, actor, Action.EXTEND, plan, reason=reason)

    async def deny_extension(self, number: str, actor: Actor, reason: str) -> models.Order:
        reason = _clean_text(reason, "驳回理由", 500)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            if not order.extension_days_requested:
                raise InvalidInput("没有待处理的延期申请")
            change = _Change(fields={"extension_days_requested": None})
            self._tell_department(change, order, {"approved": False, "days": order.extension_days_requested,
                                                  "reason": reason})
            return change

        return await self._apply(number, actor, Action.DENY_EXTENSION, plan, reason=reason)

    @staticmethod
    def _tell_department(change: _Change, order: models.Order, decided: dict[str, Any]) -> None:
        """The department handling the order hears the supervisor's decision on its request for more time."""
        if order.department_id is not None:
            change.notices.append(_Notice(f"notify_{EXTENSION_DECIDED}", "department", order.department_id, decided))
