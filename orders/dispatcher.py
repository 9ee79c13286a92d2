"""The outbox dispatcher: delivers the Outbox rows the use cases wrote in their transactions.

Claim → send → record, at least once:
- claim: a short statement marks a batch of due rows as ours (claimed_by) and moves their next_attempt_at to
  the end of a lease. On PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`, so dispatchers in several
  workers or hosts never wait for each other nor take the same row; on SQLite (one process) a conditional
  update per row does the same job.
- send: through an injected Sender (bot.notifier.Notifier in production), outside any transaction.
- record: sent, or a retry at now + exponential backoff with jitter, or dead after max_attempts (and an alert
  row for the supervisors, so an undelivered message is followed up by a person).

A dispatcher that dies between send and record leaves its rows pending; when the lease runs out they are due
again and another dispatcher sends them: a send may repeat, never be lost. Stopping cleanly releases the claims
at once.

The domain imports no WeChat code: the Sender raises the exceptions below to say what went wrong.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.lifecycle import Role
from orders.staff_channels import staff_address

log = logging.getLogger("sidan.outbox")

ALERT_KIND = "notify_delivery_failed"
MAX_ERROR_CHARS = 500


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
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def add(self, other: DispatchReport) -> None:
        self.claimed += other.claimed
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead


def backoff_seconds(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base·2^(attempts-1)).

    The jitter spreads retries of many messages that failed together (WeChat down) so they do not return as
    one burst; the lower half-bound keeps the delay growing."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return ceiling / 2 + rng.random() * ceiling / 2


def utc(moment: datetime) -> datetime:
    """Times in queries are UTC: Tortoise stores UTC on SQLite and compares a filter's value as written."""
    return moment.astimezone(timezone.utc)


def default_name() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Dispatcher:
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
        self.sender = sender
        self.clock = clock or Clock()
        self.name = (name or default_name())[:64]
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds if poll_seconds is not None else outbox.poll_seconds
        self.batch_size = batch_size or outbox.batch_size
        self.max_attempts = max_attempts or outbox.max_attempts
        self.backoff_base = backoff_base_seconds if backoff_base_seconds is not None else outbox.backoff_base_seconds
        self.backoff_max = backoff_max_seconds if backoff_max_seconds is not None else outbox.backoff_max_seconds
        self.rng = rng or random.Random()
        self.totals = DispatchReport()
        self.failed_rounds = 0  # rounds failed in a row: the loop is failing (readiness), not one message

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

    async def run_until_idle(self, max_rounds: int = 1000) -> DispatchReport:
        """Rounds until nothing is due (tests and `sidan worker --once`)."""
        total = DispatchReport()
        for _ in range(max_rounds):
            report = await self.run_once()
            total.add(report)
            if report.claimed == 0:
                break
        return total

    # ------------------------------------------------------------------ the loop
    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; on the way out (also when cancelled) release what we still hold."""
        try:
            while not stop.is_set():
                try:
                    report = await self.run_once()
                    self.failed_rounds = 0
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the database may be away for a moment: keep the loop alive
                    self.failed_rounds += 1
                    log.exception("outbox round failed; trying again in %.1fs", self.poll_seconds)
                    with contextlib.suppress(Exception):
                        await self.release()  # due again now rather than when the lease runs out
                    report = DispatchReport()
                if report.claimed < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                released = await self.release()
                if released:
                    log.info("outbox dispatcher %s released %d claimed messages", self.name, released)

    # ------------------------------------------------------------------ claim
    def now(self) -> datetime:
        return utc(self.clock.now())

    async def claim(self) -> list[models.Outbox]:
        now = self.now()
        lease_end = now + self.lease
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            rows = await conn.execute_query_dict(
                "UPDATE outbox SET claimed_by = $1, next_attempt_at = $2 "
                "WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= $3 "
                "ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id",
                [self.name, lease_end, now, self.batch_size],
            )
            ids = [row["id"] for row in rows]
        else:
            ids = []
            async with in_transaction() as tx:
                due = await (models.Outbox.filter(status="pending", next_attempt_at__lte=now)
                             .order_by("next_attempt_at", "id").limit(self.batch_size)
                             .using_db(tx).values_list("id", flat=True))
                for row_id in due:
                    # Conditional: another process on the same SQLite file may have taken it meanwhile.
                    taken = await models.Outbox.filter(id=row_id, status="pending", next_attempt_at__lte=now).using_db(
                        tx).update(claimed_by=self.name, next_attempt_at=lease_end)
                    if taken:
                        ids.append(row_id)
        if not ids:
            return []
        return list(await models.Outbox.filter(id__in=ids, claimed_by=self.name).order_by("id"))

    # ------------------------------------------------------------------ record
    async def _sent(self, row: models.Outbox) -> None:
        updated = await models.Outbox.filter(id=row.id, claimed_by=self.name, status="pending").update(
            status="sent", sent_at=self.now(), attempts=F("attempts") + 1, claimed_by=None, last_error=None)
        if not updated:
            log.warning("outbox %s was sent after our lease ran out; another dispatcher may send it again", row.id)

    async def _failed(self, row: models.Outbox, error: Exception, report: DispatchReport) -> float:
        attempts = row.attempts + 1
        message = f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]
        now = self.now()
        if isinstance(error, Undeliverable) or attempts >= self.max_attempts:
            await self._dead(row, attempts, message, now)
            report.dead += 1
            return backoff_seconds(attempts, self.backoff_base, self.backoff_max, self.rng)
        delay = backoff_seconds(attempts, self.backoff_base, self.backoff_max, self.rng)
        await models.Outbox.filter(id=row.id, claimed_by=self.name, status="pending").update(
            attempts=attempts, last_error=message, claimed_by=None, next_attempt_at=now + timedelta(seconds=delay))
        log.info("outbox %s (%s) attempt %d failed, retry in %.2fs: %s", row.id, row.kind, attempts, delay, message)
        report.retried += 1
        return delay

    async def _dead(self, row: models.Outbox, attempts: int, message: str, now: datetime) -> None:
        number = (row.payload or {}).get("number")
        log.error("outbox %s (%s, order %s) is dead after %d attempts: %s", row.id, row.kind, number, attempts, message)
        async with in_transaction() as tx:
            updated = await models.Outbox.filter(id=row.id, claimed_by=self.name, status="pending").using_db(
                tx).update(status="dead", attempts=attempts, last_error=message, claimed_by=None)
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

    async def _release(self, ids: list[int], at: datetime) -> int:
        if not ids:
            return 0
        return await models.Outbox.filter(id__in=ids, claimed_by=self.name, status="pending").update(
            claimed_by=None, next_attempt_at=at)

    async def release(self) -> int:
        """Hand back every row we still hold (shutdown): due at once for the next dispatcher."""
        return await models.Outbox.filter(claimed_by=self.name, status="pending").update(
            claimed_by=None, next_attempt_at=self.now())
