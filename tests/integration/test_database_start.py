"""The database is opened when a worker starts, so a request cancelled in its first query cannot wedge it."""
from __future__ import annotations

import asyncio
import contextlib

from api import resources
from orders import db
from tests.support import make_settings


async def test_requests_cancelled_right_after_start_leave_the_database_usable(tmp_path):
    # Requests queued while a worker starts are often given up by their clients (WeChat after 5 s); the server
    # cancels their handlers. Before the fix, Tortoise's SQLite client connected lazily while holding its lock,
    # and a cancellation there kept the lock taken: every later query waited for ever.
    await resources.start_database(make_settings(f"sqlite://{tmp_path / 'start.sqlite3'}"))
    try:
        for delay in (0, 0, 0.0005, 0.001, 0.003):
            first = asyncio.create_task(db.ping())
            await asyncio.sleep(delay)
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
        assert await asyncio.wait_for(db.ping(), timeout=5) is True
    finally:
        await resources.stop_database()
