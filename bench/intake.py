"""Benchmark of intake alone, in one process: Conversation.reply_to for new reports (dedup claim, rate limit,
per-resident lock, classify, the order and its rows, the reply), without HTTP, one at a time and many at once
(group commit), on the same database in the same run.

    .venv/bin/python bench/intake.py                       # SQLite + in-process store, then PostgreSQL + Redis
    .venv/bin/python bench/intake.py --only sqlite --messages 4000 --concurrency 64

Prints, per backend and concurrency: CPU and wall time per report, SQL statements per report, reports per
batch, and the CPU ratio one-at-a-time / concurrent (what group commit saves). Afterwards it checks that every
report made exactly one order.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from callback import DEFAULT_POSTGRES, DEFAULT_REDIS, REPORTS, drop_database, ensure_model, flush_redis, fresh_database


@dataclass
class Figures:
    concurrency: int
    cpu_ms: float
    wall_ms: float
    statements: float
    per_batch: float

    def line(self) -> str:
        return (f"  {self.concurrency:3d} at once: {self.cpu_ms:5.2f} ms CPU, {self.wall_ms:5.2f} ms wall per report, "
                f"{self.statements:4.1f} SQL statements per report, {self.per_batch:5.1f} reports per batch")


class StatementCounter:
    """Counts the statements sent through Tortoise's connection class while installed."""

    METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script")

    def __init__(self, connection) -> None:
        self.count = 0
        self._class = type(connection)
        self._originals = {name: getattr(self._class, name) for name in self.METHODS}

    def __enter__(self) -> StatementCounter:
        for name, original in self._originals.items():
            async def counted(client, *args, _original=original, **kwargs):
                self.count += 1
                return await _original(client, *args, **kwargs)
            setattr(self._class, name, counted)
        return self

    def __exit__(self, *exc) -> None:
        for name, original in self._originals.items():
            setattr(self._class, name, original)


async def measure(conversation, messages: int, concurrency: int, run: str) -> Figures:
    from bot.inbound import Inbound
    from tortoise import Tortoise

    semaphore = asyncio.Semaphore(concurrency)

    async def one(n: int) -> str | None:
        resident = f"o_bench_{run}_{concurrency}_{n}"
        inbound = Inbound(f"msg:{resident}:{n}", resident, "text", "text",
                          text=REPORTS[n % len(REPORTS)].format(n=n))
        async with semaphore:
            return await conversation.reply_to(inbound)

    batches_before = conversation.intake.batches
    with StatementCounter(Tortoise.get_connection("default")) as statements:
        cpu, wall = time.process_time(), time.perf_counter()
        replies = await asyncio.gather(*(one(n) for n in range(messages)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    numbered = sum(1 for reply in replies if reply and "工单号" in reply)
    if numbered != messages:
        raise SystemExit(f"only {numbered} of {messages} reports got an order number")
    batches = conversation.intake.batches - batches_before
    return Figures(concurrency, 1000 * cpu / messages, 1000 * wall / messages, statements.count / messages,
                   messages / max(1, batches))


async def bench(backend: str, args, work: Path, model: Path) -> None:
    from bot.conversation import Conversation
    from classifiers import Router
    from orders import db, models
    from orders.clock import Clock
    from orders.config import load_settings
    from orders.services import OrderService
    from orders.store import MemoryStore, RedisStore

    url = await fresh_database(backend, work, args.postgres)
    redis_url = args.redis if backend == "postgres" else ""
    settings = load_settings(env={"SIDAN_ENV": "development", "SIDAN_DATABASE_URL": url,
                                  "SIDAN_REDIS_URL": redis_url, "SIDAN_CLASSIFIER_MODEL_PATH": str(model)})
    store = RedisStore(redis_url) if redis_url else MemoryStore()
    if redis_url:
        await flush_redis(redis_url)
    await db.init_db(url)
    try:
        clock = Clock()
        conversation = Conversation(settings, OrderService(settings, Router.load(model), clock=clock), store, clock)
        run = uuid.uuid4().hex[:6]
        await measure(conversation, 50, 1, run + "w")  # warm-up: caches, connections, jieba's dictionary
        print(f"intake, {'SQLite + in-process store' if backend == 'sqlite' else 'PostgreSQL + Redis'}: "
              f"{args.messages} reports each", flush=True)
        alone = await measure(conversation, args.messages, 1, run)
        print(alone.line(), flush=True)
        together = await measure(conversation, args.messages, args.concurrency, run)
        print(together.line())
        print(f"  CPU per report, one at a time / {args.concurrency} at once: {alone.cpu_ms / together.cpu_ms:.1f}×")
        orders = await models.Order.all().count()
        expected = 2 * args.messages + 50
        print(f"  orders {orders} for {expected} reports: " + ("OK" if orders == expected else "MISMATCH"))
        if orders != expected:
            raise SystemExit("lost or duplicated orders")
    finally:
        await db.close_db()
        await store.close()
        await drop_database(url, args.postgres)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="reports per phase (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="reports in flight at once (default 32)")
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= 100_000 or not 1 <= args.concurrency <= 1024:
        parser.error("--messages must be in [1, 100000] and --concurrency in [1, 1024]")
    with tempfile.TemporaryDirectory(prefix="sidan-bench-") as folder:
        work = Path(folder)
        model = ensure_model(args.model, work)
        for backend in [args.only] if args.only else ["sqlite", "postgres"]:
            asyncio.run(bench(backend, args, work, model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
