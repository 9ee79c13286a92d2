"""New reports from WeChat, written in groups: a text that reads as a new request, whatever else the resident has
going on, is checked at once and handed to the intake's group commit (bot.intake); its next transaction writes it
with the reports that arrived meanwhile (residents, orders with their events and notices, each message's record).

The batch routes its texts once, before its transaction; the router's screen is part of that routing. A text that
turns out to be no request at all ("你好10", "测试", "asdfgh qwerty") is not written: the batch hands it back as
Screened, and the dialog answers it in its own transaction (the resident's surveys decide that answer), with the
prediction it already has. So every message is routed once, and only requests become orders.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tortoise.transactions import in_transaction

from bot import dialog, replies
from bot.additions import addition_of
from bot.delivery import Held, Outcome, message_record
from bot.dialog import Kind
from bot.replies import Submitted
from bot.inbound import Inbound
from bot.intake import GroupCommit
from orders import models
from orders.clock import Clock
from orders.errors import InvalidInput
from orders.services import OrderService, Report, Submission
from orders.sql import insert_rows
from orders.taxonomy import Taxonomy


@dataclass(frozen=True)
class Screened:
    """A candidate report the router's screen found to be no request (classifiers.Prediction.request is False)."""

    reason: str | None  # a code of classifiers.REASONS


def screened(prediction: Any) -> Screened | None:
    """Screened when the prediction says the text is no request (a classifier without a screen files everything)."""
    if getattr(prediction, "request", True):
        return None
    return Screened(getattr(prediction, "not_request_reason", None))


@dataclass
class NewReport:
    """A message that is a new request whatever else the resident has going on: it goes to the intake batch."""

    inbound: Inbound
    held: Held
    report: Report


def voice_of(inbound: Inbound) -> str | None:
    """A voice message's media id: the resident's own words, kept as evidence with the report they made."""
    return inbound.media_id if inbound.kind == "voice" else None


def submitted_outcome(taxonomy: Taxonomy, submission: Submission, held: Held, duty_phone: str | None) -> Outcome:
    """The reply to a report that became an order (alone or in a batch); `duty_phone`: the township's."""
    order = submission.order
    urgency = taxonomy.urgencies.get(order.urgency) or taxonomy.urgencies["操心事"]
    reply = replies.submitted_reply(Submitted(
        number=order.number,
        category=order.category,
        department=submission.department_name,
        deadline=order.resolve_deadline,
        accept_hours=urgency.accept_hours,
        urgent=order.urgency == taxonomy.most_urgent or bool(getattr(submission.prediction, "danger", False)),
        photos=len(order.photos or []),
        located=order.latitude is not None,
        advice=getattr(submission.prediction, "danger_advice", None),
        urgent_notified=submission.urgent_notified,
        duty_phone=duty_phone,
    ))
    return Outcome(reply, order.id, used_held=bool(held))


class NewReports:
    """Tells a new report from the rest of the dialog and writes the new reports in groups."""

    def __init__(self, orders: OrderService, clock: Clock) -> None:
        self.orders = orders
        self.clock = clock
        self.intake = GroupCommit(self._write_reports)

    def of(self, inbound: Inbound, held: Held) -> NewReport | None:
        """The message as a report for the intake batch, when it is one: a text that reads as a new request
        with or without a survey waiting (so the pending surveys need not be read) and passes the checks."""
        if inbound.kind not in ("text", "voice") or not inbound.text:
            return None
        prefix = self.orders.identity.current.order_prefix  # Conversation.answer keeps it fresh
        if dialog.understand(inbound.text, prefix=prefix).kind != Kind.NEW_REQUEST:
            return None
        if dialog.parse_rating(inbound.text) is not None:  # a score, if a survey waits: the full dialog decides
            return None
        if addition_of(inbound.text) is not None:  # "对了,…": maybe a note on the last order, the dialog decides
            return None
        try:
            report = self.orders.report(openid=inbound.openid, text=inbound.text, photos=held.photos,
                                        location=held.location, voice=voice_of(inbound))
        except InvalidInput:
            return None  # the full dialog answers why
        return NewReport(inbound, held, report)

    async def _write_reports(self, batch: list[NewReport]) -> list[Outcome | Screened]:
        """One transaction for a batch (or a lone report): the residents, the orders with their events and notices,
        the InboundMessage rows with their replies. A message recorded before fails it on the unique msg_key.
        A text that is no request is left out of it and comes back Screened, for the dialog to answer."""
        now = self.clock.now()
        # routed before the transaction opens: its CPU time would otherwise hold the write lock (SQLite) and the
        # resident rows (PostgreSQL) that other workers' batches wait for
        predictions = self.orders.predict_all([new.report.text for new in batch])
        results: list[Outcome | Screened | None] = [screened(prediction) for prediction in predictions]
        chosen = [i for i, result in enumerate(results) if result is None]
        if not chosen:
            return results
        requests = [batch[i] for i in chosen]
        async with in_transaction() as conn:
            residents = await self.orders.resident_ids_seen([new.inbound.openid for new in requests], now, conn)
            reports = []
            for new in requests:
                new.report.resident_id = residents[new.inbound.openid]
                reports.append(new.report)
            submissions = await self.orders.submit_many(reports, conn, [predictions[i] for i in chosen])
            duty_phone = self.orders.identity.current.duty_phone  # read again by submit_many's numbering
            outcomes = [submitted_outcome(self.orders.taxonomy, submission, new.held, duty_phone)
                        for new, submission in zip(requests, submissions)]
            await insert_rows(conn, models.InboundMessage, [message_record(new.inbound, outcome, now)
                                                            for new, outcome in zip(requests, outcomes)])
        self.orders.submitted(submissions)
        for i, outcome in zip(chosen, outcomes):
            results[i] = outcome
        return results
