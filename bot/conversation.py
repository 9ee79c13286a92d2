"""One resident message in, one reply text out: dedup of WeChat's retries, the per-openid rate limit, and the
use cases behind each intent.

Dedup has two layers. The store holds a claim per message key while the first delivery is processed, then its
reply; concurrent retries wait for that reply. Underneath, every processed message is an InboundMessage row
(unique msg_key) written in the same transaction as the work it caused, with the reply text: if the store is
down, or forgot, the database still refuses to do the work twice and hands back the first reply.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta, timezone
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction
from wechatpy.messages import BaseMessage

from bot import dialog
from bot.dialog import Intent, Kind, OrderView, Submitted
from bot.intake import GroupCommit
from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.errors import Conflict, DomainError, IllegalTransition, InvalidInput, NotFound
from orders.lifecycle import ACTION_LABELS, OPEN_STATES, State
from orders.services import Actor, DuplicateMessage, OrderService, Report, Submission
from orders.sql import insert_rows
from orders.store import LockNotAcquired, Store, StoreUnavailable, lock_key, take_lock

log = logging.getLogger("sidan.bot")

REPLY_BUDGET_SECONDS = 4.5  # WeChat gives up after 5 s and retries; answer (even "busy") before that
RESIDENT_LOCK_SECONDS = 10
# A claim outlives one delivery's processing (the reply budget, then at most the intake's write timeout), and a dead
# worker's claim lapses by WeChat's third delivery (about 10 s after the first). Should a slow delivery outlive its
# claim, the database's unique message key still lets only one of two writers record the message.
CLAIM_SECONDS = 10
FOLLOW_UP_MINUTES = 30  # a photo or location this soon after a report belongs to that report
CANCELLABLE = (State.SUBMITTED, State.DISPATCHED, State.RETURNED)
PASSIVE_EVENTS = {"location", "templatesendjobfinish", "masssendjobfinish", "subscribe_msg_popup_event",
                  "subscribe_msg_change_event", "subscribe_msg_sent_event"}
_PENDING = "\x00pending"
_NO_REPLY = object()  # no reply to give: the first delivery's claim vanished (it failed), time ran out, or no record


@dataclass(frozen=True)
class Inbound:
    """A WeChat message reduced to what the dialog needs."""

    key: str | None  # dedup key; None for passive events (nothing to do, nothing to record)
    openid: str
    kind: str  # text | voice | image | location | event | other
    msg_type: str  # for InboundMessage.msg_type
    text: str | None = None
    media_id: str | None = None
    pic_url: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    label: str | None = None
    event: str | None = None
    event_key: str | None = None


def inbound_from(message: BaseMessage, fields: dict[str, Any]) -> Inbound:
    openid = message.source
    msg_type = str(fields.get("MsgType", "")).lower()
    if msg_type == "event":
        event = str(fields.get("Event", "")).lower()
        if event in PASSIVE_EVENTS:
            return Inbound(None, openid, "event", "ev_passive", event=event)
        event_key = fields.get("EventKey")
        # Events have no MsgId: WeChat's advice is sender + CreateTime; the event and its key tell two different
        # menu clicks in the same second apart (a double click on the same item is one click).
        which = hashlib.sha1(f"{event}|{event_key}".encode()).hexdigest()[:12]
        key = f"evt:{openid}:{fields['CreateTime']}:{which}"
        return Inbound(key, openid, "event", f"ev_{event}"[:16], event=event,
                       event_key=event_key.strip() if isinstance(event_key, str) else None)
    key = f"msg:{openid}:{fields['MsgId']}"  # the sender too: one resident can never replay into another's
    if msg_type == "text":
        return Inbound(key, openid, "text", "text", text=message.content or "")
    if msg_type == "voice":
        return Inbound(key, openid, "voice", "voice", text=(fields.get("Recognition") or "").strip() or None)
    if msg_type == "image":
        return Inbound(key, openid, "image", "image", media_id=message.media_id, pic_url=message.image)
    if msg_type == "location":
        try:
            latitude, longitude = float(fields["Location_X"]), float(fields["Location_Y"])
        except (KeyError, TypeError, ValueError):
            return Inbound(key, openid, "other", "location")
        label = fields.get("Label") if isinstance(fields.get("Label"), str) else None
        return Inbound(key, openid, "location", "location", latitude=latitude, longitude=longitude, label=label)
    return Inbound(key, openid, "other", msg_type[:16] or "unknown")


async def _record_of(key: str) -> Any:
    """The reply recorded with a message in the database (None means `success`), or _NO_REPLY: not recorded."""
    replies = await models.InboundMessage.filter(msg_key=key).values_list("reply", flat=True)
    return replies[0] if replies else _NO_REPLY


@dataclass
class Held:
    """Photos and a location sent before the text they belong to, kept in the store for a few minutes."""

    photos: list[dict[str, Any]] = field(default_factory=list)
    location: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.photos or self.location)


@dataclass
class Outcome:
    reply: str | None
    order_id: int | None = None
    used_held: bool = False  # the held photos/location went into an order: forget them after commit


@dataclass
class _Visit:
    """What one delivery holds in the store, from its way in (one round trip: Conversation._arrive) to its way out
    (one more: Conversation._leave)."""

    openid: str = ""
    store: bool = False  # the store answered: it dedups, throttles, orders a resident's messages, holds photos
    claimed: bool = False  # this delivery is the one that answers the message
    rate_window: int | None = None  # counted in this minute's rate, though a retry: uncount it on the way out
    rate_limited: bool = False
    lock_token: str | None = None  # the resident's lock, while this delivery holds it
    held: Held | None = None  # read while holding that lock
    used_held: bool = False  # went into an order: forget it on the way out


@dataclass
class _NewReport:
    """A message that is a new request whatever else the resident has going on: it goes to the intake batch."""

    inbound: Inbound
    held: Held
    report: Report


class Conversation:
    def __init__(self, settings: Settings, orders: OrderService, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.orders = orders
        self.store = store
        self.clock = clock
        self.prefix = settings.app.order_prefix
        self.intake = GroupCommit(self._write_reports)

    # ------------------------------------------------------------------ dedup
    async def reply_to(self, inbound: Inbound) -> str | None:
        """The reply text (None: answer `success`). Each message key is processed once; retries get the same reply."""
        if inbound.key is None:
            return None
        store_key = f"wx:msg:{inbound.key}"
        deadline = time.monotonic() + REPLY_BUDGET_SECONDS
        while True:
            try:
                visit = await self._arrive(inbound.openid, store_key)
            except StoreUnavailable:
                log.warning("store unavailable: dedup by the database alone")
                reply, _ = await self._answer(inbound, deadline, _Visit())
                return reply
            if visit.claimed:
                return await self._answer_claimed(inbound, store_key, deadline, visit)
            await self._leave(visit)  # another delivery answers: give back what this one took on the way in
            waited = await self._wait_for_reply(inbound, store_key, deadline)
            if waited is not _NO_REPLY:
                return waited
            if time.monotonic() >= deadline:
                return dialog.busy_reply()
            # the claim lapsed without a reply (the first attempt failed): try again ourselves

    async def _arrive(self, openid: str, store_key: str) -> _Visit:
        """One round trip: claim the message, count it against the rate limit, take the resident's lock if it is
        free, read what the resident holds (photos, a location)."""
        window = int(self.clock.now().timestamp() // 60)
        token = secrets.token_hex(8)
        claimed, count, locked, raw_held = await self.store.many([
            ("set", store_key, _PENDING, CLAIM_SECONDS, True),
            ("incr", self._rate_key(openid, window), 120),
            ("set", lock_key(self._resident_lock(openid)), token, RESIDENT_LOCK_SECONDS, True),
            ("get", self._held_key(openid)),
        ])
        return _Visit(openid=openid, store=True, claimed=claimed,
                      rate_limited=claimed and count > self.settings.bot.rate_limit_per_minute,
                      rate_window=None if claimed else window,  # a retry is not a new message
                      lock_token=token if locked else None, held=self._held_from(raw_held) if locked else None)

    async def _leave(self, visit: _Visit, reply_to_remember: Any = _NO_REPLY, store_key: str | None = None) -> None:
        """One round trip on the way out: remember the reply (or forget the claim, so a retry starts afresh), give
        back the resident's lock, forget the held photos an order took, uncount a retry."""
        if not visit.store:
            return
        commands: list[tuple] = []
        if store_key is not None:
            if reply_to_remember is _NO_REPLY:
                commands.append(("delete", store_key))  # a retry may succeed where this attempt did not
            else:
                commands.append(("set", store_key, json.dumps({"reply": reply_to_remember}, ensure_ascii=False),
                                 self.settings.bot.dedup_ttl_seconds, False))
        if visit.lock_token is not None:
            commands.append(("release", lock_key(self._resident_lock(visit.openid)), visit.lock_token))
        if visit.used_held:
            commands.append(("delete", self._held_key(visit.openid)))
        if visit.rate_window is not None:
            commands.append(("decr", self._rate_key(visit.openid, visit.rate_window)))
        if commands:
            with contextlib.suppress(StoreUnavailable):  # the claim and the lock end by themselves at their TTL
                await self.store.many(commands)

    async def _answer_claimed(self, inbound: Inbound, store_key: str, deadline: float, visit: _Visit) -> str | None:
        reply: Any = _NO_REPLY
        done = False
        try:
            reply, done = await self._answer(inbound, deadline, visit)
        finally:
            await self._leave(visit, reply if done else _NO_REPLY, store_key)
        return reply

    async def _wait_for_reply(self, inbound: Inbound, store_key: str, deadline: float) -> Any:
        """The first delivery's reply (None means `success`), or _NO_REPLY. From the store once that delivery puts it
        there; from the database when it recorded the message but never got to the store (its worker died between
        the two): asked first, and again when the wait runs out, rather than answer "busy" for a message that has
        its order (the resident would send it again, and it would be filed twice)."""
        recorded = await self._recorded_reply(inbound.key, deadline)
        if recorded is not _NO_REPLY:
            return recorded
        delay = 0.01
        while time.monotonic() < deadline:
            try:
                value = await self.store.get(store_key)
            except StoreUnavailable:
                return _NO_REPLY
            if value is None:
                return _NO_REPLY
            if value != _PENDING:
                return json.loads(value)["reply"]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)
        return await self._recorded_reply(inbound.key, time.monotonic() + 0.25)  # past the budget: a short look

    @staticmethod
    async def _recorded_reply(key: str, deadline: float) -> Any:
        """_record_of, or _NO_REPLY when it cannot be read before the deadline: a database that hangs must not keep
        WeChat waiting past its 5 s."""
        try:
            async with asyncio.timeout(max(0.05, deadline - time.monotonic())):
                return await _record_of(key)
        except Exception:  # noqa: BLE001 - the caller still has the store and, at worst, "busy"
            log.warning("could not read the record of message %s", key, exc_info=True)
            return _NO_REPLY

    async def _answer(self, inbound: Inbound, deadline: float, visit: _Visit) -> tuple[str | None, bool]:
        """(reply, done) within the reply budget. Any failure (database down, timeout) answers "busy" with
        done=False: it is not remembered, so WeChat's retry gets a fresh attempt."""
        try:
            async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                return await self._answer_once(inbound, visit), True
        except Exception:  # noqa: BLE001 - the resident gets a friendly answer, never a 500
            log.exception("could not answer WeChat message %s", inbound.key)
            return dialog.busy_reply(), False

    async def _answer_once(self, inbound: Inbound, visit: _Visit) -> str | None:
        if not visit.store:  # with the store, the claim already told a first delivery; the row's constraint backs it
            earlier = await _record_of(inbound.key)
            if earlier is not _NO_REPLY:
                return earlier
        if visit.rate_limited:
            return dialog.rate_limited_reply()
        await self._one_at_a_time(inbound.openid, visit)
        if visit.held is not None:
            held = visit.held
        else:  # the lock was taken after _arrive (or there is no store): read what is held now
            held = await self._peek_held(inbound.openid) if visit.store else Held()
        try:
            new_report = self._new_report(inbound, held)
            if new_report is not None:
                outcome = await self.intake.submit(new_report, key=inbound.openid)
            else:
                outcome = await self._handle_in_transaction(inbound, held)
        except (DuplicateMessage, IntegrityError):
            earlier = await _record_of(inbound.key)
            if earlier is _NO_REPLY:
                raise
            return earlier
        visit.used_held = outcome.used_held
        return outcome.reply

    async def _handle_in_transaction(self, inbound: Inbound, held: Held) -> Outcome:
        now = self.clock.now()
        subscribed = {"subscribe": True, "subscribe_scan": True, "unsubscribe": False}.get(inbound.event or "")
        async with in_transaction() as conn:
            resident = await self.orders.resident_seen(inbound.openid, now, conn, subscribed=subscribed)
            outcome = await self._handle(inbound, resident, held)
            # last in the transaction: a second delivery that got this far fails on the unique key, and rolls back
            await models.InboundMessage.create(msg_key=inbound.key, openid=inbound.openid, msg_type=inbound.msg_type,
                                               order_id=outcome.order_id, reply=outcome.reply, received_at=now,
                                               using_db=conn)
        return outcome

    # ------------------------------------------------------------------ new reports, written in groups
    def _new_report(self, inbound: Inbound, held: Held) -> _NewReport | None:
        """The message as a report for the intake batch, when it is one: a text that reads as a new request
        with or without a survey waiting (so the pending surveys need not be read) and passes the checks."""
        if inbound.kind not in ("text", "voice") or not inbound.text:
            return None
        if dialog.understand(inbound.text, prefix=self.prefix).kind != Kind.NEW_REQUEST:
            return None
        if dialog.parse_rating(inbound.text) is not None:  # a score, if a survey waits: the full dialog decides
            return None
        try:
            report = self.orders.report(openid=inbound.openid, text=inbound.text, photos=held.photos,
                                        location=held.location)
        except InvalidInput:
            return None  # the full dialog answers why
        return _NewReport(inbound, held, report)

    async def _write_reports(self, batch: list[_NewReport]) -> list[Outcome]:
        """One transaction for a batch (or a lone report): the residents, the orders with their events and notices,
        the InboundMessage rows with their replies. A message recorded before fails it on the unique msg_key."""
        now = self.clock.now()
        # routed before the transaction opens: its CPU time would otherwise hold the write lock (SQLite) and the
        # resident rows (PostgreSQL) that other workers' batches wait for
        predictions = self.orders.predict_all([new.report.text for new in batch])
        async with in_transaction() as conn:
            residents = await self.orders.resident_ids_seen([new.inbound.openid for new in batch], now, conn)
            reports = []
            for new in batch:
                new.report.resident_id = residents[new.inbound.openid]
                reports.append(new.report)
            submissions = await self.orders.submit_many(reports, conn, predictions)
            outcomes = [self._submitted(submission, new.held) for new, submission in zip(batch, submissions)]
            await insert_rows(conn, models.InboundMessage, [
                {"msg_key": new.inbound.key, "openid": new.inbound.openid, "msg_type": new.inbound.msg_type,
                 "order_id": outcome.order_id, "reply": outcome.reply, "received_at": now}
                for new, outcome in zip(batch, outcomes)])
        self.orders.submitted(submissions)
        return outcomes

    @staticmethod
    def _rate_key(openid: str, window: int) -> str:
        return f"wx:rate:{openid}:{window}"

    @staticmethod
    def _resident_lock(openid: str) -> str:
        return f"wx:resident:{openid}"

    async def _one_at_a_time(self, openid: str, visit: _Visit) -> None:
        """A resident's messages are handled in order (three photos sent at once all reach the same order): hold
        the resident's lock, waiting for it if _arrive found it taken; _leave gives it back. Best effort: without
        the store, optimistic versioning and retries still keep every photo."""
        if visit.store and visit.lock_token is None:
            with contextlib.suppress(StoreUnavailable, LockNotAcquired):
                visit.lock_token = await take_lock(self.store, self._resident_lock(openid), RESIDENT_LOCK_SECONDS,
                                                   wait=3)

    # ------------------------------------------------------------------ held photos and location
    def _held_key(self, openid: str) -> str:
        return f"wx:held:{openid}"

    async def _peek_held(self, openid: str) -> Held:
        try:
            return self._held_from(await self.store.get(self._held_key(openid)))
        except StoreUnavailable:
            return Held()

    @staticmethod
    def _held_from(raw: str | None) -> Held:
        if not raw:
            return Held()
        data = json.loads(raw)
        return Held(photos=data.get("photos") or [], location=data.get("location"))

    async def _hold(self, openid: str, photo: dict[str, Any] | None = None,
                    location: dict[str, Any] | None = None) -> bool:
        """Keep a photo or location for the next new request; False when the store cannot keep it."""
        minutes = self.settings.bot.image_attach_minutes
        if minutes <= 0:
            return False
        try:
            held = await self._peek_held(openid)
            if photo and all(p.get("media_id") != photo["media_id"] for p in held.photos):
                held.photos = (held.photos + [photo])[-9:]
            if location:
                held.location = location
            await self.store.set(self._held_key(openid),
                                 json.dumps({"photos": held.photos, "location": held.location}, ensure_ascii=False),
                                 ttl=minutes * 60)
        except StoreUnavailable:
            return False
        return True

    # ------------------------------------------------------------------ the dialog
    async def _handle(self, inbound: Inbound, resident: models.Resident, held: Held) -> Outcome:
        actor = Actor.of_resident(resident)
        if inbound.kind == "event":
            return await self._on_event(inbound, resident, actor)
        if inbound.kind == "voice" and not inbound.text:
            return Outcome(dialog.voice_not_understood())
        if inbound.kind in ("text", "voice"):
            return await self._on_text(inbound, resident, actor, held)
        if inbound.kind == "image":
            return await self._on_photo(inbound, resident, actor)
        if inbound.kind == "location":
            return await self._on_location(inbound, resident, actor)
        return Outcome(dialog.unsupported_reply())

    async def _on_event(self, inbound: Inbound, resident: models.Resident, actor: Actor) -> Outcome:
        if inbound.event in ("subscribe", "subscribe_scan"):
            return Outcome(dialog.welcome(self.settings.app.township))
        if inbound.event == "unsubscribe":
            return Outcome(None)
        if inbound.event == "click":
            key = (inbound.event_key or "").upper()
            if key == "REPORT":
                return Outcome(dialog.report_hint())
            if key == "MY_ORDERS":
                return Outcome(await self._my_orders(resident))
            if key == "RATE":
                return Outcome(dialog.rate_hint(await self._pending_surveys(resident)))
            return Outcome(dialog.help_text())
        if inbound.event == "scan":
            return Outcome(dialog.greeting_reply())
        return Outcome(None)  # view (a menu link) and other events: nothing to say

    async def _on_text(self, inbound: Inbound, resident: models.Resident, actor: Actor, held: Held) -> Outcome:
        text = inbound.text or ""
        intent = dialog.understand(text, prefix=self.prefix)
        pending: list[str] = []
        # Only a score, thanks or "评价" read differently with a survey waiting: read the surveys just for those.
        if dialog.parse_rating(text) is not None or intent.kind in (Kind.THANKS, Kind.RATE_HINT):
            pending = await self._pending_surveys(resident)
            if pending:
                intent = dialog.understand(text, prefix=self.prefix, pending_survey=True)
        match intent.kind:
            case Kind.NEW_REQUEST:
                return await self._submit(inbound, text, held, resident)
            case Kind.GREETING:
                return Outcome(dialog.greeting_reply())
            case Kind.THANKS if pending:  # "修好了,谢谢" while a survey waits: ask for the score
                return Outcome(dialog.thanks_reply() + "\n" + dialog.rate_hint(pending))
            case Kind.THANKS:
                return Outcome(dialog.thanks_reply())
            case Kind.HELP:
                return Outcome(dialog.help_text())
            case Kind.REPORT_HINT:
                return Outcome(dialog.report_hint())
            case Kind.MY_ORDERS:
                return Outcome(await self._my_orders(resident))
            case Kind.QUERY:
                return await self._query(intent.number, actor)
            case Kind.CANCEL:
                return await self._cancel(intent.number, resident, actor)
            case Kind.RATE:
                return await self._rate(intent, pending, actor)
            case Kind.RATE_HINT:
                return Outcome(dialog.rate_hint(pending))
            case Kind.SUPPLEMENT:
                return await self._supplement(intent.number, resident, actor, held)
        return Outcome(dialog.unclear_reply())

    async def _submit(self, inbound: Inbound, text: str, held: Held, resident: models.Resident) -> Outcome:
        try:
            submission = await self.orders.submit(
                openid=inbound.openid, text=text, photos=held.photos, location=held.location, resident=resident,
            )
        except InvalidInput as exc:
            return Outcome(dialog.invalid_input_reply(exc.message))
        return self._submitted(submission, held)

    def _submitted(self, submission: Submission, held: Held) -> Outcome:
        order = submission.order
        taxonomy = self.orders.taxonomy
        urgency = taxonomy.urgencies.get(order.urgency) or taxonomy.urgencies["操心事"]
        reply = dialog.submitted_reply(Submitted(
            number=order.number,
            category=order.category,
            department=submission.department_name,
            deadline=order.resolve_deadline,
            accept_hours=urgency.accept_hours,
            urgent=order.urgency == taxonomy.most_urgent or bool(getattr(submission.prediction, "danger", False)),
            photos=len(order.photos or []),
            located=order.latitude is not None,
        ))
        return Outcome(reply, order.id, used_held=bool(held))

    async def _pending_surveys(self, resident: models.Resident) -> list[str]:
        """Orders waiting for this resident's rating, most recently resolved first."""
        return list(await models.Order.filter(resident_id=resident.id, state=State.RESOLVED)
                    .order_by("-resolved_at", "-id").values_list("number", flat=True))

    async def _my_orders(self, resident: models.Resident) -> str:
        query = models.Order.filter(resident_id=resident.id)
        total = await query.count()
        recent = await query.order_by("-submitted_at", "-id").limit(5)
        return dialog.my_orders_reply([self._view(order) for order in recent], total)

    @staticmethod
    def _view(order: models.Order, department: str | None = None, event: models.OrderEvent | None = None) -> OrderView:
        note = event.reason if event is not None and event.action in ("progress", "resolve") else None
        return OrderView(
            number=order.number, text=order.text, state=order.state, category=order.category,
            department=department, submitted_at=order.submitted_at, deadline=order.resolve_deadline,
            last_action=event.action if event else None, last_at=event.at if event else None, last_note=note,
        )

    async def _query(self, number: str | None, actor: Actor) -> Outcome:
        try:
            order = await self.orders.get(number, actor)
        except NotFound:
            return Outcome(dialog.not_found_reply(number))
        department = await models.Department.get_or_none(id=order.department_id) if order.department_id else None
        # The last step of the order's handling (lifecycle actions only: photo, location and reminder notes are not
        # news to the resident).
        event = await models.OrderEvent.filter(order_id=order.id, action__in=list(ACTION_LABELS)) \
            .order_by("-id").first()
        view = self._view(order, department.name if department else None, event)
        return Outcome(dialog.status_reply(view), order.id)

    async def _cancel(self, number: str | None, resident: models.Resident, actor: Actor) -> Outcome:
        if number is None:
            cancellable = await models.Order.filter(resident_id=resident.id, state__in=list(CANCELLABLE)) \
                .order_by("-submitted_at", "-id").values_list("number", flat=True)
            return Outcome(dialog.cancel_needs_number(list(cancellable)))
        try:
            order = await self.orders.cancel(number, actor, reason="群众在公众号取消")
        except NotFound:
            return Outcome(dialog.not_found_reply(number))
        except IllegalTransition as exc:
            return Outcome(dialog.cannot_cancel_reply(number, exc.state))
        return Outcome(dialog.cancelled_reply(number), order.id)

    async def _rate(self, intent: Intent, pending: list[str], actor: Actor) -> Outcome:
        number = pending[0]
        try:
            order = await self.orders.rate(number, actor, intent.score, resolved=intent.resolved,
                                           comment=intent.comment)
        except IllegalTransition:
            return Outcome(dialog.already_rated_reply(number))
        unsatisfied = intent.score <= 2 or intent.resolved is False
        escalated = unsatisfied and order.state != State.REOPENED
        reply = dialog.rated_reply(number, intent.score, order.state, escalated, pending[1] if len(pending) > 1 else None)
        return Outcome(reply, order.id)

    async def _recent_open_order(self, resident: models.Resident, within_minutes: float | None = None):
        query = models.Order.filter(resident_id=resident.id, state__in=list(OPEN_STATES))
        if within_minutes is not None:
            since = (self.clock.now() - timedelta(minutes=within_minutes)).astimezone(timezone.utc)
            query = query.filter(submitted_at__gte=since)  # UTC like the stored values: SQLite compares text
        return await query.order_by("-submitted_at", "-id").first()

    async def _on_photo(self, inbound: Inbound, resident: models.Resident, actor: Actor) -> Outcome:
        photo = {"media_id": inbound.media_id, "url": inbound.pic_url, "at": self.clock.now().isoformat()}
        recent = await self._recent_open_order(resident, FOLLOW_UP_MINUTES)
        if recent is not None:
            return await self._attach(recent.number, actor, [photo], None)
        latest = await self._recent_open_order(resident)
        if await self._hold(inbound.openid, photo=photo):
            return Outcome(dialog.photo_held_reply(self.settings.bot.image_attach_minutes,
                                                   latest.number if latest else None))
        if latest is not None:  # nowhere to keep it: the open order is the best guess
            return await self._attach(latest.number, actor, [photo], None)
        return Outcome(dialog.photo_needs_text_reply())

    async def _on_location(self, inbound: Inbound, resident: models.Resident, actor: Actor) -> Outcome:
        location = {"latitude": inbound.latitude, "longitude": inbound.longitude, "label": inbound.label}
        recent = await self._recent_open_order(resident, FOLLOW_UP_MINUTES)
        if recent is not None:
            return await self._attach(recent.number, actor, [], location)
        latest = await self._recent_open_order(resident)
        if await self._hold(inbound.openid, location=location):
            return Outcome(dialog.location_held_reply(self.settings.bot.image_attach_minutes,
                                                      latest.number if latest else None))
        if latest is not None:
            return await self._attach(latest.number, actor, [], location)
        return Outcome(dialog.no_open_order_reply())

    async def _supplement(self, number: str | None, resident: models.Resident, actor: Actor, held: Held) -> Outcome:
        if number is None:
            latest = await self._recent_open_order(resident)
            if latest is None:
                return Outcome(dialog.no_open_order_reply())
            number = latest.number
        if not held:
            return Outcome(dialog.nothing_to_supplement_reply(number))
        outcome = await self._attach(number, actor, held.photos, held.location, summary=True)
        outcome.used_held = outcome.order_id is not None
        return outcome

    async def _attach(self, number: str, actor: Actor, photos: list[dict[str, Any]], location: dict[str, Any] | None,
                      summary: bool = False) -> Outcome:
        """Photos and/or a location onto an order; a concurrent change (version conflict) is retried."""
        try:
            order = None
            for photo in photos:
                order = await _retry_conflicts(lambda p=photo: self.orders.add_photo(number, actor, p["media_id"],
                                                                                    p.get("url")))
            if location:
                order = await _retry_conflicts(lambda: self.orders.set_location(
                    number, actor, float(location["latitude"]), float(location["longitude"]), location.get("label")))
        except NotFound:
            return Outcome(dialog.not_found_reply(number))
        except IllegalTransition as exc:
            return Outcome(dialog.order_closed_reply(number, exc.state))
        except DomainError as exc:
            return Outcome(dialog.invalid_input_reply(exc.message))
        if summary:
            return Outcome(dialog.supplemented_reply(number, len(photos), bool(location)), order.id)
        if location:
            grid = await models.Grid.get_or_none(id=order.grid_id) if order.grid_id else None
            return Outcome(dialog.location_set_reply(number, location.get("label"), grid.name if grid else None),
                           order.id)
        return Outcome(dialog.photo_added_reply(number, len(order.photos or [])), order.id)


async def _retry_conflicts(call, attempts: int = 3):
    for attempt in range(attempts):
        try:
            return await call()
        except Conflict as exc:
            if isinstance(exc, IllegalTransition) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")

