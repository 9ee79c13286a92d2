"""At-most-once delivery of a resident's messages: each message key is answered once, inside WeChat's 5 seconds,
one message of a resident at a time; WeChat's retries get the first reply. What the answer is, is the handler's
business (bot.conversation): this module knows the store, the database record of a message and the clock, not intents.

Dedup has two layers. The store holds a claim per message key while the first delivery is processed, then its
reply; concurrent retries wait for that reply. Underneath, every processed message is an InboundMessage row
(unique msg_key) written in the same transaction as the work it caused, with the reply text: if the store is
down, or forgot, the database still refuses to do the work twice and hands back the first reply.

The store also keeps the per-openid rate count, the resident's lock, the photos and location a resident sent
before the text they belong to (held), and the signed queries of the replay window with the message each carried
(Query): WeChat's signature does not cover the body, so a query may bring its own message again and no other. While
the store is down, the rate is counted in this process instead (LocalRate): each worker then allows a resident the
limit on its own; the queries are not remembered (MsgId dedup still answers every message once).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from bot.replies import busy_reply, rate_limited_reply
from bot.inbound import Inbound
from orders import models
from orders.clock import Clock
from orders.config import Settings
from orders.services import DuplicateMessage
from orders.store import LockNotAcquired, Store, StoreUnavailable, lock_key, take_lock

log = logging.getLogger("sidan.bot")

REPLY_BUDGET_SECONDS = 4.5  # WeChat gives up after 5 s and retries; answer (even "busy") before that
RESIDENT_LOCK_SECONDS = 10
# A claim outlives one delivery's processing (the reply budget, then at most the intake's write timeout), and a dead
# worker's claim lapses by WeChat's third delivery (about 10 s after the first). Should a slow delivery outlive its
# claim, the database's unique message key still lets only one of two writers record the message.
CLAIM_SECONDS = 10
_PENDING = "\x00pending"
_NO_REPLY = object()  # no reply to give: the first delivery's claim vanished (it failed), time ran out, or no record


@dataclass
class Held:
    """Photos and a location sent before the text they belong to, kept in the store for a few minutes."""

    photos: list[dict[str, Any]] = field(default_factory=list)
    location: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.photos or self.location)


class ReplayedQuery(Exception):
    """A query seen before brings another message (someone reused a genuine callback URL): refused, nothing written."""


@dataclass(frozen=True)
class Query:
    """The signed query a message came with, remembered until its timestamp leaves the replay window."""

    signature: str  # WeChat's, over token, timestamp and nonce
    message: str  # the digest of the message it carried (bot.wire.message_digest)
    ttl: float

    def remember(self) -> list[tuple]:
        """Store commands: keep this query's message unless it has one, then read the one it has."""
        key = f"wx:query:{self.signature}"
        return [("set", key, self.message, self.ttl, True), ("get", key)]

    def brought_another(self, seen: str | None) -> bool:
        return seen is not None and seen != self.message  # None: it left the window between the two commands


@dataclass
class Outcome:
    """What the handler answered: the reply, recorded with the message with the order it concerns."""

    reply: str | None
    order_id: int | None = None
    used_held: bool = False  # the held photos/location went into an order: forget them after commit
    record: str | None = None  # what the message's record keeps instead of the reply (a link code: never kept)


@dataclass
class _Visit:
    """What one delivery holds in the store, from its way in (one round trip: Delivery._arrive) to its way out
    (one more: Delivery._leave)."""

    openid: str = ""
    store: bool = False  # the store answered: it dedups, throttles, orders a resident's messages, holds photos
    claimed: bool = False  # this delivery is the one that answers the message
    rate_window: int | None = None  # counted in this minute's rate, though a retry: uncount it on the way out
    rate_limited: bool = False
    lock_token: str | None = None  # the resident's lock, while this delivery holds it
    held: Held | None = None  # read while holding that lock
    used_held: bool = False  # went into an order: forget it on the way out


async def _record_of(key: str) -> Any:
    """The reply recorded with a message in the database (None means `success`), or _NO_REPLY: not recorded."""
    replies = await models.InboundMessage.filter(msg_key=key).values_list("reply", flat=True)
    return replies[0] if replies else _NO_REPLY


def message_record(inbound: Inbound, outcome: Outcome, received_at: datetime) -> dict[str, Any]:
    """The InboundMessage row of an answered message, written in the transaction of the work it caused."""
    return {"msg_key": inbound.key, "openid": inbound.openid, "msg_type": inbound.msg_type,
            "order_id": outcome.order_id, "reply": outcome.reply if outcome.record is None else outcome.record,
            "received_at": received_at}


class LocalRate:
    """Messages per openid in the current minute, counted in this process: the rate limit while the store is down."""

    def __init__(self) -> None:
        self._minute: int | None = None
        self._counts: Counter[str] = Counter()

    def count(self, openid: str, minute: int) -> int:
        if minute != self._minute:  # a new minute: the last one's counts are of no more use
            self._minute, self._counts = minute, Counter()
        self._counts[openid] += 1
        return self._counts[openid]


class Delivery:
    """Hands each message to `answer` at most once; `answer` does the work and records the message with it
    (message_record) in one transaction."""

    def __init__(self, settings: Settings, store: Store, clock: Clock,
                 answer: Callable[[Inbound, Held], Awaitable[Outcome]]) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.answer = answer
        self.local_rate = LocalRate()

    async def reply_to(self, inbound: Inbound, query: Query | None = None) -> str | None:
        """The reply text (None: answer `success`). Each message key is processed once; retries get the same reply.
        ReplayedQuery when `query` brought another message before."""
        if inbound.key is None:
            if query is not None:
                await self._remember_alone(query)
            return None
        store_key = f"wx:msg:{inbound.key}"
        deadline = time.monotonic() + REPLY_BUDGET_SECONDS
        while True:
            try:
                visit = await self._arrive(inbound.openid, store_key, query)
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
                return busy_reply()
            # the claim lapsed without a reply (the first attempt failed): try again ourselves

    def _minute(self) -> int:
        return int(self.clock.now().timestamp() // 60)

    async def _arrive(self, openid: str, store_key: str, query: Query | None) -> _Visit:
        """One round trip: remember the query, claim the message, count it against the rate limit, take the
        resident's lock if it is free, read what the resident holds (photos, a location)."""
        window = self._minute()
        token = secrets.token_hex(8)
        remember = query.remember() if query is not None else []
        answers = await self.store.many([
            *remember,
            ("set", store_key, _PENDING, CLAIM_SECONDS, True),
            ("incr", self._rate_key(openid, window), 120),
            ("set", lock_key(self._resident_lock(openid)), token, RESIDENT_LOCK_SECONDS, True),
            ("get", self._held_key(openid)),
        ])
        claimed, count, locked, raw_held = answers[len(remember):]
        visit = _Visit(openid=openid, store=True, claimed=claimed,
                       rate_limited=claimed and count > self.settings.bot.rate_limit_per_minute,
                       rate_window=None if claimed else window,  # a retry is not a new message
                       lock_token=token if locked else None, held=self._held_from(raw_held) if locked else None)
        if query is not None and query.brought_another(answers[1]):
            visit.rate_window = window  # give back all this visit took: it was nobody's message
            await self._leave(visit, _NO_REPLY, store_key if claimed else None)
            raise ReplayedQuery("a signed query seen before carries another message")
        return visit

    async def _remember_alone(self, query: Query) -> None:
        """The query of a message with nothing to answer (a passive event): seen, so it cannot bring another."""
        try:
            _, seen = await self.store.many(query.remember())
        except StoreUnavailable:
            return  # plain mode has MsgId dedup alone until the store is back
        if query.brought_another(seen):
            raise ReplayedQuery("a signed query seen before carries another message")

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
            return busy_reply(), False

    async def _answer_once(self, inbound: Inbound, visit: _Visit) -> str | None:
        if not visit.store:  # with the store, the claim already told a first delivery; the row's constraint backs it
            earlier = await _record_of(inbound.key)
            if earlier is not _NO_REPLY:
                return earlier
            # a new message (a retry of an answered one got its reply above): counted here, not in the store
            count = self.local_rate.count(inbound.openid, self._minute())
            visit.rate_limited = count > self.settings.bot.rate_limit_per_minute
        if visit.rate_limited:
            return rate_limited_reply()
        await self._one_at_a_time(inbound.openid, visit)
        if visit.held is not None:
            held = visit.held
        else:  # the lock was taken after _arrive (or there is no store): read what is held now
            held = await self._peek_held(inbound.openid) if visit.store else Held()
        try:
            outcome = await self.answer(inbound, held)
        except (DuplicateMessage, IntegrityError):
            earlier = await _record_of(inbound.key)
            if earlier is _NO_REPLY:
                raise
            return earlier
        visit.used_held = outcome.used_held
        return outcome.reply

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

    async def hold(self, openid: str, photo: dict[str, Any] | None = None,
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
