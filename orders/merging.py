"""合并工单: one matter reported by several residents is worked once.

A grid worker, a supervisor, an admin or the department handling it merges an order (the duplicate) into another
(the primary): the duplicate becomes `merged`, records whom it follows (merged_into, merged_at, the event's from/to
and why), and its resident is told (outbox kind `resident_merged`). Refused, writing nothing: into itself, into an
order that is not open (merged, resolved, closed, invalid), an order others already follow (merge into it instead:
no chains, no cycles), an order the actor may not see.

The follower then follows its primary (the hooks below, called by the primary's use cases in their transaction):
- what the primary's resident hears while it is worked (accepted, a progress note for the resident, a decided
  extension) reaches every follower's resident too, on the follower's own number (UnitOfWork._notify_resident);
- the primary resolved: each follower is resolved with the same result and surveyed on its own number (its own
  survey, reminder, rating, close when unrated);
- an unsatisfied rating from any reporter reopens the primary (within survey.max_reopens, else the supervisor
  decides, as for the primary's own rating) and the followers follow it again (`follow`: back to merged).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from orders import models
from orders.errors import InvalidInput
from orders.lifecycle import FOLLOWER_END_STATES, OPEN_STATES, STATE_LABELS, Action, State
from orders.outbox_kinds import RESIDENT_MERGED, SURVEY
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text

MERGED_IN = "merged_in"  # the primary's timeline: an order merged into it (not a transition)


class Merging(UnitOfWork):
    async def merge(self, number: str, actor: Actor, into: Any, reason: str | None = None) -> models.Order:
        if not isinstance(into, str) or not into.strip():
            raise InvalidInput("请填写要合并到的主工单号(into)", field="into")
        into = into.strip()
        if into == number:
            raise InvalidInput("不能把工单合并到它自己", field="into")
        reason = _clean_text(reason, "合并说明", 500) if reason not in (None, "") else None

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            primary = await models.Order.get_or_none(number=into, using_db=conn)
            if primary is None or not self.can_see(actor, primary):
                raise InvalidInput(f"没有找到要合并到的工单 {into}", field="into")
            if primary.merged_into_id == order.id:
                raise InvalidInput(f"工单 {into} 已合并到本工单,不能再反向合并(会形成循环)", field="into")
            if primary.state == State.MERGED:
                lead = await models.Order.get_or_none(id=primary.merged_into_id, using_db=conn)
                raise InvalidInput(f"工单 {into} 已合并到工单 {lead.number if lead else '-'},请合并到主工单",
                                   field="into")
            if State(primary.state) not in OPEN_STATES:
                label = STATE_LABELS.get(primary.state, primary.state)
                raise InvalidInput(f"工单 {into} {label},不能合并到它(只能合并到仍在办理的工单)", field="into")
            followers = await models.Order.filter(merged_into_id=order.id).using_db(conn).count()
            if followers:
                raise InvalidInput(f"已有 {followers} 个工单合并到本工单,请把工单 {into} 合并到本工单", field="into")
            why = reason or f"与工单 {primary.number} 反映同一事项"
            department = await self._department(conn, id=primary.department_id) if primary.department_id else None
            change = _Change(
                fields={"merged_into_id": primary.id, "merged_at": now, "department_id": primary.department_id,
                        "accepted_by_id": None, "extension_days_requested": None, "overdue": False},
                data={"into": primary.number, "reason": why})
            told = {"primary": primary.number, "reason": why, "department": department.name if department else None}
            change.after.append(lambda c: self._notify_resident(c, order, RESIDENT_MERGED, now, told,
                                                                dedup=f"merged:{order.id}"))
            had = order.department_id  # read now: the change gives the order the primary's department
            if had and had != primary.department_id:
                change.after.append(lambda c: self._notify_department(c, order, had, now, kind="merged",
                                                                      extra={"primary": primary.number}))
            change.after.append(lambda c: self._event(c, primary, actor, MERGED_IN, primary.state, primary.state, now,
                                                      reason=why, data={"from": order.number}))
            return change

        return await self._apply(number, actor, Action.MERGE, plan, reason=reason or f"合并到工单 {into}")

    # ------------------------------------------------------------------ followers follow their primary
    @staticmethod
    async def _followers(conn: Any, primary: models.Order, states) -> list[models.Order]:
        return list(await models.Order.filter(merged_into_id=primary.id, state__in=[str(s) for s in states])
                    .using_db(conn).order_by("id"))

    async def _resolve_followers(self, conn: Any, primary: models.Order, result: str, now: datetime) -> None:
        """The primary resolved: each follower resolved with it and surveyed on its own number."""
        actor = Actor.system("随主工单办结")
        for follower in await self._followers(conn, primary, [State.MERGED]):
            told = {"result": result, "round": follower.reopen_count, "primary": primary.number}
            change = _Change(fields={"resolved_at": now, "result": result, "department_id": primary.department_id,
                                     "category": primary.category or follower.category},
                             data={"primary": primary.number})
            change.after.append(lambda c, f=follower, t=told: self._notify_resident(
                c, f, SURVEY, now, t, dedup=f"survey:{f.id}:{f.reopen_count}"))
            await self._write(conn, follower, actor, Action.RESOLVE, change, now,
                              reason=f"主工单 {primary.number} 已办结")

    async def _refollow(self, conn: Any, primary: models.Order, reason: str | None, now: datetime) -> None:
        """The primary reopened: its resolved followers follow it again (merged, their next survey round)."""
        actor = Actor.system("随主工单重办")
        for follower in await self._followers(conn, primary, FOLLOWER_END_STATES):
            change = _Change(fields={"reopen_count": follower.reopen_count + 1, "resolved_at": None,
                                     "rated_at": None, "closed_at": None},
                             data={"primary": primary.number})
            await self._write(conn, follower, actor, Action.FOLLOW, change, now,
                              reason=f"主工单 {primary.number} 重办" + (f":{reason}" if reason else ""))

    async def _reopen_primary(self, conn: Any, follower: models.Order, comment: str | None, now: datetime) -> None:
        """A follower's reporter unsatisfied: the primary is reopened (its followers with it) while reopenings
        remain, else escalated to the supervisor as for the primary's own rating."""
        primary = await models.Order.get_or_none(id=follower.merged_into_id, using_db=conn)
        if primary is None or State(primary.state) not in FOLLOWER_END_STATES:
            return  # being worked again already (another reporter, a supervisor)
        reason = f"合并工单 {follower.number} 的群众评价不满意" + (f":{comment}" if comment else "")
        actor, action, plan, why = self._unsatisfied_follow_up(primary, comment, reason=reason)
        if action == Action.ESCALATE and primary.state != State.VERIFIED:
            return  # the primary's own survey is still open: its rating decides
        change = await plan(primary, conn, now)
        await self._write(conn, primary, actor, action, change, now, reason=why)

    async def _primary_check(self, conn: Any, order: models.Order, what: str) -> None:
        """An order others follow cannot be closed without its matter: the followers would be left hanging."""
        followers = await models.Order.filter(merged_into_id=order.id, state=State.MERGED).using_db(conn).count()
        if followers:
            raise InvalidInput(f"工单 {order.number} 还有 {followers} 位群众反映的同一事项合并在此办理,不能{what}")
