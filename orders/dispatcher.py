"""The outbox dispatcher: delivers the Outbox rows the use cases wrote in their transactions.

Claim → send → record, at least once:
- claim: a batch of due rows is marked as ours for a lease (orders/polling.py: no two dispatchers, in any worker or
  host, take the same row).
- send: through an injected Sender (bot.notifier.Notifier in production), outside any transaction.
- record: sent, or a retry at now + exponential backoff with jitter, or dead after max_attempts (and an alert
  row for the supervisors, so an undelivered message is followed up by a person).

A dispatcher that dies between send and record leaves its rows pending; when the lease runs out they are due
again and another dispatcher sends them: a send may repeat, never be lost. Stopping cleanly releases the claims
at once.

The domain imports no WeChat code: the Sender raises the exceptions below to say what went wrong.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.lifecycle import Role
from orders.polling import Poller, Tally, backoff_seconds, default_name, error_text, utc

__all__ = ["ALERT_KIND", "ChannelDown", "DeliveryError", "DispatchReport", "Dispatcher", "Sender", "Undeliverable",
           "backoff_seconds", "default_name", "utc"]
from orders.staff_channels import staff_address

log = logging.getLogger("sidan.outbox")

ALERT_KIND = "notify_delivery_failed"


class DeliveryError(Exception):
    """This message could not be delivered now; retry it later."""


class ChannelDown(DeliveryError):
    """The channel itself is down (network, HTTP errors): the rest of the batch waits instead of failing too."""


class Undeliverable(DeliveryError):
    """Retrying cannot help (no such user, unsubscribed, refused): the message is dead at once."""


class Sender(Protocol):
    async def send(self, message: models.Outbox) -> None:
        """Deliver one message; return normally on success, raise a DeliveryError (or anything) on failure."""


@dataclass
class DispatchReport(Tally):
    sent: int = 0
    retried: int = 0
    dead: int = 0


class Dispatcher(Poller):
    model = models.Outbox
    what = "outbox"
    tally = DispatchReport
    log = log

    def __init__(
        self,
        settings: Settings,
        sender: Sender,
        clock: Clock | None = None,
        *,
        name: str | None = None,
        lease_seconds: float = 300.0,
        poll_seconds: float | None = None,
        batch_size: int | None = None,
        max_attempts: int | None = None,
        backoff_base_seconds: float | None = None,
        backoff_max_seconds: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        outbox = settings.outbox
        super().__init__(clock, name, lease_seconds,
                         poll_seconds if poll_seconds is not None else outbox.poll_seconds,
                         batch_size or outbox.batch_size)
        self.sender = sender
        self.max_attempts = max_attempts or outbox.max_attempts
        self.backoff_base = backoff_base_seconds if backoff_base_seconds is not None else outbox.backoff_base_seconds
        self.backoff_max = backoff_max_seconds if backoff_max_seconds is not None else outbox.backoff_max_seconds
        self.rng = rng or random.Random()
        self.totals = DispatchReport()

    # ------------------------------------------------------------------ one round
    async def run_once(self) -> DispatchReport:
        """Claim one batch of due rows and deliver them in order."""
        report = DispatchReport()
        rows = await self.claim()
        report.claimed = len(rows)
        for index, row in enumerate(rows):
            try:
                await self.sender.send(row)
            except ChannelDown as exc:
                delay = await self._failed(row, exc, report)
                # The rest would fail the same way: they wait as long, without spending an attempt.
                await self._release([r.id for r in rows[index + 1:]], self.now() + timedelta(seconds=delay))
                break
            except Exception as exc:  # noqa: BLE001 - any failure of one message is recorded, never lost
                await self._failed(row, exc, report)
            else:
                await self._sent(row)
                report.sent += 1
        self.totals.add(report)
        return report

    # ------------------------------------------------------------------ record
    async def _sent(self, row: models.Outbox) -> None:
        updated = await self.mine(row.id).update(
            status="sent", sent_at=self.now(), attempts=F("attempts") + 1, claimed_by=None, last_error=None)
        if not updated:
            log.warning("outbox %s was sent after our lease ran out; another dispatcher may send it again", row.id)

    async def _failed(self, row: models.Outbox, error: Exception, report: DispatchReport) -> float:
        attempts = row.attempts + 1
        message = error_text(error)
        if isinstance(error, Undeliverable) or attempts >= self.max_attempts:
            await self._dead(row, attempts, message, self.now())
            report.dead += 1
            return backoff_seconds(attempts, self.backoff_base, self.backoff_max, self.rng)
        delay = await self.retry_later(row, attempts, message)
        log.info("outbox %s (%s) attempt %d failed, retry in %.2fs: %s", row.id, row.kind, attempts, delay, message)
        report.retried += 1
        return delay

    async def _dead(self, row: models.Outbox, attempts: int, message: str, now: datetime) -> None:
        number = (row.payload or {}).get("number")
        log.error("outbox %s (%s, order %s) is dead after %d attempts: %s", row.id, row.kind, number, attempts, message)
        async with in_transaction() as tx:
            updated = await self.mine(row.id).using_db(tx).update(status="dead", attempts=attempts, last_error=message,
                                                                  claimed_by=None)
            if not updated or row.kind == ALERT_KIND:
                return  # an undeliverable alert raises no alert about itself
            supervisors = await models.Staff.filter(
                Q(openid__isnull=False) | Q(oa_openid__isnull=False), role=Role.SUPERVISOR, active=True).using_db(tx)
            if not supervisors:
                log.error("no active supervisor with a WeChat binding to alert about outbox %s", row.id)
            for supervisor in supervisors:
                address = staff_address(supervisor.openid, supervisor.oa_openid)
                await models.Outbox.create(
                    using_db=tx, kind=ALERT_KIND, order_id=row.order_id, recipient=address.openid,
                    payload={"to": "staff", "channel": address.channel, "number": number, "failed_kind": row.kind,
                             "failed_to": (row.payload or {}).get("to"), "attempts": attempts, "error": message},
                    dedup_key=f"alert:{row.id}:{supervisor.id}", next_attempt_at=now, created_at=now)
