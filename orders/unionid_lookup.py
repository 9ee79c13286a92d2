"""The unionid of each official-account resident, fetched once in the background (cgi-bin/user/info), never while
the bot answers: with it the resident's mini-program row (same unionid) merges into theirs (orders.residents).

After a resident's message is committed the bot asks for a lookup (`ensure`: one statement, one row per resident,
nothing when the unionid is known). The rows are jobs claimed like the media downloads (orders/polling.py): a lease,
no two workers on one row, retried with backoff, `failed` after max_attempts and armed again by a message that
arrives a day later. WeChat answering without a unionid (an account not bound to an open platform) is an answer:
`done`, not asked again; the resident can still link with a code (orders/link_codes.py).

The domain imports no WeChat code: the source raises LookupFailed to say "later".
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from tortoise import connections

from orders import models, residents
from orders.clock import Clock
from orders.polling import Poller, Tally, error_text
from orders.sql import Sql

log = logging.getLogger("sidan.unionid")

REARM_AFTER = timedelta(days=1)  # a failed lookup is armed again by a message that comes this much later


class LookupFailed(Exception):
    """WeChat could not answer now; try again later."""


class UnionidSource(Protocol):
    async def unionid(self, openid: str) -> str | None:
        """The unionid of an official-account openid, None when WeChat gives none; LookupFailed to retry."""


@dataclass
class LookupReport(Tally):
    found: int = 0
    without: int = 0
    retried: int = 0
    failed: int = 0
    merged: int = 0


async def ensure(openid: str, now, conn: Any = None) -> None:
    """A lookup for the resident behind this official-account openid, unless one is done or under way, or their
    unionid is known: one statement."""
    conn = conn or connections.get("default")
    q = Sql(conn.capabilities.dialect)
    at = models.UnionidLookup._meta.fields_map["created_at"].to_db_value(now, models.UnionidLookup)
    again = models.UnionidLookup._meta.fields_map["created_at"].to_db_value(now - REARM_AFTER, models.UnionidLookup)
    sql = (
        "INSERT INTO unionid_lookup (resident_id, status, attempts, next_attempt_at, created_at) "
        f"SELECT id, 'pending', 0, {q.param(at)}, {q.param(at)} FROM resident "
        f"WHERE openid = {q.param(openid)} AND unionid IS NULL AND merged_into_id IS NULL "
        "ON CONFLICT (resident_id) DO UPDATE SET status = 'pending', attempts = 0, "
        "next_attempt_at = excluded.next_attempt_at, last_error = NULL "
        f"WHERE unionid_lookup.status = 'failed' AND unionid_lookup.next_attempt_at <= {q.param(again)}"
    )
    await conn.execute_query(sql, q.values)


class UnionidLookups(Poller):
    model = models.UnionidLookup
    what = "unionid lookup"
    tally = LookupReport
    log = log

    def __init__(self, source: UnionidSource, clock: Clock | None = None, *, name: str | None = None,
                 lease_seconds: float = 120.0, poll_seconds: float = 5.0, batch_size: int = 20,
                 max_attempts: int = 8, backoff_base_seconds: float = 60.0, backoff_max_seconds: float = 6 * 3600.0,
                 rng: random.Random | None = None) -> None:
        super().__init__(clock, name, lease_seconds, poll_seconds, batch_size)
        self.source = source
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base_seconds
        self.backoff_max = backoff_max_seconds
        self.rng = rng or random.Random()
        self.totals = LookupReport()

    async def run_once(self) -> LookupReport:
        report = LookupReport()
        rows = await self.claim()
        report.claimed = len(rows)
        for row in rows:
            resident = await models.Resident.get_or_none(id=row.resident_id)
            refused = None
            try:
                unionid = None
                if resident is not None and resident.unionid is None and resident.merged_into_id is None:
                    unionid = await self.source.unionid(resident.openid)
                if unionid:
                    linked = await residents.unionid_found(resident.id, unionid, self.clock.now())
                    report.merged += 1 if linked and linked.merged_id else 0
            except residents.LinkRefused as exc:  # linked by code to another mini-program account: asking again
                refused = exc.message             # cannot change that
                log.warning("resident %s: unionid %s not linked: %s", row.resident_id, unionid, refused)
            except Exception as exc:  # noqa: BLE001 - any failure of one lookup is recorded, never lost
                await self._failed(row, exc, report)
                continue
            await self.mine(row.id).update(status="done", done_at=self.now(), attempts=row.attempts + 1,
                                           claimed_by=None, last_error=refused)
            if unionid:
                report.found += 1
            else:
                report.without += 1
        self.totals.add(report)
        return report

    async def _failed(self, row: models.UnionidLookup, error: Exception, report: LookupReport) -> None:
        attempts = row.attempts + 1
        message = error_text(error)
        if attempts >= self.max_attempts:
            await self.mine(row.id).update(status="failed", attempts=attempts, last_error=message, claimed_by=None,
                                           next_attempt_at=self.now())
            log.warning("unionid of resident %s not fetched after %d attempts: %s", row.resident_id, attempts, message)
            report.failed += 1
            return
        await self.retry_later(row, attempts, message)
        report.retried += 1
