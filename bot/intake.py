"""Group commit for new reports: the reports that arrive while one transaction is being written are written together
in the next one.

A burst of reports then costs one transaction (one commit, one advance of the day's counter, one statement per
table) instead of one each, and the classifier sees them as one batch. Nothing waits on purpose: a lone report is
written at once; reports queue only while the database is busy with the previous batch.

Trust comes first: every report still gets its own order, event rows and InboundMessage row, and its own reply.
If a batch fails (one of its messages was already recorded, a constraint, a lost connection), its reports are
written again one by one, so one bad report cannot take the others down and each gets its own outcome. A batch
that runs out of time is not split: the database is stuck, and retrying each report would only keep the residents
waiting longer; its callers answer "busy" at once.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger("sidan.bot")

MAX_BATCH = 32  # bounded by the statement size: an order has ~35 columns, SQLite allows 32,766 parameters
WRITE_TIMEOUT_SECONDS = 4.0  # a batch takes milliseconds; one this slow is useless to callers who answer by 4.5 s

Item = TypeVar("Item")


@dataclass
class _Waiting(Generic[Item]):
    item: Item
    key: str  # at most one item per key in a batch (one resident's messages stay in order)
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommit(Generic[Item]):
    """Collects items and hands them to write in groups; each caller gets its own item's result.

    write(items) returns one result per item, in order, or raises: a group that fails is written again item by item
    (write([item])), and each caller gets its own result or exception."""

    def __init__(self, write: Callable[[list[Item]], Awaitable[list[Any]]], max_batch: int = MAX_BATCH,
                 timeout_seconds: float = WRITE_TIMEOUT_SECONDS) -> None:
        self.write = write
        self.max_batch = max_batch
        self.timeout_seconds = timeout_seconds
        self._queue: deque[_Waiting[Item]] = deque()
        self._writer: asyncio.Task | None = None
        # so far, for /metrics, the benchmark's figures and the tests
        self.batches = 0  # transactions that ended (a batch that failed and was split counts as its one-by-one writes)
        self.written = 0  # items written by those that succeeded
        self.fallbacks = 0  # batches that failed and were split

    async def submit(self, item: Item, key: str) -> Any:
        waiting = _Waiting(item, key)
        # retrieved even when its caller is gone, so an error nobody awaits is not reported as "never retrieved"
        waiting.future.add_done_callback(lambda future: future.cancelled() or future.exception())
        self._queue.append(waiting)
        if self._writer is None or self._writer.done():
            # The writer exits when the queue is empty; between its last look and its end there is no await,
            # so an item appended after that look always finds it done and starts a new one.
            # in a context of its own, not a copy of the first caller's (its request id would tag every batch's logs)
            self._writer = asyncio.get_running_loop().create_task(self._drain(), context=contextvars.Context())
        try:
            return await asyncio.shield(waiting.future)
        except asyncio.CancelledError:
            # The caller gives up (its reply budget ran out). Still queued: withdrawn, nothing is written, and the
            # "busy, try again" it answers is true. Already being written: the order may be about to exist, so the
            # resident must not be told to try again (that would file it twice): wait for the outcome, which the
            # write's own timeout bounds. If that is past WeChat's 5 s, WeChat retries, and the retry is answered
            # from the claim this delivery completes.
            if self._withdraw(waiting):
                raise
            return await asyncio.shield(waiting.future)

    def pending(self) -> int:
        return len(self._queue)

    def _withdraw(self, waiting: _Waiting[Item]) -> bool:
        try:
            self._queue.remove(waiting)
        except ValueError:
            return False  # taken into a batch already
        waiting.future.cancel()
        return True

    async def _drain(self) -> None:
        while self._queue:
            batch = self._take()
            try:
                await self._write(batch)
            except BaseException as exc:  # noqa: BLE001 - whatever happens (even cancellation), no caller waits for ever
                stopping = isinstance(exc, asyncio.CancelledError)
                if stopping:  # the worker is shutting down: nobody will write what is still queued
                    batch.extend(self._queue)
                    self._queue.clear()
                for waiting in batch:
                    if stopping:
                        waiting.future.cancel()
                    else:
                        _settle(waiting.future, error=exc)
                if not isinstance(exc, Exception):
                    raise

    def _take(self) -> list[_Waiting[Item]]:
        batch: list[_Waiting[Item]] = []
        keys: set[str] = set()
        later: list[_Waiting[Item]] = []
        while self._queue and len(batch) < self.max_batch:
            waiting = self._queue.popleft()
            if waiting.key in keys:
                later.append(waiting)
            else:
                keys.add(waiting.key)
                batch.append(waiting)
        self._queue.extendleft(reversed(later))  # back at the front, in their order
        return batch

    async def _write(self, batch: list[_Waiting[Item]]) -> None:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                results = await self.write([waiting.item for waiting in batch])
        except Exception as exc:  # noqa: BLE001 - alone: the caller decides (a duplicate, "busy"); grouped: split
            if len(batch) == 1 or isinstance(exc, TimeoutError):
                if isinstance(exc, TimeoutError):
                    log.error("a batch of %d reports took over %.1f s: abandoned", len(batch), self.timeout_seconds)
                self.batches += 1
                for waiting in batch:
                    _settle(waiting.future, error=exc)
                return
            log.warning("a batch of %d reports failed: writing them one by one", len(batch), exc_info=True)
            self.fallbacks += 1
            for waiting in batch:
                await self._write([waiting])
            return
        self.batches += 1
        self.written += len(batch)
        for waiting, result in zip(batch, results, strict=True):
            _settle(waiting.future, result=result)


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
