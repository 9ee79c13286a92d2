"""One resident message answered: what the resident wants (bot.dialog's intent), the use case behind it, the reply.

bot.delivery hands each message here once (dedup, rate limit, the resident's lock, the photos it holds). A new
report goes to the intake batch (bot.new_reports); any other message, and a candidate report the batch's routing
found to be no request at all, is answered in its own transaction, which records the message
(delivery.message_record) with the work it caused.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta, timezone
from typing import Any

from tortoise.transactions import in_transaction

from bot import binding, dialog, linking, order_status, replies, surveys
from bot.additions import added_reply, addition_of, belongs_to
from bot.delivery import Delivery, Held, Outcome, Query, message_record
from bot.dialog import Intent, Kind
from bot.inbound import Inbound
from bot.new_reports import NewReports, Screened, screened, submitted_outcome, voice_of
from orders import models, unionid_lookup
from orders.clock import Clock
from orders.config import Settings
from orders.errors import Conflict, DomainError, IllegalTransition, InvalidInput, NotFound
from orders.invitations import bind_with_invitation
from orders.link_codes import CODE_MINUTES, LinkCodes
from orders.residents import set_contact_phone
from orders.lifecycle import OPEN_STATES, State
from orders.services import Actor, OrderService
from orders.staff_channels import OFFICIAL_ACCOUNT
from orders.store import Store, StoreUnavailable

log = logging.getLogger("sidan.bot")

FOLLOW_UP_MINUTES = 30  # a photo or location this soon after a report belongs to that report
CANCELLABLE = (State.SUBMITTED, State.DISPATCHED, State.RETURNED)
# Intents answered differently while a survey waits: the pending surveys are read for these (and for scores) only.
SURVEY_AWARE = (Kind.THANKS, Kind.GREETING, Kind.RATE_HINT, Kind.VAGUE_RATING, Kind.NOT_REQUEST)


class Conversation:
    """The dialog behind the /wechat door: reply_to(inbound) gives the reply text (bot.web renders it)."""

    def __init__(self, settings: Settings, orders: OrderService, store: Store, clock: Clock) -> None:
        self.settings = settings
        self.orders = orders
        self.store = store
        self.clock = clock
        self.new_reports = NewReports(orders, clock)
        self.intake = self.new_reports.intake
        self.delivery = Delivery(settings, store, clock, self.answer)
        self.link_codes = LinkCodes(store, settings.auth.jwt_secret)
        self._looked_up: set[str] = set()  # openids whose unionid lookup this worker has asked for

    async def reply_to(self, inbound: Inbound, query: Query | None = None) -> str | None:
        """The reply text (None: answer `success`); each message key is answered once, a signed query brings one
        message only (bot.delivery)."""
        return await self.delivery.reply_to(inbound, query)

    @property
    def prefix(self) -> str:
        """The township's order prefix (its file's, else config's): residents quote their order numbers with it."""
        return self.orders.identity.current.order_prefix

    async def answer(self, inbound: Inbound, held: Held) -> Outcome:
        """The delivery's handler: the work a message asks for, recorded with it."""
        await self.orders.identity.get()  # a query once a minute: a newly applied township file is seen here
        new_report = self.new_reports.of(inbound, held)
        if new_report is not None:
            written = await self.intake.submit(new_report, key=inbound.openid)
            if isinstance(written, Screened):
                written = await self._handle_in_transaction(inbound, held, written)
        else:
            written = await self._handle_in_transaction(inbound, held)
        await self._look_up_unionid(inbound.openid)
        return written

    async def _look_up_unionid(self, openid: str) -> None:
        """Once the message is committed: the resident's unionid fetched in the background (orders.unionid_lookup),
        asked for once per worker; the reply never waits for WeChat, nor fails for this."""
        if openid in self._looked_up:
            return
        try:
            await unionid_lookup.ensure(openid, self.clock.now())
        except Exception:  # noqa: BLE001 - asked again with the resident's next message
            log.exception("unionid lookup not queued")
            return
        if len(self._looked_up) > 100_000:
            self._looked_up.clear()
        self._looked_up.add(openid)

    async def _handle_in_transaction(self, inbound: Inbound, held: Held, screen: Screened | None = None) -> Outcome:
        """The message answered and recorded in one transaction; `screen`: the batch found it is no request."""
        now = self.clock.now()
        subscribed = {"subscribe": True, "subscribe_scan": True, "unsubscribe": False}.get(inbound.event or "")
        async with in_transaction() as conn:
            resident = await self.orders.resident_seen(inbound.openid, now, conn, subscribed=subscribed)
            if screen is not None:
                outcome = Outcome(await self._not_request(screen.reason, inbound.text or "", resident))
            else:
                outcome = await self._handle(inbound, resident, held)
            # last in the transaction: a second delivery that got this far fails on the unique key, and rolls back
            await models.InboundMessage.create(**message_record(inbound, outcome, now), using_db=conn)
        return outcome

    # ------------------------------------------------------------------ the dialog
    async def _handle(self, inbound: Inbound, resident: models.Resident, held: Held) -> Outcome:
        actor = Actor.of_resident(resident)
        if inbound.kind == "event":
            return await self._on_event(inbound, resident, actor)
        if inbound.kind == "voice" and not inbound.text:
            return Outcome(replies.voice_not_understood())
        if inbound.kind in ("text", "voice"):
            return await self._on_text(inbound, resident, actor, held)
        if inbound.kind == "image":
            return await self._on_photo(inbound, resident, actor)
        if inbound.kind == "location":
            return await self._on_location(inbound, resident, actor)
        return Outcome(replies.unsupported_reply())

    async def _on_event(self, inbound: Inbound, resident: models.Resident, actor: Actor) -> Outcome:
        if inbound.event in ("subscribe", "subscribe_scan"):
            return Outcome(replies.welcome(self.orders.identity.current.name))
        if inbound.event == "unsubscribe":
            return Outcome(None)
        if inbound.event == "click":
            key = (inbound.event_key or "").upper()
            if key == "REPORT":
                return Outcome(replies.report_hint())
            if key == "MY_ORDERS":
                return Outcome(await order_status.my_orders(resident))
            if key == "RATE":
                return Outcome(surveys.rate_hint(await self._pending_surveys(resident)))
            return Outcome(replies.help_text())
        if inbound.event == "scan":
            return Outcome(replies.greeting_reply())
        return Outcome(None)  # view (a menu link) and other events: nothing to say

    async def _on_text(self, inbound: Inbound, resident: models.Resident, actor: Actor, held: Held) -> Outcome:
        text = inbound.text or ""
        intent = dialog.understand(text, prefix=self.prefix)
        pending: list[str] = []
        if surveys.parse_rating(text) is not None or intent.kind in SURVEY_AWARE:
            pending = await self._pending_surveys(resident)
            if pending:
                intent = dialog.understand(text, prefix=self.prefix, pending_survey=True)
        match intent.kind:
            case Kind.NEW_REQUEST:
                return await self._addition(inbound, text, held, resident, actor) \
                    or await self._submit(inbound, text, held, resident)
            case Kind.NOT_REQUEST:
                return Outcome(self._not_request_reply(intent.reason, text, pending))
            case Kind.GREETING:
                return Outcome(self._not_request_reply("greeting", text, pending))
            case Kind.THANKS:  # "修好了,谢谢" while a survey waits: ask for the score
                return Outcome(self._not_request_reply("thanks", text, pending))
            case Kind.HELP:
                return Outcome(replies.help_text())
            case Kind.REPORT_HINT:
                return Outcome(replies.report_hint())
            case Kind.MY_ORDERS:
                return Outcome(await order_status.my_orders(resident))
            case Kind.QUERY:
                return await order_status.status(self.orders, intent.number, actor)
            case Kind.CANCEL:
                return await self._cancel(intent.number, resident, actor)
            case Kind.RATE:
                return await self._rate(intent, pending, actor)
            case Kind.RATE_HINT:
                return Outcome(surveys.rate_hint(pending))
            case Kind.VAGUE_RATING:
                return Outcome(surveys.survey_again_reply(pending) if pending else surveys.rate_hint(pending))
            case Kind.SUPPLEMENT:
                return await self._supplement(intent.number, resident, actor, held)
            case Kind.NOTE:
                return await self._note(intent, inbound, resident, actor, held)
            case Kind.BIND:
                return Outcome(await self._bind_staff(intent.code, inbound.openid))
            case Kind.LINK:
                try:
                    code = await self.link_codes.issue(resident.id)
                    return Outcome(linking.link_code_reply(code, CODE_MINUTES),
                                   record=linking.link_code_reply("******", CODE_MINUTES))
                except StoreUnavailable:
                    return Outcome(linking.link_unavailable_reply())
            case Kind.CONTACT:
                await set_contact_phone(resident.id, intent.phone)
                return Outcome(linking.contact_saved_reply(intent.phone))
        raise AssertionError(f"unhandled intent {intent.kind}")

    async def _bind_staff(self, code: str, openid: str) -> str:
        """"绑定 <邀请码>": the invitation's staff member is reached here from now on (template messages)."""
        if not code:
            return binding.needs_code_reply()
        try:
            staff = await bind_with_invitation(code, openid, channel=OFFICIAL_ACCOUNT, now=self.clock.now())
        except DomainError as exc:
            return binding.refused_reply(exc.message)
        department = await models.Department.get_or_none(id=staff.department_id) if staff.department_id else None
        grid = await models.Grid.get_or_none(id=staff.grid_id) if staff.grid_id else None
        where = department.name if department else grid.name if grid else None
        return binding.bound_reply(staff.name, staff.role, where)

    async def _not_request(self, reason: str | None, text: str, resident: models.Resident) -> str:
        return self._not_request_reply(reason, text, await self._pending_surveys(resident))

    @staticmethod
    def _not_request_reply(reason: str | None, text: str, pending: list[str]) -> str:
        """No order for a message that is no request; with a survey waiting, it is taken as a try at answering it."""
        if not pending:
            return replies.not_request_reply(reason, text)
        if reason in ("greeting", "thanks"):
            return f"{replies.not_request_reply(reason, text).splitlines()[0]}\n{surveys.rate_hint(pending)}"
        return surveys.survey_again_reply(pending)

    async def _addition(self, inbound: Inbound, text: str, held: Held, resident: models.Resident,
                        actor: Actor) -> Outcome | None:
        """"对了,灯杆在村委会门口" minutes after a report: a note on that order (bot.additions), if it reads as one."""
        note = addition_of(text)
        minutes = self.settings.bot.addition_minutes
        if note is None or not minutes:
            return None
        recent = await self._recent_open_order(resident, minutes)
        if recent is None:
            return None
        [prediction] = self.orders.predict_all([text])
        department = await models.Department.get_or_none(id=recent.department_id) if recent.department_id else None
        if not belongs_to(prediction, department.code if department else recent.predicted_department,
                          self.orders.taxonomy.most_urgent, self.settings.classifier.confidence_threshold):
            return await self._submit(inbound, text, held, resident, prediction=prediction)
        try:
            order = await _retry_conflicts(lambda: self.orders.add_note(recent.number, actor, note))
        except DomainError:
            return await self._submit(inbound, text, held, resident, prediction=prediction)
        if not held:
            return Outcome(added_reply(recent.number, note), order.id)
        attached = await self._attach(recent.number, actor, held.photos, held.location, summary=True)
        return Outcome(f"{added_reply(recent.number, note)}\n{attached.reply}", order.id,
                       used_held=attached.order_id is not None)

    async def _submit(self, inbound: Inbound, text: str, held: Held, resident: models.Resident,
                      as_note: bool = False, prediction: Any = None) -> Outcome:
        """A new report outside the intake batch (a text that might have been a score, a note with no order to go
        on, an afterthought that is a matter of its own): screened and routed here, once."""
        try:
            report = self.orders.report(openid=inbound.openid, text=text, photos=held.photos,
                                        location=held.location, resident=resident)
        except InvalidInput as exc:
            return Outcome(replies.invalid_input_reply(exc.message))
        if prediction is None:
            [prediction] = self.orders.predict_all([report.text])
        screen = screened(prediction)
        if screen is not None:
            if as_note:
                return Outcome(replies.note_without_order_reply())
            return Outcome(await self._not_request(screen.reason, text, resident))
        submission = await self.orders.submit(openid=inbound.openid, text=report.text, photos=held.photos,
                                              location=held.location, resident=resident, prediction=prediction,
                                              voice=voice_of(inbound))
        outcome = submitted_outcome(self.orders.taxonomy, submission, held, self.orders.identity.current.duty_phone)
        if as_note:
            outcome.reply = replies.note_filed_as_report_reply(outcome.reply)
        return outcome

    async def _pending_surveys(self, resident: models.Resident) -> list[str]:
        """Orders waiting for this resident's rating, most recently resolved first."""
        return list(await models.Order.filter(resident_id=resident.id, state=State.RESOLVED)
                    .order_by("-resolved_at", "-id").values_list("number", flat=True))

    async def _cancel(self, number: str | None, resident: models.Resident, actor: Actor) -> Outcome:
        if number is None:
            cancellable = await models.Order.filter(resident_id=resident.id, state__in=list(CANCELLABLE)) \
                .order_by("-submitted_at", "-id").values_list("number", flat=True)
            return Outcome(replies.cancel_needs_number(list(cancellable)))
        try:
            order = await self.orders.cancel(number, actor, reason="群众在公众号取消")
        except NotFound:
            return Outcome(replies.not_found_reply(number))
        except IllegalTransition as exc:
            return Outcome(replies.cannot_cancel_reply(number, exc.state))
        except InvalidInput as exc:  # others reported the same matter and follow this order (合并工单)
            return Outcome(f"{exc}。问题解决后会请您评价。")
        return Outcome(replies.cancelled_reply(number), order.id)

    async def _rate(self, intent: Intent, pending: list[str], actor: Actor) -> Outcome:
        number = pending[0]
        try:
            order = await self.orders.rate(number, actor, intent.score, resolved=intent.resolved,
                                           comment=intent.comment)
        except IllegalTransition:
            return Outcome(surveys.already_rated_reply(number))
        unsatisfied = intent.score <= 2 or intent.resolved is False
        escalated = unsatisfied and order.state not in (State.REOPENED, State.MERGED)  # merged: its primary reopened
        next_pending = pending[1] if len(pending) > 1 else None
        reply = surveys.rated_reply(number, intent.score, order.state, escalated, next_pending)
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
        if await self.delivery.hold(inbound.openid, photo=photo):
            return Outcome(replies.photo_held_reply(self.settings.bot.image_attach_minutes,
                                                   latest.number if latest else None))
        if latest is not None:  # nowhere to keep it: the open order is the best guess
            return await self._attach(latest.number, actor, [photo], None)
        return Outcome(replies.photo_needs_text_reply())

    async def _on_location(self, inbound: Inbound, resident: models.Resident, actor: Actor) -> Outcome:
        location = {"latitude": inbound.latitude, "longitude": inbound.longitude, "label": inbound.label}
        recent = await self._recent_open_order(resident, FOLLOW_UP_MINUTES)
        if recent is not None:
            return await self._attach(recent.number, actor, [], location)
        latest = await self._recent_open_order(resident)
        if await self.delivery.hold(inbound.openid, location=location):
            return Outcome(replies.location_held_reply(self.settings.bot.image_attach_minutes,
                                                      latest.number if latest else None))
        if latest is not None:
            return await self._attach(latest.number, actor, [], location)
        return Outcome(replies.no_open_order_reply())

    async def _supplement(self, number: str | None, resident: models.Resident, actor: Actor, held: Held) -> Outcome:
        if number is None:
            latest = await self._recent_open_order(resident)
            if latest is None:
                return Outcome(replies.no_open_order_reply())
            number = latest.number
        if not held:
            return Outcome(replies.nothing_to_supplement_reply(number))
        outcome = await self._attach(number, actor, held.photos, held.location, summary=True)
        outcome.used_held = outcome.order_id is not None
        return outcome

    async def _note(self, intent: Intent, inbound: Inbound, resident: models.Resident, actor: Actor,
                    held: Held) -> Outcome:
        """"补充:…" onto the numbered order (if it is the resident's) or their latest open one, with the photos or
        location they sent just before. No open order: the words are what they want heard, so they become a new
        report (screened like any other)."""
        number = intent.number
        if number is None:
            latest = await self._recent_open_order(resident)
            if latest is None:
                return await self._submit(inbound, intent.note, held, resident, as_note=True)
            number = latest.number
        try:
            order = await _retry_conflicts(lambda: self.orders.add_note(number, actor, intent.note))
        except DomainError as exc:
            return _refused(number, exc)
        reply = replies.note_added_reply(number, intent.note)
        if not held:
            return Outcome(reply, order.id)
        attached = await self._attach(number, actor, held.photos, held.location, summary=True)
        return Outcome(f"{reply}\n{attached.reply}", order.id, used_held=attached.order_id is not None)

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
        except DomainError as exc:
            return _refused(number, exc)
        if summary:
            return Outcome(replies.supplemented_reply(number, len(photos), bool(location)), order.id)
        if location:
            grid = await models.Grid.get_or_none(id=order.grid_id) if order.grid_id else None
            return Outcome(replies.location_set_reply(number, location.get("label"), grid.name if grid else None),
                           order.id)
        return Outcome(replies.photo_added_reply(number, len(order.photos or [])), order.id)


def _refused(number: str, exc: DomainError) -> Outcome:
    """Why an addition to an order (photo, location, note) was refused, as the resident reads it."""
    if isinstance(exc, NotFound):
        return Outcome(replies.not_found_reply(number))
    if isinstance(exc, IllegalTransition):
        return Outcome(replies.order_closed_reply(number, exc.state))
    return Outcome(replies.invalid_input_reply(exc.message))


async def _retry_conflicts(call, attempts: int = 3):
    for attempt in range(attempts):
        try:
            return await call()
        except Conflict as exc:
            if isinstance(exc, IllegalTransition) or attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")
