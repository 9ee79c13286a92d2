"""不予受理: closing an order nobody will work — spam, a duplicate, a matter outside the township's remit.

A grid worker, a supervisor or an admin closes it before any department accepted it (a department that thinks an
order invalid returns it, 退单, saying so), with a reason code (lifecycle.INVALID_REASONS) and a text that tells the
resident in plain words what to do instead. The order becomes `invalid`: terminal, closed_at stamped, counted apart in
the statistics and kept out of every rate (lifecycle.SET_ASIDE_STATES). The resident hears it through the outbox
(kind `invalidated`, sent like the survey), the department that had it is told it need not act.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from orders import models
from orders.errors import InvalidInput
from orders.lifecycle import INVALID_REASONS, Action
from orders.outbox_kinds import RESIDENT_INVALIDATED
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text

MIN_EXPLANATION = 5  # characters: enough for "请拨打 12345", not for "无效"


class Closing(UnitOfWork):
    async def invalidate(self, number: str, actor: Actor, code: str, reason: str) -> models.Order:
        label = INVALID_REASONS.get(code) if isinstance(code, str) else None
        if label is None:
            known = "、".join(f"{name}({text})" for name, text in INVALID_REASONS.items())
            raise InvalidInput(f"不予受理的原因代码无效:{str(code)[:32]}。可用:{known}", field="code")
        reason = _clean_text(reason, "告知群众的说明", 500)
        if len(reason) < MIN_EXPLANATION:
            raise InvalidInput(f"告知群众的说明太短了:请用一句话告诉群众可以怎么办(至少 {MIN_EXPLANATION} 个字)",
                               field="reason")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            await self._primary_check(conn, order, "不予受理")  # 合并工单 (orders/merging.py)
            told = {"code": code, "code_label": label, "reason": reason}
            change = _Change(fields={"closed_at": now}, data={"code": code, "code_label": label})
            change.after.append(lambda c: self._notify_resident(c, order, RESIDENT_INVALIDATED, now, told,
                                                                dedup=f"invalidated:{order.id}"))
            if order.department_id:
                change.after.append(lambda c: self._notify_department(c, order, order.department_id, now,
                                                                      kind="invalidated", extra=told))
            return change

        return await self._apply(number, actor, Action.INVALIDATE, plan, reason=reason)
