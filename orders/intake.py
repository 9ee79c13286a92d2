"""点单: a resident's request becomes an order.

Checked (report), routed (predict_all), numbered and written with its events, its InboundMessage and its notices in
one transaction (submit; submit_many for a burst of reports, the bot's group commit), and dispatched at once when the
routing is confident (派单's own change, Handling._dispatch_change). Also the residents behind the openids (created on
first contact), the day's order numbers, and the resident withdrawing a request before anyone accepts it (cancel).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import SHANGHAI
from orders.evidence import resident_media_rows
from orders.lifecycle import Action, State, transition
from orders.residents import contact_phone_in, set_contact_phone
from orders.sql import Sql, insert_rows, insert_with_ids, new_instance
from orders.township.identity import IdentityCache
from orders.unit_of_work import Actor, UnitOfWork, _Change, _clean_text, _Notice, _StaffDirectory

log = logging.getLogger("sidan.orders")

URGENT_ALERT = "notify_urgent_report"  # the outbox kind of the alert of immediate danger (十分钟报告制)


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


@dataclass
class Submission:
    """What submit() returns: the order, and whether this call created it (False for a repeated message)."""

    order: models.Order
    created: bool
    auto_dispatched: bool = False
    prediction: Any = None
    department_name: str | None = None  # where it was dispatched (None: waits for a grid worker)
    # An urgent report: how many staff an alert was queued for (0: nobody, the order is flagged for the first staff
    # member who logs in; the reply must not claim anyone was told). None: not urgent.
    urgent_notified: int | None = None

    @property
    def alerted(self) -> bool:
        """The urgent alert (十分钟报告制) was queued to at least one member of staff: only then may a reply say so."""
        return bool(self.urgent_notified)


class DuplicateMessage(Exception):
    def __init__(self, msg_key: str) -> None:
        super().__init__(msg_key)
        self.msg_key = msg_key


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
    voice: str | None = None  # the WeChat media id of the voice message that said it: kept as evidence


@dataclass
class _SubmissionPlan:
    order: models.Order
    events: list[tuple[Any, ...]]
    notices: list[_Notice] = field(default_factory=list)
    department: models.Department | None = None  # dispatched there at once
    urgent_notified: int | None = None  # see Submission


class Intake(UnitOfWork):
    # set by OrderService.__init__
    classifier: Classifier
    identity: IdentityCache
    on_submit: list[Callable[[models.Order, Any], None]]
    look_for_similar: Callable[[Iterable[models.Order]], None]  # orders/duplicates.py

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
        voice: str | None = None,
    ) -> Report:
        """A request checked and ready to submit (InvalidInput for an empty or overlong text)."""
        resident_id = resident.id if resident is not None and resident.openid == openid else None
        return Report(openid, _clean_text(text), list(photos), location, resident_id, actor, msg_key, msg_type,
                      voice)

    async def submit(self, prediction: PredictionLike | None = None, **report: Any) -> Submission:
        """A resident's request becomes an order (the arguments are those of report()); confident routing
        dispatches it at once. One transaction; DuplicateMessage when its msg_key was already recorded.
        `prediction`: the text's routing when the caller has it already (it screened the text with it)."""
        checked = self.report(**report)
        # before the transaction: see submit_many
        predictions = [prediction] if prediction is not None else self.predict_all([checked.text])
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
        # 合并工单: the open orders likely the same matter, looked for in the background (orders/duplicates.py)
        self.look_for_similar(submission.order for submission in submissions if submission.created)

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
        notices = [(plan.order, notice) for plan in plans for notice in plan.notices]
        directory = await self._staff_directory(conn, notices, now)
        for plan in plans:
            self._count_urgent_alerts(plan, directory)
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
        await insert_rows(conn, models.Media, [row for report, plan in zip(reports, plans)
                                               for row in resident_media_rows(plan.order.id, report.photos,
                                                                              report.voice, now)])
        for report in reports:  # a number the resident left in the report: their contact phone (few reports have one)
            if (phone := contact_phone_in(report.text)) is not None:
                await set_contact_phone(report.resident_id, phone, conn)
        await self._send(conn, notices, now, directory)
        return [Submission(plan.order, True, auto_dispatched=plan.department is not None, prediction=prediction,
                           department_name=plan.department.name if plan.department is not None else None,
                           urgent_notified=plan.urgent_notified)
                for plan, prediction in zip(plans, predictions)]

    @staticmethod
    def _count_urgent_alerts(plan: _SubmissionPlan, directory: _StaffDirectory) -> None:
        """Whom an urgent report's alert reaches, known before its order is written: nobody flags the order, and the
        submit event says how many were told."""
        alerts = [notice for notice in plan.notices if notice.kind == URGENT_ALERT]
        if not alerts:
            return
        plan.urgent_notified = sum(len(directory.recipients(notice, plan.order)) for notice in alerts)
        plan.order.urgent_unnotified = plan.urgent_notified == 0
        plan.events[0][5]["urgent_notified"] = plan.urgent_notified  # the submit event's data

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
            suggestions=self.suggestions_of(prediction),
            state=State.SUBMITTED,
            submitted_at=now,
            updated_at=now,
        )
        plan = _SubmissionPlan(order, events=[(submitter, Action.SUBMIT, None, State.SUBMITTED, None,
                                               {"terms": list(prediction.terms)[:8], "confidence": order.confidence})])
        if getattr(prediction, "danger", False) or urgency == self.taxonomy.most_urgent:
            # 十分钟报告制: whoever is on duty (else the supervisors) hears of immediate danger at once.
            plan.notices.append(_Notice(URGENT_ALERT, "on_duty", payload={"urgency": urgency}))
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

    def suggestions_of(self, prediction: PredictionLike) -> list[dict[str, Any]]:
        """The router's best pairs the taxonomy knows, best first (a router without them: its one answer)."""
        pairs = getattr(prediction, "suggestions", None) or (
            (prediction.category, prediction.department, prediction.confidence),)
        return [{"category": category, "department": department, "confidence": round(float(confidence), 4)}
                for category, department, confidence in pairs
                if category in self.taxonomy.categories and department in self.taxonomy.departments][:3]

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

    async def _next_numbers(self, conn, now: datetime, count: int) -> list[str]:
        """YK20261124-0001 and the next count-1: a per-day counter, advanced atomically by one upsert."""
        day = now.astimezone(SHANGHAI).strftime("%Y%m%d")
        q = Sql(conn.capabilities.dialect)
        sql = (
            f"INSERT INTO daily_counter (day, value) VALUES ({q.param(day)}, {q.param(count)}) "
            "ON CONFLICT (day) DO UPDATE SET value = daily_counter.value + excluded.value RETURNING value"
        )
        last = int((await conn.execute_query_dict(sql, q.values))[0]["value"])
        prefix = (await self.identity.get(conn)).order_prefix
        return [f"{prefix}{day}-{value:04d}" for value in range(last - count + 1, last + 1)]

    # ------------------------------------------------------------------ 撤单
    async def cancel(self, number: str, actor: Actor, reason: str | None = None) -> models.Order:
        async def plan(order: models.Order, conn: Any, now: datetime) -> _Change:
            await self._primary_check(conn, order, "取消")  # others reported the same matter (orders/merging.py)
            change = _Change(fields={"closed_at": now})
            if order.department_id:
                change.after.append(lambda c: self._notify_department(c, order, order.department_id, now, kind="cancelled"))
            return change

        return await self._apply(number, actor, Action.CANCEL, plan, reason=reason or "群众取消")
