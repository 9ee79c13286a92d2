"""The unit of work every use case runs in, and what all parts of the loop share.

One transaction per use case: it checks the transition table, changes the order with a conditional update (the
version column, so two staff accepting at once cannot both win) and writes its OrderEvent and the Outbox rows that tell
the resident and the staff in that same transaction (_apply for a transition, _annotate for an addition that is not
one). Shared with it: who acts (Actor), who may see an order (get, can_see), whom a notice reaches (the staff
directory), the department cache and the grid of a point. The names with a leading underscore are for the use-case
modules of orders/ only, not for the doors.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orders import duty, models, outbox_kinds, scope
from orders.clock import Clock
from orders.config import Settings
from orders.deadlines import DeadlinePolicy
from orders.errors import Conflict, InvalidInput, NotFound
from orders.lifecycle import TERMINAL_STATES, Action, Role, State, transition
from orders.privacy import redact, redact_all
from orders.sql import Sql, insert_rows
from orders.staff_channels import StaffAddress, staff_address
from orders.taxonomy import Taxonomy

MAX_TEXT = 2000
# What an order's resident hears while it is worked, which the residents of the orders merged into it hear too
# (orders/merging.py; the survey is each one's own).
FOLLOWED_KINDS = frozenset({outbox_kinds.ACCEPTED, outbox_kinds.RESIDENT_PROGRESS, outbox_kinds.EXTENSION_DECIDED})
DEPARTMENT_CACHE_SECONDS = 60.0


@dataclass(frozen=True)
class Actor:
    role: Role
    id: int | None = None  # Staff.id or Resident.id
    name: str = "系统"
    department_id: int | None = None
    grid_id: int | None = None

    @classmethod
    def system(cls, name: str = "系统") -> Actor:
        return cls(Role.SYSTEM, None, name)

    @classmethod
    def of_staff(cls, staff: models.Staff) -> Actor:
        return cls(Role(staff.role), staff.id, staff.name, staff.department_id, staff.grid_id)

    @classmethod
    def of_resident(cls, resident: models.Resident) -> Actor:
        return cls.resident(resident.id, resident.openid)

    @classmethod
    def resident(cls, resident_id: int, openid: str) -> Actor:
        return cls(Role.RESIDENT, resident_id, f"居民{openid[-4:]}")


@dataclass
class _Change:
    fields: dict[str, Any] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    after: list[Callable[[Any], Any]] = field(default_factory=list)  # more writes inside the transaction
    follow_up: tuple[Any, ...] | None = None  # (actor, action, plan, reason): a consequent transition, same transaction
    notices: list[_Notice] = field(default_factory=list)  # staff to tell, same transaction


@dataclass(frozen=True)
class _Notice:
    """Staff to tell about an order: an outbox row for each of them, `kind` with `payload`.
    audience: "department" (its staff; target = department id), "grid" (the order's grid's workers),
    "grid_workers" (the order's grid's, else every grid worker), "role" (everyone with role = target),
    "on_duty" (the staff on duty now by the roster, else every supervisor)."""

    kind: str
    audience: str
    target: Any = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Recipient:
    address: StaffAddress
    role: str
    department_id: int | None
    grid_id: int | None


class _StaffDirectory:
    """The staff who can be told anything (active, bound to the official account or the mini-program), read once for a
    change or a burst of them.

    Read afresh every time (a deactivated member must stop hearing of residents' reports at once), but only the four
    columns it needs, by plain SQL: the ORM's queryset and model instances cost more than the statement itself."""

    def __init__(self, staff: list[_Recipient], on_duty: list[str] | None = None) -> None:
        # indexed once: a burst of reports asks for recipients several times per order
        self._by_role: dict[str, list[_Recipient]] = {}
        for person in staff:
            self._by_role.setdefault(person.role, []).append(person)
        self._grid_workers = self._by_role.get(Role.GRID_WORKER, [])
        self._on_duty = on_duty or []  # openids of the active staff on duty now (read only when a notice wants them)

    @classmethod
    async def load(cls, conn: Any, roster_at: datetime | None = None) -> _StaffDirectory:
        """The directory; with `roster_at`, also who is on duty at that moment (urgent reports)."""
        q = Sql(conn.capabilities.dialect)
        rows = await conn.execute_query_dict(
            "SELECT openid, oa_openid, role, department_id, grid_id FROM staff "
            f"WHERE active = {q.param(True)} AND (openid IS NOT NULL OR oa_openid IS NOT NULL) ORDER BY id", q.values)
        staff = [_Recipient(staff_address(row["openid"], row["oa_openid"]), row["role"], row["department_id"],
                            row["grid_id"]) for row in rows]
        on_duty = None
        if roster_at is not None:
            shifts = await models.DutyShift.filter(staff__active=True).using_db(conn) \
                .order_by("position", "id").values_list("staff__openid", "staff__oa_openid", "days", "starts", "ends")
            on_duty = duty.on_duty([(address, duty.Shift(tuple(days), starts, ends))
                                    for openid, oa_openid, days, starts, ends in shifts
                                    if (address := staff_address(openid, oa_openid)) is not None], roster_at)
        return cls(staff, on_duty)

    def recipients(self, notice: _Notice, order: models.Order) -> list[StaffAddress]:
        match notice.audience:
            case "department":
                people = [person for person in self._by_role.get(Role.DEPT_STAFF, ())
                          if person.department_id == notice.target]
            case "grid":
                people = [person for person in self._grid_workers if person.grid_id == order.grid_id]
            case "grid_workers":
                local = [person for person in self._grid_workers
                         if order.grid_id is not None and person.grid_id == order.grid_id]
                people = local or self._grid_workers
            case "role":
                people = self._by_role.get(notice.target, [])
            case "on_duty":
                return list(self._on_duty) or [person.address for person in self._by_role.get(Role.SUPERVISOR, ())]
            case _:
                raise ValueError(f"unknown audience {notice.audience!r}")
        return [person.address for person in people]


def _clean_text(text: str, what: str = "内容", limit: int = MAX_TEXT) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"{what}必须是文字")
    cleaned = text.replace("\x00", "").strip()
    if not cleaned:
        raise InvalidInput(f"{what}不能为空")
    if len(cleaned) > limit:
        raise InvalidInput(f"{what}太长了(最多 {limit} 字)")
    return cleaned


class UnitOfWork:
    """The base the use-case groups share (OrderService composes them over one instance of it)."""

    # set by OrderService.__init__
    settings: Settings
    clock: Clock
    taxonomy: Taxonomy
    deadlines: DeadlinePolicy
    _departments: tuple[float, dict[str, models.Department], dict[int, models.Department]] | None

    async def get(self, number: str, actor: Actor | None = None, conn: Any = None) -> models.Order:
        """The order, if `actor` may see it; otherwise NotFound, so numbers outside one's scope cannot be probed."""
        order = await models.Order.get_or_none(number=number, using_db=conn)
        if order is None or (actor is not None and not self.can_see(actor, order)):
            raise NotFound(f"没有找到工单 {number}")
        return order

    @staticmethod
    def can_see(actor: Actor, order: models.Order) -> bool:
        """Scope (orders/scope.py): residents their own orders, departments theirs, grid workers their grid's and
        the dispatch queue's."""
        return scope.can_see(actor, order)

    async def _apply(
        self,
        number: str,
        actor: Actor,
        action: Action,
        plan: Callable[[models.Order, Any, datetime], Any],
        reason: str | None = None,
    ) -> models.Order:
        now = self.clock.now()
        async with in_transaction() as conn:
            order = await self.get(number, actor, conn)
            from_state = State(order.state)
            to_state = transition(from_state, action, actor.role)
            change = await plan(order, conn, now)
            await self._write(conn, order, actor, action, change, now, reason=reason, from_state=from_state,
                              to_state=to_state)
            while change.follow_up is not None:
                next_actor, next_action, next_plan, next_reason = change.follow_up
                change = await next_plan(order, conn, now)
                await self._write(conn, order, next_actor, next_action, change, now, reason=next_reason)
            await order.refresh_from_db(using_db=conn)
        return order

    async def _annotate(self, number: str, actor: Actor, action: str, plan, reason: str | None = None) -> models.Order:
        """Changes that are not transitions (a photo, a location, a note) are still versioned and recorded."""
        now = self.clock.now()
        async with in_transaction() as conn:
            order = await self.get(number, actor, conn)
            if State(order.state) in TERMINAL_STATES:
                from orders.errors import IllegalTransition

                raise IllegalTransition(order.state, action)
            change = await plan(order, conn, now)
            await self._write(conn, order, actor, action, change, now, reason=reason, from_state=State(order.state),
                              to_state=State(order.state))
            await order.refresh_from_db(using_db=conn)
        return order

    async def _write(
        self,
        conn: Any,
        order: models.Order,
        actor: Actor,
        action: Action | str,
        change: _Change,
        now: datetime,
        reason: str | None = None,
        from_state: State | None = None,
        to_state: State | None = None,
    ) -> None:
        from_state = from_state or State(order.state)
        to_state = to_state or transition(from_state, action, actor.role)
        if order.urgent_unnotified and actor.role not in (Role.RESIDENT, Role.SYSTEM):
            # an urgent report that reached nobody when it came in: a staff member acting on it has it in hand
            change.fields["urgent_unnotified"] = False
            change.data = {**change.data, "urgent_attended": True}
        updated = await models.Order.filter(id=order.id, version=order.version).using_db(conn).update(
            **change.fields, state=to_state, version=order.version + 1, updated_at=now
        )
        if updated != 1:
            raise Conflict(f"工单 {order.number} 刚被他人处理,请刷新后重试", number=order.number)
        self._take(order, change, to_state)
        await self._event(conn, order, actor, action, from_state, to_state, now, reason=reason, data=change.data)
        await self._consequences(conn, order, change, now)

    @staticmethod
    def _take(order: models.Order, change: _Change, to_state: State) -> None:
        """The in-memory order after a change written to its row (one version further)."""
        for key, value in change.fields.items():
            setattr(order, key, value)
        order.state, order.version = to_state, order.version + 1

    async def _consequences(self, conn: Any, order: models.Order, change: _Change, now: datetime) -> None:
        """A change's outbox rows and further writes, in the same transaction."""
        for row in change.outbox:
            await self._outbox(conn, order, now, **row)
        await self._send(conn, [(order, notice) for notice in change.notices], now)
        for write in change.after:
            await write(conn)

    @staticmethod
    def _event_row(order, actor: Actor, action, from_state, to_state, now, reason=None, data=None) -> dict[str, Any]:
        return {
            "order_id": order.id, "action": str(action), "from_state": from_state, "to_state": to_state,
            "actor_role": str(actor.role), "actor_id": actor.id, "actor_name": actor.name, "reason": reason,
            "data": data or {}, "at": now,
        }

    @classmethod
    async def _event(cls, conn, order, actor: Actor, action, from_state, to_state, now, reason=None, data=None) -> None:
        await models.OrderEvent(**cls._event_row(order, actor, action, from_state, to_state, now, reason, data)
                                ).save(using_db=conn)

    @staticmethod
    def _outbox_row(order, now, kind: str, recipient: str | None, payload: dict,
                    dedup: str | None = None) -> dict[str, Any]:
        body = {"number": order.number, "state": str(order.state), "urgency": order.urgency,
                "category": order.category, "text": order.text[:200], **payload}
        return {"kind": kind, "order_id": order.id, "recipient": recipient, "payload": body, "dedup_key": dedup,
                "next_attempt_at": now, "created_at": now}  # the other columns take the model's defaults

    async def _outbox(self, conn, order, now, kind: str, recipient: str | None, payload: dict,
                      dedup: str | None = None) -> None:
        try:
            await models.Outbox(**self._outbox_row(order, now, kind, recipient, payload, dedup)).save(using_db=conn)
        except IntegrityError:
            if dedup is None:
                raise
            raise Conflict(f"工单 {order.number} 的通知已存在", number=order.number) from None

    @staticmethod
    async def _staff_directory(conn, notices: list[tuple[models.Order, _Notice]], now) -> _StaffDirectory:
        """The staff these notices may reach, read once (the roster too when one is for whoever is on duty)."""
        roster = any(notice.audience == "on_duty" for _, notice in notices)
        return await _StaffDirectory.load(conn, roster_at=now if roster else None)

    async def _send(self, conn, notices: list[tuple[models.Order, _Notice]], now,
                    directory: _StaffDirectory | None = None) -> None:
        """Outbox rows for the staff each notice is for, in one statement; the staff are read once (`directory`
        when the caller has read them already: it counted whom an urgent alert reaches with the same list)."""
        if not notices:
            return
        directory = directory or await self._staff_directory(conn, notices, now)
        rows = []
        for order, notice in notices:
            # Notices travel through WeChat: personal data masked; the staff who handle the order open it to call.
            payload = {"to": "staff", **redact_all(notice.payload), "text": (redact(order.text) or "")[:200]}
            rows += [self._outbox_row(order, now, notice.kind, address.openid, {**payload, "channel": address.channel})
                     for address in directory.recipients(notice, order)]
        await insert_rows(conn, models.Outbox, rows)

    async def _notify_resident(self, conn, order, kind: str, now, payload: dict, dedup: str | None = None) -> None:
        resident = await models.Resident.get_or_none(id=order.resident_id, using_db=conn)
        if resident is not None:
            await self._outbox(conn, order, now, kind=kind, recipient=resident.openid,
                               payload={"to": "resident", **payload}, dedup=dedup)
        if kind in FOLLOWED_KINDS:
            # 合并工单: the residents whose reports follow this order hear it too, on their own numbers
            followers = await models.Order.filter(merged_into_id=order.id, state=State.MERGED).using_db(conn) \
                .order_by("id")
            for follower in followers:
                await self._notify_resident(conn, follower, kind, now, {**payload, "primary": order.number},
                                            dedup=f"{dedup}:{follower.id}" if dedup else None)

    async def _department_name(self, order, conn) -> str | None:
        if order.department_id is None:
            return None
        department = await self._department(conn, id=order.department_id)
        return department.name if department else None

    @staticmethod
    def _department_notice(department: models.Department | None, kind: str, department_id: int | None = None,
                           extra: dict | None = None) -> _Notice:
        return _Notice(f"notify_{kind}", "department", department.id if department else department_id,
                       {"department": department.name if department else None, **(extra or {})})

    @staticmethod
    def _dispatch_needed_notice(order) -> _Notice:
        return _Notice("notify_dispatch_needed", "grid_workers", payload={"confidence": order.confidence})

    async def _notify_department(self, conn, order, department_id: int, now, kind: str = "dispatched",
                                 extra: dict | None = None) -> None:
        department = await self._department(conn, id=department_id)
        await self._send(conn, [(order, self._department_notice(department, kind, department_id, extra))], now)

    async def _notify_grid_workers(self, conn, order, now) -> None:
        await self._send(conn, [(order, self._dispatch_needed_notice(order))], now)

    async def _notify_grid(self, conn, order, kind: str, now, payload: dict) -> None:
        await self._send(conn, [(order, _Notice(f"notify_{kind}", "grid", payload=payload))], now)

    async def _notify_role(self, conn, order, role: str, kind: str, now, payload: dict) -> None:
        await self._send(conn, [(order, _Notice(f"notify_{kind}", "role", role, payload))], now)

    async def _grid_for(self, latitude: float | None, longitude: float | None, conn,
                        grids: list[models.Grid] | None = None) -> int | None:
        """The grid of a point; `grids` when the caller has read them already (a batch of reports)."""
        if latitude is None or longitude is None:
            return None
        from orders.geo import locate_grid

        if grids is None:
            grids = await models.Grid.all().using_db(conn)
        grid = locate_grid(grids, float(latitude), float(longitude))
        return grid.id if grid else None

    async def _department(self, conn: Any, *, code: str | None = None, id: int | None = None) -> models.Department | None:
        """A department by code or id, from a copy of the table this worker reloads every DEPARTMENT_CACHE_SECONDS
        (and at once when asked for one it does not know): automatic dispatch reads it for every report.
        A renamed or deactivated department is seen by every worker within that time."""
        index, key = (1, code) if code is not None else (2, id)
        cache = self._departments
        if cache is None or time.monotonic() - cache[0] > DEPARTMENT_CACHE_SECONDS or key not in cache[index]:
            rows = await models.Department.all().using_db(conn)
            cache = self._departments = (time.monotonic(), {d.code: d for d in rows}, {d.id: d for d in rows})
        return cache[index].get(key)
