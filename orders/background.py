"""The background loops of a worker: the outbox dispatcher, the deadline sweep, the media downloads and the unionid
lookups.

They run inside each server worker (settings.app.run_background_tasks) or alone as `sidan worker`. Stopping
asks the loops to finish the message in hand, then cancels whatever is still running after a grace period;
either way the dispatcher hands its claimed rows back before it ends.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

from orders.dispatcher import Dispatcher, Sender
from orders.hotspot_alerts import HotspotAlerts
from orders.hotspots import Similarity
from orders.media_fetch import MediaFetcher
from orders.services import OrderService
from orders.store import Store
from orders.sweep import Sweeper
from orders.unionid_lookup import UnionidLookups

log = logging.getLogger("sidan.background")


class BackgroundTasks:
    def __init__(self, dispatcher: Dispatcher | None = None, sweeper: Sweeper | None = None,
                 fetcher: MediaFetcher | None = None, lookups: UnionidLookups | None = None) -> None:
        self.dispatcher = dispatcher
        self.sweeper = sweeper
        self.fetcher = fetcher
        self.lookups = lookups
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @classmethod
    def for_service(cls, service: OrderService, sender: Sender, store: Store | None = None,
                    similarity: Similarity | None = None, **dispatcher_options) -> BackgroundTasks:
        """Both loops on the service's settings and clock (tests pass poll/backoff options through); with a
        similarity, the sweep also tells the supervisors of hot spots (热点诉求)."""
        dispatcher = Dispatcher(service.settings, sender, clock=service.clock, **dispatcher_options)
        sweeper = Sweeper(service, store, name=dispatcher.name,
                          hotspots=HotspotAlerts.for_service(service, similarity))
        return cls(dispatcher, sweeper)

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self) -> BackgroundTasks:
        if self._tasks:
            raise RuntimeError("background tasks already started")
        self._stop.clear()
        if self.dispatcher is not None:
            self._tasks.append(asyncio.create_task(self.dispatcher.run(self._stop), name="sidan-outbox"))
        if self.sweeper is not None:
            self._tasks.append(asyncio.create_task(self.sweeper.run(self._stop), name="sidan-sweep"))
        if self.fetcher is not None:
            self._tasks.append(asyncio.create_task(self.fetcher.run(self._stop), name="sidan-media"))
        if self.lookups is not None:
            self._tasks.append(asyncio.create_task(self.lookups.run(self._stop), name="sidan-unionid"))
        log.info("background tasks started: %s", ", ".join(task.get_name() for task in self._tasks))
        return self

    def request_stop(self) -> None:
        """Ask the loops to finish (a signal handler may call it); stop() then waits for them."""
        self._stop.set()

    async def stop(self, grace_seconds: float = 5.0) -> None:
        self._stop.set()
        if not self._tasks:
            return
        done, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                error = await asyncio.gather(task, return_exceptions=True)
                if error and isinstance(error[0], Exception):
                    log.error("background task %s ended with %r", task.get_name(), error[0])
        self._tasks.clear()
        log.info("background tasks stopped")

    async def wait(self) -> None:
        """Until stop() (the `sidan worker` process)."""
        await self._stop.wait()
