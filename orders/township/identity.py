"""The township's name, order prefix and duty phone: as `sidan township apply` wrote them (the `township` row), else
config's app.township / app.order_prefix. Every reader goes through here: the order numbers (orders.intake), the
bot's replies and welcome (bot.conversation), the statistics' titles (api.stats, `sidan stats`)."""
from __future__ import annotations

import time
from typing import Any, NamedTuple

from orders import models
from orders.config import Settings

IDENTITY_CACHE_SECONDS = 60.0  # a newly applied file is seen by every worker within this time


class TownshipIdentity(NamedTuple):
    name: str
    order_prefix: str
    duty_phone: str | None


def configured(settings: Settings) -> TownshipIdentity:
    return TownshipIdentity(settings.app.township, settings.app.order_prefix, None)


async def read_identity(settings: Settings, conn: Any = None) -> TownshipIdentity:
    """The identity as the database has it now (one query)."""
    query = models.Township.filter(id=1)
    row = await (query.using_db(conn) if conn is not None else query).first()
    if row is None:
        return configured(settings)
    return TownshipIdentity(row.name, row.order_prefix, row.duty_phone)


class IdentityCache:
    """A worker's copy, read again every IDENTITY_CACHE_SECONDS: the intake numbers every order with it.
    `current` is the last one read (config's until the first read), for code that cannot wait on a query."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current = configured(settings)
        self._read_at: float | None = None

    async def get(self, conn: Any = None) -> TownshipIdentity:
        if self._read_at is None or time.monotonic() - self._read_at > IDENTITY_CACHE_SECONDS:
            self.current = await read_identity(self.settings, conn)
            self._read_at = time.monotonic()
        return self.current

    def forget(self) -> None:
        """Read again at the next get() (after applying a township file in this process)."""
        self._read_at = None
