"""Rows that are jobs, worked by background loops in every worker: the outbox (orders/dispatcher.py), the media
downloads (orders/media_fetch.py) and the unionid lookups (orders/unionid_lookup.py).

A job row is `pending` and due once `next_attempt_at` has passed. A loop claims a batch in one short statement
(claimed_by = its name, next_attempt_at = the end of a lease): on PostgreSQL the rows are picked with
`FOR UPDATE SKIP LOCKED`, so loops in several workers or hosts never wait for each other nor take the same row; on
SQLite (one process) a conditional update per row does the same. A loop that dies leaves its rows to become due
again when the lease runs out; stopping cleanly hands them back at once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from orders.clock import Clock


MAX_ERROR_CHARS = 500  # of a failed attempt's error, kept on its row


def error_text(error: Exception) -> str:
    """A failed attempt's error as its row keeps it."""
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


def backoff_seconds(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base·2^(attempts-1)).

    The jitter spreads retries of many jobs that failed together (WeChat down) so they do not return as one burst;
    the lower half-bound keeps the delay growing."""
    ceiling = min(cap, base * (2 ** max(0, attempts - 1)))
    return ceiling / 2 + rng.random() * ceiling / 2


def utc(moment: datetime) -> datetime:
    """Times in queries are UTC: Tortoise stores UTC on SQLite and compares a filter's value as written."""
    return moment.astimezone(timezone.utc)


def default_name() -> str:
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Tally:
    """What rounds did, counted: how many rows they claimed, and the subclass's outcomes."""

    claimed: int = 0

    def add(self, other: Tally) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


class Poller:
    """Claim due rows of `model`, work them (run_once), poll again; the subclass records each row's outcome."""

    model: Any  # a Tortoise model with status, next_attempt_at, claimed_by
    what: str  # in the logs: "outbox", "media download"
    tally: type[Tally]  # what run_once returns
    log: logging.Logger
    # the retry policy, set by the subclass: a failed attempt waits backoff_seconds(attempts, base, max, rng)
    backoff_base: float
    backoff_max: float
    rng: random.Random

    def __init__(self, clock: Clock | None, name: str | None, lease_seconds: float, poll_seconds: float,
                 batch_size: int) -> None:
        self.clock = clock or Clock()
        self.name = (name or default_name())[:64]
        self.lease = timedelta(seconds=lease_seconds)
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.failed_rounds = 0  # rounds failed in a row: the loop is failing (readiness), not one job

    async def run_once(self) -> Any:
        """Claim one batch and work it; returns its Tally."""
        raise NotImplementedError

    async def run_until_idle(self, max_rounds: int = 1000) -> Any:
        """Rounds until nothing is due (tests and `sidan worker --once`)."""
        total = self.tally()
        for _ in range(max_rounds):
            report = await self.run_once()
            total.add(report)
            if report.claimed == 0:
                break
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set; on the way out (also when cancelled) release what we still hold."""
        try:
            while not stop.is_set():
                claimed = 0
                try:
                    claimed = (await self.run_once()).claimed
                    self.failed_rounds = 0
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the database may be away for a moment: keep the loop alive
                    self.failed_rounds += 1
                    self.log.exception("%s round failed; trying again in %.1fs", self.what, self.poll_seconds)
                    with contextlib.suppress(Exception):
                        await self.release()  # due again now rather than when the lease runs out
                if claimed < self.batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.poll_seconds)
        finally:
            with contextlib.suppress(Exception):
                released = await self.release()
                if released:
                    self.log.info("%s %s released %d claimed rows", self.what, self.name, released)

    def now(self) -> datetime:
        return utc(self.clock.now())

    async def claim(self) -> list[Any]:
        now = self.now()
        lease_end = now + self.lease
        table = self.model._meta.db_table
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            rows = await conn.execute_query_dict(
                f"UPDATE {table} SET claimed_by = $1, next_attempt_at = $2 "
                f"WHERE id IN (SELECT id FROM {table} WHERE status = 'pending' AND next_attempt_at <= $3 "
                "ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING id",
                [self.name, lease_end, now, self.batch_size],
            )
            ids = [row["id"] for row in rows]
        else:
            ids = []
            async with in_transaction() as tx:
                due = await (self.model.filter(status="pending", next_attempt_at__lte=now)
                             .order_by("next_attempt_at", "id").limit(self.batch_size)
                             .using_db(tx).values_list("id", flat=True))
                for row_id in due:
                    # Conditional: another process on the same SQLite file may have taken it meanwhile.
                    taken = await self.model.filter(id=row_id, status="pending", next_attempt_at__lte=now).using_db(
                        tx).update(claimed_by=self.name, next_attempt_at=lease_end)
                    if taken:
                        ids.append(row_id)
        if not ids:
            return []
        return list(await self.model.filter(id__in=ids, claimed_by=self.name).order_by("id"))

    async def retry_later(self, row: Any, attempts: int, message: str) -> float:
        """Hand a row whose attempt failed back, due again after a backoff that grows with its attempts; the delay."""
        delay = backoff_seconds(attempts, self.backoff_base, self.backoff_max, self.rng)
        await self.mine(row.id).update(attempts=attempts, last_error=message, claimed_by=None,
                                       next_attempt_at=self.now() + timedelta(seconds=delay))
        return delay

    def mine(self, row_id: int):
        """The row, while we still hold it: a record made after our lease ran out changes nothing."""
        return self.model.filter(id=row_id, claimed_by=self.name, status="pending")

    async def _release(self, ids: list[int], at: datetime) -> int:
        if not ids:
            return 0
        return await self.model.filter(id__in=ids, claimed_by=self.name, status="pending").update(
            claimed_by=None, next_attempt_at=at)

    async def release(self) -> int:
        """Hand back every row we still hold (shutdown): due at once for the next loop."""
        return await self.model.filter(claimed_by=self.name, status="pending").update(
            claimed_by=None, next_attempt_at=self.now())
