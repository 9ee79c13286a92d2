"""验单 · 回访: after 办结 the resident rates the outcome.

A rating (rate) that is unsatisfied reopens the order for the same department (重办, reopen) in the rating's own
transaction, or, past the settings' limit of reopenings, escalates it to the supervisor (督单's escalation plan). The
24-hour reminder (remind_survey), and the close of a survey nobody answered within the window (close_unrated).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from orders import models
from orders.errors import InvalidInput
from orders.lifecycle import Action, State
from orders.supervision import MAX_ESCALATION
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text


class Surveys(UnitOfWork):
    # ------------------------------------------------------------------ 验单
    async def rate(
        self, number: str, actor: Actor, score: int, resolved: bool | None = None, comment: str | None = None
    ) -> models.Order:
        if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
            raise InvalidInput("评分应为 1 到 5 之间的整数")
        comment = (comment or "").strip()[:500] or None
        resolved = score >= 3 if resolved is None else bool(resolved)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"rated_at": now}, data={"score": score, "resolved": resolved})
            change.after.append(lambda c: models.Rating.create(
                using_db=c, order_id=order.id, round=order.reopen_count, score=score, resolved=resolved,
                comment=comment, at=now))
            if (score <= 2 or not resolved) and order.merged_into_id is not None:
                # 合并工单: the matter is the primary's; reopening it reopens this order too (orders/merging.py)
                change.after.append(lambda c: self._reopen_primary(c, order, comment, now))
            elif score <= 2 or not resolved:
                change.follow_up = self._unsatisfied_follow_up(order, comment)
            return change

        return await self._apply(number, actor, Action.RATE, plan, reason=comment)

    def _unsatisfied_follow_up(self, order: models.Order, comment: str | None, reason: str | None = None):
        """重办: back to the same department, at most max_reopens times; after that the supervisor decides.

        Runs in the rating's own transaction, so a rating never stands without its consequence."""
        reason = reason or (f"群众评价不满意:{comment}" if comment else "群众评价不满意")
        actor = Actor.system("回访重办")
        if order.reopen_count < self.settings.survey.max_reopens:
            return actor, Action.REOPEN, self._reopen_plan(reason), reason
        reason = f"{reason}(已重办 {order.reopen_count} 次,转督办)"
        return actor, Action.ESCALATE, self._escalate_plan(reason, MAX_ESCALATION, None), reason

    async def reopen(self, number: str, actor: Actor, reason: str) -> models.Order:
        reason = _clean_text(reason, "重办理由", 500)
        return await self._apply(number, actor, Action.REOPEN, self._reopen_plan(reason), reason=reason)

    def _reopen_plan(self, reason: str | None = None):
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            if order.merged_into_id is not None:  # 合并工单: the matter is redone on its primary, followers with it
                primary = await models.Order.get(id=order.merged_into_id, using_db=conn)
                raise InvalidInput(f"工单 {order.number} 随工单 {primary.number} 合并办理,请重办主工单 {primary.number}")
            department = (await models.Department.get_or_none(id=order.department_id, using_db=conn)
                          if order.department_id else None)
            dispute = self.deadlines.is_dispute(order.category, department.code if department else None)
            change = _Change(fields={
                "reopen_count": order.reopen_count + 1, "reopened_at": now, "resolved_at": None, "rated_at": None,
                "accepted_at": None, "closed_at": None, "overdue": False,
                "accept_deadline": self.deadlines.accept_deadline(now, order.urgency),
                "resolve_deadline": self.deadlines.resolve_deadline(now, order.urgency, dispute=dispute),
            })
            if order.department_id:
                change.after.append(lambda c: self._notify_department(c, order, order.department_id, now, kind="reopened",
                                                                      extra={"reason": reason}))
            change.after.append(lambda c: self._refollow(c, order, reason, now))  # 合并工单: its followers too
            return change

        return plan

    async def close_unrated(self, number: str) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            return _Change(fields={"closed_at": now})

        return await self._apply(number, Actor.system("回访期满"), Action.CLOSE_UNRATED, plan,
                                 reason=f"{self.settings.survey.window_days} 天内未评价")

    # ------------------------------------------------------------------ 回访提醒
    async def remind_survey(self, number: str) -> models.Order:
        """The 24-hour survey reminder: at most once per resolution (its dedup key), recorded on the timeline."""

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            if order.state != State.RESOLVED:
                from orders.errors import IllegalTransition

                raise IllegalTransition(order.state, "survey_reminder")
            change = _Change(data={"round": order.reopen_count})
            change.after.append(lambda c: self._notify_resident(
                c, order, "survey_reminder", now, {"result": order.result, "round": order.reopen_count},
                dedup=f"survey-reminder:{order.id}:{order.reopen_count}"))
            return change

        return await self._annotate(number, Actor.system("回访提醒"), "survey_reminder", plan)
