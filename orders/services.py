"""The use cases: 点单 submit, 派单 dispatch, 接单 accept, 办单 progress/resolve, 退单 return_, 延期 extend,
验单 rate, 重办 reopen, cancel, close_unrated, 督单 escalate.

Each runs in one transaction: it checks the transition table, changes the order with a conditional update
(the version column, so two staff accepting at once cannot both win), writes its OrderEvent and any
Outbox rows in that same transaction. The bot and the API call these; no business rule lives in a door.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import SHANGHAI, Clock
from orders.config import Settings
from orders.deadlines import DeadlinePolicy
from orders.errors import Conflict, InvalidInput, NotFound
from orders.lifecycle import ESCALATION_LEVELS, Action, Role, State, transition
from orders.sql import Sql, insert_rows, insert_with_ids, new_instance
from orders.taxonomy import Taxonomy, load_taxonomy

log = logging.getLogger("sidan.orders")

MAX_TEXT = 2000
DEPARTMENT_CACHE_SECONDS = 60.0
MAX_ESCALATION = 2


class PredictionLike(Protocol):
    category: str | None
    department: str | None
    urgency: str
    confidence: float
    terms: tuple[str, ...]
    danger: bool


class Classifier(Protocol):
    """What the domain needs of the routing classifier (classifiers.Router satisfies it)."""

    def predict(self, text: str) -> PredictionLike: ...


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
class Submission:
    """What submit() returns: the order, and whether this call created it (False for a repeated message)."""

    order: models.Order
    created: bool
    auto_dispatched: bool = False
    prediction: Any = None
    department_name: str | None = None  # where it was dispatched (None: waits for a grid worker)


class DuplicateMessage(Exception):
    def __init__(self, msg_key: str) -> None:
        super().__init__(msg_key)
        self.msg_key = msg_key


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
    "grid_workers" (the order's grid's, else every grid worker), "role" (everyone with role = target)."""

    kind: str
    audience: str
    target: Any = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Recipient:
    openid: str
    role: str
    department_id: int | None
    grid_id: int | None


class _StaffDirectory:
    """The staff who can be told anything (active, with an openid), read once for a change or a burst of them.

    Read afresh every time (a deactivated member must stop hearing of residents' reports at once), but only the four
    columns it needs, by plain SQL: the ORM's queryset and model instances cost more than the statement itself."""

    def __init__(self, staff: list[_Recipient]) -> None:
        # indexed once: a burst of reports asks for recipients several times per order
        self._by_role: dict[str, list[_Recipient]] = {}
        for person in staff:
            self._by_role.setdefault(person.role, []).append(person)
        self._grid_workers = self._by_role.get(Role.GRID_WORKER, [])

    @classmethod
    async def load(cls, conn: Any) -> _StaffDirectory:
        q = Sql(conn.capabilities.dialect)
        rows = await conn.execute_query_dict(
            "SELECT openid, role, department_id, grid_id FROM staff "
            f"WHERE active = {q.param(True)} AND openid IS NOT NULL ORDER BY id", q.values)
        return cls([_Recipient(row["openid"], row["role"], row["department_id"], row["grid_id"]) for row in rows])

    def recipients(self, notice: _Notice, order: models.Order) -> list[str]:
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
            case _:
                raise ValueError(f"unknown audience {notice.audience!r}")
        return [person.openid for person in people]


@dataclass
class Report:
    """A resident's request, checked (OrderService.report), on its way to becoming an order."""

    openid: str
    text: str
    photos: list[dict[str, Any]]
    location: dict[str, Any] | None
    resident_id: int | None = None  # the resident row of openid, when the caller has it (else found or created)
    actor: Actor | None = None
    msg_key: str | None = None  # recorded as an InboundMessage with the order
    msg_type: str = "text"


@dataclass
class _SubmissionPlan:
    order: models.Order
    events: list[tuple[Any, ...]]
    notices: list[_Notice] = field(default_factory=list)
    department: models.Department | None = None  # dispatched there at once


def _clean_text(text: str, what: str = "内容", limit: int = MAX_TEXT) -> str:
    if not isinstance(text, str):
        raise InvalidInput(f"{what}必须是文字")
    cleaned = text.replace("\x00", "").strip()
    if not cleaned:
        raise InvalidInput(f"{what}不能为空")
    if len(cleaned) > limit:
        raise InvalidInput(f"{what}太长了(最多 {limit} 字)")
    return cleaned


class OrderService:
    def __init__(
        self,
        settings: Settings,
        classifier: Classifier,
        clock: Clock | None = None,
        taxonomy: Taxonomy | None = None,
        on_submit: Iterable[Callable[[models.Order, Any], None]] = (),
    ) -> None:
        self.settings = settings
        self.on_submit = list(on_submit)  # observers (metrics); called after the transaction commits
        self.classifier = classifier
        self.clock = clock or Clock()
        self.taxonomy = taxonomy or load_taxonomy()
        self.deadlines = DeadlinePolicy(settings, self.taxonomy)
        self._departments: tuple[float, dict[str, models.Department], dict[int, models.Department]] | None = None

    # ------------------------------------------------------------------ 点单
    def report(
        self,
        *,
        openid: str,
        text: str,
        photos: Iterable[dict[str, Any]] = (),
        location: dict[str, Any] | None = None,
        msg_key: str | None = None,
        msg_type: str = "text",
        actor: Actor | None = None,
        resident: models.Resident | None = None,
    ) -> Report:
        """A request checked and ready to submit (InvalidInput for an empty or overlong text)."""
        resident_id = resident.id if resident is not None and resident.openid == openid else None
        return Report(openid, _clean_text(text), list(photos), location, resident_id, actor, msg_key, msg_type)

    async def submit(self, **report: Any) -> Submission:
        """A resident's request becomes an order (the arguments are those of report()); confident routing
        dispatches it at once. One transaction; DuplicateMessage when its msg_key was already recorded."""
        checked = self.report(**report)
        predictions = self.predict_all([checked.text])  # before the transaction: see submit_many
        try:
            async with in_transaction() as conn:
                [submission] = await self.submit_many([checked], conn, predictions)
        except IntegrityError as exc:
            if checked.msg_key and await models.InboundMessage.filter(msg_key=checked.msg_key).exists():
                raise DuplicateMessage(checked.msg_key) from exc
            raise
        self.submitted([submission])
        return submission

    def submitted(self, submissions: Iterable[Submission]) -> None:
        """Tell the observers (metrics), once the transaction that wrote these orders has committed. An observer that
        fails is logged: the orders are written and their callers must hear so."""
        for submission in submissions:
            for observe in self.on_submit:
                try:
                    observe(submission.order, submission.prediction)
                except Exception:  # noqa: BLE001
                    log.exception("submission observer %r failed for %s", observe, submission.order.number)

    async def submit_many(self, reports: list[Report], conn: Any,
                          predictions: list[PredictionLike] | None = None) -> list[Submission]:
        """Several requests become orders inside the caller's transaction, in a fixed number of statements
        whatever their count (the bot's intake writes a burst of reports together). The caller calls
        submitted() after it commits. `predictions` (predict_all of the texts) may be made before the transaction
        opens, so the routing's CPU time is not spent holding the database's locks.

        Each order is written once, already in its final state (submitted, or dispatched when the routing is
        confident), with one event per transition: the same rows as submitting and then dispatching."""
        now = self.clock.now()
        if predictions is None:
            predictions = self.predict_all([report.text for report in reports])
        normalize = getattr(self.classifier, "normalize", lambda t: t)
        grids = await models.Grid.all().using_db(conn) if any(report.location for report in reports) else []
        plans = []
        for report, prediction in zip(reports, predictions, strict=True):
            if report.resident_id is None:
                resident, _ = await models.Resident.get_or_create(openid=report.openid, using_db=conn)
                report.resident_id = resident.id
            plans.append(await self._plan_submission(conn, report, prediction, normalize(report.text), grids, now))
        # Numbered last, just before the orders are written: the day's counter is one row that every concurrent
        # intake transaction updates, and it stays locked until this one commits.
        for plan, number in zip(plans, await self._next_numbers(conn, now, len(plans))):
            plan.order.number = number
        await insert_with_ids(conn, [plan.order for plan in plans], key="number")
        await insert_rows(conn, models.OrderEvent, [
            self._event_row(plan.order, who, action, before, after, now, reason, data)
            for plan in plans for who, action, before, after, reason, data in plan.events])
        await insert_rows(conn, models.InboundMessage, [
            {"msg_key": report.msg_key, "openid": report.openid, "msg_type": report.msg_type,
             "order_id": plan.order.id, "reply": None, "received_at": now}
            for report, plan in zip(reports, plans) if report.msg_key])
        await self._send(conn, [(plan.order, notice) for plan in plans for notice in plan.notices], now)
        return [Submission(plan.order, True, auto_dispatched=plan.department is not None, prediction=prediction,
                           department_name=plan.department.name if plan.department is not None else None)
                for plan, prediction in zip(plans, predictions)]

    def predict_all(self, texts: list[str]) -> list[PredictionLike]:
        """The routing of several texts, as one batch where the classifier can."""
        predict_many = getattr(self.classifier, "predict_many", None)
        if predict_many is not None and len(texts) > 1:
            return list(predict_many(texts))
        return [self.classifier.predict(text) for text in texts]

    async def _plan_submission(self, conn: Any, report: Report, prediction: PredictionLike, normalized: str,
                               grids: list[models.Grid], now: datetime) -> _SubmissionPlan:
        """One report's order (not yet written, not yet numbered), its events and whom to tell."""
        urgency = prediction.urgency if prediction.urgency in self.taxonomy.urgencies else "操心事"
        department_code = prediction.department
        confident = (
            department_code in self.taxonomy.departments
            and prediction.category in self.taxonomy.categories
            and self.taxonomy.allows(prediction.category, department_code)
            and prediction.confidence >= self.settings.classifier.confidence_threshold
        )
        submitter = report.actor or Actor.resident(report.resident_id, report.openid)
        transition(None, Action.SUBMIT, submitter.role)
        location = report.location or {}
        grid_id = await self._grid_for(location.get("latitude"), location.get("longitude"), conn, grids)
        order = new_instance(
            models.Order,
            resident_id=report.resident_id,
            text=report.text,
            normalized_text=normalized,
            photos=report.photos,
            latitude=location.get("latitude"),
            longitude=location.get("longitude"),
            location_label=location.get("label"),
            grid_id=grid_id,
            category=prediction.category if prediction.category in self.taxonomy.categories else None,
            urgency=urgency,
            confidence=round(float(prediction.confidence), 4),
            predicted_category=prediction.category,
            predicted_department=department_code,
            state=State.SUBMITTED,
            submitted_at=now,
            updated_at=now,
        )
        plan = _SubmissionPlan(order, events=[(submitter, Action.SUBMIT, None, State.SUBMITTED, None,
                                               {"terms": list(prediction.terms)[:8], "confidence": order.confidence})])
        if getattr(prediction, "danger", False) or urgency == self.taxonomy.most_urgent:
            # 十分钟报告制: the supervisor hears of immediate danger at once.
            plan.notices.append(_Notice("notify_urgent_report", "role", Role.SUPERVISOR, {"urgency": urgency}))
        department = await self._department(conn, code=department_code) if confident else None
        plan.department = department if department is not None and department.active else None
        if plan.department is not None:
            system = Actor.system("自动派单")
            to_state = transition(State.SUBMITTED, Action.DISPATCH, system.role)
            change = self._dispatch_change(order, plan.department, prediction.category, now, auto=True)
            self._take(order, change, to_state)
            plan.events.append((system, Action.DISPATCH, State.SUBMITTED, to_state,
                                f"自动派单(置信度 {order.confidence:.2f})", change.data))
            plan.notices.extend(change.notices)
        else:
            plan.notices.append(self._dispatch_needed_notice(order))
        return plan

    async def resident_seen(self, openid: str, now: datetime, conn: Any,
                            subscribed: bool | None = None) -> models.Resident:
        """The resident behind an openid, created on first contact, with the time of their latest message (WeChat's
        48-hour customer-service window) and, on a (un)subscribe event, the subscription: one statement."""
        columns = ", ".join(models.Resident._meta.fields_db_projection.values())
        [row] = await self._upsert_residents([openid], now, conn, subscribed, columns)
        # _init_from_db converts each column as Tortoise does for the rows it reads itself
        return models.Resident._init_from_db(**row)

    async def resident_ids_seen(self, openids: Iterable[str], now: datetime, conn: Any) -> dict[str, int]:
        """resident_seen for several openids in one statement (a burst of reports), only their ids: nothing to convert
        back."""
        return {row["openid"]: row["id"] for row in await self._upsert_residents(openids, now, conn, None, "id, openid")}

    @staticmethod
    async def _upsert_residents(openids: Iterable[str], now: datetime, conn: Any, subscribed: bool | None,
                                returning: str) -> list[dict[str, Any]]:
        fields = models.Resident._meta.fields_map
        at = fields["last_message_at"].to_db_value(now, models.Resident)
        created = fields["created_at"].to_db_value(now, models.Resident)
        update = "last_message_at = excluded.last_message_at"
        if subscribed is not None:
            update += ", subscribed = excluded.subscribed"
        q = Sql(conn.capabilities.dialect)
        # one row per openid: an upsert may not touch the same row twice
        values = ", ".join(q.in_list([openid, True if subscribed is None else subscribed, at, created])
                           for openid in dict.fromkeys(openids))
        sql = (
            f"INSERT INTO resident (openid, subscribed, last_message_at, created_at) VALUES {values} "
            f"ON CONFLICT (openid) DO UPDATE SET {update} RETURNING {returning}"
        )
        return await conn.execute_query_dict(sql, q.values)

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

    # ------------------------------------------------------------------ 派单
    async def dispatch(
        self, number: str, actor: Actor, department_code: str, category: str | None = None, reason: str | None = None
    ) -> models.Order:
        department = await models.Department.get_or_none(code=department_code, active=True)
        if department is None:
            raise InvalidInput(f"没有这个部门:{department_code}")
        category = category or None

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            chosen = category or (
                order.predicted_category
                if order.predicted_category and self.taxonomy.allows(order.predicted_category, department_code)
                else self.taxonomy.default_category(department_code)
            )
            if chosen not in self.taxonomy.categories:
                raise InvalidInput(f"没有这个分类:{chosen}")
            if not self.taxonomy.allows(chosen, department_code):
                raise InvalidInput(f"“{chosen}”类事项不能派给{department.name}")
            change = self._dispatch_change(order, department, chosen, now, auto=False)
            corrected = (department_code, chosen) != (order.predicted_department, order.predicted_category)
            if corrected:
                change.after.append(
                    lambda c: models.Correction.create(
                        using_db=c, order_id=order.id, text=order.text, category=chosen, department=department_code,
                        source="redispatch", staff_id=actor.id, at=now,
                    )
                )
                if order.auto_dispatched:
                    change.fields["routing_corrected"] = True
            change.data["corrected"] = corrected
            return change

        return await self._apply(number, actor, Action.DISPATCH, plan, reason=reason)

    def _dispatch_change(
        self, order: models.Order, department: models.Department, category: str, now: datetime, auto: bool
    ) -> _Change:
        change = _Change(
            fields={
                "department_id": department.id,
                "category": category,
                "dispatched_at": now,
                "accept_deadline": self.deadlines.accept_deadline(now, order.urgency),
                "resolve_deadline": self.deadlines.resolve_deadline(
                    now, order.urgency, dispute=self.deadlines.is_dispute(category, department.code)),
                "overdue": False,
            },
            data={"department": department.code, "category": category, "auto": auto},
        )
        if auto:
            change.fields["auto_dispatched"] = True
        change.notices.append(self._department_notice(department, "dispatched"))
        return change

    # ------------------------------------------------------------------ 退单
    async def return_(
        self,
        number: str,
        actor: Actor,
        reason: str,
        suggested_category: str | None = None,
        suggested_department: str | None = None,
    ) -> models.Order:
        reason = _clean_text(reason, "退单理由", 500)
        if suggested_department and suggested_department not in self.taxonomy.departments:
            raise InvalidInput(f"没有这个部门:{suggested_department}")
        if suggested_category and suggested_category not in self.taxonomy.categories:
            raise InvalidInput(f"没有这个分类:{suggested_category}")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"department_id": None, "returned_at": now, "accepted_by_id": None})
            if suggested_department:
                category = suggested_category or self.taxonomy.default_category(suggested_department)
                if not self.taxonomy.allows(category, suggested_department):
                    raise InvalidInput(f"“{category}”类事项不能派给该部门")
                change.after.append(
                    lambda c: models.Correction.create(
                        using_db=c, order_id=order.id, text=order.text, category=category,
                        department=suggested_department, source="return", staff_id=actor.id, at=now,
                    )
                )
                change.data.update(suggested_department=suggested_department, suggested_category=category)
            if order.auto_dispatched:
                change.fields["routing_corrected"] = True
            change.after.append(lambda c: self._notify_grid_workers(c, order, now))
            return change

        return await self._apply(number, actor, Action.RETURN, plan, reason=reason)

    # ------------------------------------------------------------------ 接单
    async def accept(self, number: str, actor: Actor) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            within = order.accept_deadline is None or now <= order.accept_deadline
            change = _Change(fields={"accepted_at": now, "accepted_by_id": actor.id})
            if order.state == State.DISPATCHED:
                change.fields["accepted_within_deadline"] = within
            change.data["within_deadline"] = within
            if order.overdue and (order.resolve_deadline is None or now <= order.resolve_deadline):
                # Overdue only for want of acceptance: accepting ends it (the escalation level stays).
                change.fields["overdue"] = False
            department = await self._department_name(order, conn)
            change.after.append(lambda c: self._notify_resident(c, order, "accepted", now, {"department": department}))
            return change

        return await self._apply(number, actor, Action.ACCEPT, plan)

    # ------------------------------------------------------------------ 办单
    async def progress(self, number: str, actor: Actor, note: str, photos: Iterable[str] = ()) -> models.Order:
        note = _clean_text(note, "进展说明", 1000)
        photo_ids = [str(p) for p in photos][:9]

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            return _Change(data={"note": note, "photos": photo_ids})

        return await self._apply(number, actor, Action.PROGRESS, plan, reason=note)

    async def request_extension(self, number: str, actor: Actor, days: int, reason: str) -> models.Order:
        reason = _clean_text(reason, "延期理由", 500)
        if not isinstance(days, int) or not 1 <= days <= 90:
            raise InvalidInput("延期天数应在 1 到 90 天之间")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"extension_days_requested": days}, data={"days": days})
            change.after.append(lambda c: self._notify_role(c, order, "supervisor", "extension_requested", now,
                                                            {"days": days, "reason": reason}))
            return change

        return await self._apply(number, actor, Action.REQUEST_EXTENSION, plan, reason=reason)

    async def extend(self, number: str, actor: Actor, days: int | None = None, reason: str | None = None) -> models.Order:
        """A supervisor approves an extension: the resolve deadline moves."""

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            granted = days if days is not None else order.extension_days_requested
            if not granted or not 1 <= granted <= 90:
                raise InvalidInput("没有待批准的延期申请,请写明延期天数(1–90)")
            start = max(order.resolve_deadline or now, now) if order.overdue else (order.resolve_deadline or now)
            new_deadline = self.deadlines.add_days(start, granted)
            return _Change(
                fields={"resolve_deadline": new_deadline, "extension_days_requested": None,
                        "overdue": bool(order.accept_deadline and not order.accepted_at and order.accept_deadline < now)},
                data={"days": granted, "resolve_deadline": new_deadline.isoformat()},
            )

        return await self._apply(number, actor, Action.EXTEND, plan, reason=reason)

    async def deny_extension(self, number: str, actor: Actor, reason: str) -> models.Order:
        reason = _clean_text(reason, "驳回理由", 500)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            if not order.extension_days_requested:
                raise InvalidInput("没有待处理的延期申请")
            return _Change(fields={"extension_days_requested": None})

        return await self._apply(number, actor, Action.DENY_EXTENSION, plan, reason=reason)

    async def resolve(self, number: str, actor: Actor, result: str) -> models.Order:
        result = _clean_text(result, "办理结果", 2000)

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"resolved_at": now, "result": result, "overdue": False,
                                     "extension_days_requested": None})
            change.after.append(lambda c: self._notify_resident(
                c, order, "survey", now, {"result": result, "round": order.reopen_count},
                dedup=f"survey:{order.id}:{order.reopen_count}"))
            return change

        return await self._apply(number, actor, Action.RESOLVE, plan, reason=result)

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
            if score <= 2 or not resolved:
                change.follow_up = self._unsatisfied_follow_up(order, comment)
            return change

        return await self._apply(number, actor, Action.RATE, plan, reason=comment)

    def _unsatisfied_follow_up(self, order: models.Order, comment: str | None):
        """重办: back to the same department, at most max_reopens times; after that the supervisor decides.

        Runs in the rating's own transaction, so a rating never stands without its consequence."""
        reason = f"群众评价不满意:{comment}" if comment else "群众评价不满意"
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
            return change

        return plan

    async def cancel(self, number: str, actor: Actor, reason: str | None = None) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            change = _Change(fields={"closed_at": now})
            if order.department_id:
                change.after.append(lambda c: self._notify_department(c, order, order.department_id, now, kind="cancelled"))
            return change

        return await self._apply(number, actor, Action.CANCEL, plan, reason=reason or "群众取消")

    async def close_unrated(self, number: str) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            return _Change(fields={"closed_at": now})

        return await self._apply(number, Actor.system("回访期满"), Action.CLOSE_UNRATED, plan,
                                 reason=f"{self.settings.survey.window_days} 天内未评价")

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

    # ------------------------------------------------------------------ additions from the resident
    async def add_photo(self, number: str, actor: Actor, media_id: str, url: str | None = None) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            photos = list(order.photos or [])
            if len(photos) >= 9:
                raise InvalidInput("每个工单最多 9 张照片")
            photos.append({"media_id": media_id, "url": url, "at": now.isoformat()})
            return _Change(fields={"photos": photos}, data={"media_id": media_id})

        return await self._annotate(number, actor, "add_photo", plan)

    async def set_location(self, number: str, actor: Actor, latitude: float, longitude: float,
                           label: str | None = None) -> models.Order:
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise InvalidInput("位置坐标无效")

        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            grid_id = await self._grid_for(latitude, longitude, conn)
            fields = {"latitude": latitude, "longitude": longitude, "location_label": (label or "")[:128] or None}
            if grid_id is not None:
                fields["grid_id"] = grid_id
            return _Change(fields=fields, data={"grid_id": grid_id, "label": label})

        return await self._annotate(number, actor, "set_location", plan)

    # ------------------------------------------------------------------ machinery
    async def get(self, number: str, actor: Actor | None = None, conn: Any = None) -> models.Order:
        """The order, if `actor` may see it; otherwise NotFound, so numbers outside one's scope cannot be probed."""
        order = await models.Order.get_or_none(number=number, using_db=conn)
        if order is None or (actor is not None and not self.can_see(actor, order)):
            raise NotFound(f"没有找到工单 {number}")
        return order

    @staticmethod
    def can_see(actor: Actor, order: models.Order) -> bool:
        """Scope: residents their own orders, departments theirs, grid workers their grids' queue."""
        match actor.role:
            case Role.RESIDENT:
                return order.resident_id == actor.id
            case Role.DEPT_STAFF:
                return order.department_id is not None and order.department_id == actor.department_id
            case Role.GRID_WORKER:
                return order.grid_id is None or order.grid_id == actor.grid_id
            case _:
                return True

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

    async def _annotate(self, number: str, actor: Actor, action: str, plan) -> models.Order:
        """Changes that are not transitions (a photo, a location) are still versioned and recorded."""
        now = self.clock.now()
        async with in_transaction() as conn:
            order = await self.get(number, actor, conn)
            if State(order.state) in (State.CANCELLED, State.CLOSED_UNRATED, State.VERIFIED):
                from orders.errors import IllegalTransition

                raise IllegalTransition(order.state, action)
            change = await plan(order, conn, now)
            await self._write(conn, order, actor, action, change, now, from_state=State(order.state),
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

    async def _send(self, conn, notices: list[tuple[models.Order, _Notice]], now) -> None:
        """Outbox rows for the staff each notice is for, in one statement; the staff are read once."""
        if not notices:
            return
        directory = await _StaffDirectory.load(conn)
        rows = [self._outbox_row(order, now, notice.kind, openid, {"to": "staff", **notice.payload})
                for order, notice in notices for openid in directory.recipients(notice, order)]
        await insert_rows(conn, models.Outbox, rows)

    async def _notify_resident(self, conn, order, kind: str, now, payload: dict, dedup: str | None = None) -> None:
        resident = await models.Resident.get_or_none(id=order.resident_id, using_db=conn)
        if resident is not None:
            await self._outbox(conn, order, now, kind=kind, recipient=resident.openid,
                               payload={"to": "resident", **payload}, dedup=dedup)

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

    async def _next_numbers(self, conn, now: datetime, count: int) -> list[str]:
        """YK20261124-0001 and the next count-1: a per-day counter, advanced atomically by one upsert."""
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        q = Sql(conn.capabilities.dialect)
        sql = (
            f"INSERT INTO daily_counter (day, value) VALUES ({q.param(day)}, {q.param(count)}) "
            "ON CONFLICT (day) DO UPDATE SET value = daily_counter.value + excluded.value RETURNING value"
        )
        last = int((await conn.execute_query_dict(sql, q.values))[0]["value"])
        return [f"{self.settings.app.order_prefix}{day}-{value:04d}" for value in range(last - count + 1, last + 1)]
