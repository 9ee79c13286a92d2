"""Benchmark: every dashboard query's median and p95 on PostgreSQL at 10k → 100k → 1M orders.

The history is bulk-written (api.demo.history, COPY) into a database of its own, which is dropped at the end.
It grows backwards in time at a constant density (BULK_ORDERS_PER_DAY), as a township's table grows: the
dashboard's window (the last 30 days) holds about the same number of orders at every size, so with the
indexes a query's time should stay flat while the table grows a hundredfold. One wider window (a year) shows
what a query costs when its window itself grows.

    .venv/bin/python bench/stats.py                 # 10k, 100k, 1M
    .venv/bin/python bench/stats.py --max 100000    # stop at 100k
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.demo.history import BULK_ORDERS_PER_DAY, generate_history  # noqa: E402
from api.demo.township import load_demo_data  # noqa: E402
from orders import db, models  # noqa: E402
from orders.stats import Filters, Stats  # noqa: E402
from tests.support import make_settings  # noqa: E402

DEFAULT_BASE = os.environ.get("SIDAN_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
CHUNK = 50_000  # orders planned and written at a time: memory stays flat


def dashboard_queries(stats: Stats) -> dict[str, object]:
    """What /api/v1/stats/dashboard runs, one callable each, plus a filtered summary and a year's summary."""
    last_30 = stats.period("30d")
    year = stats.period("365d")
    return {
        "summary 30d (三率 + counts + p50/p90)": lambda: stats.summary(last_30),
        "trend 30d by day": lambda: stats.trend(last_30, by="day", durations=False),
        "by category 30d": lambda: stats.figures(last_30, by="category", durations=False),
        "by department 30d": lambda: stats.figures(last_30, by="department", durations=False),
        "by grid 30d": lambda: stats.figures(last_30, by="grid", durations=False),
        "by department 30d with p50/p90": lambda: stats.figures(last_30, by="department"),
        "overdue list (now)": lambda: stats.overdue(20),
        "live feed (newest 15)": lambda: stats.feed(limit=15),
        "summary 30d, one department": lambda: stats.summary(last_30, Filters(department="jianshe")),
        "summary 365d (window grows)": lambda: stats.summary(year),
    }


async def time_queries(stats: Stats, repeat: int) -> dict[str, tuple[float, float]]:
    results = {}
    for name, query in dashboard_queries(stats).items():
        await query()  # warm the cache and the statement
        samples = []
        for _ in range(repeat):
            started = time.perf_counter()
            await query()
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(round(0.95 * len(samples))) - 1)]
        results[name] = (statistics.median(samples), p95)
    return results


async def grow_to(settings, target: int, now: datetime, seed: int) -> float:
    """Add orders older than the oldest so far until there are `target`; returns the seconds it took."""
    started = time.perf_counter()
    count = await models.Order.all().count()
    oldest = await models.Order.all().order_by("submitted_at").first()
    end = oldest.submitted_at if oldest else now
    while count < target:
        chunk = min(CHUNK, target - count)
        days = chunk / BULK_ORDERS_PER_DAY
        written = await generate_history(settings, chunk, seed=seed + count, now=now, end=end, days=days,
                                         method="bulk")
        count += written
        end -= timedelta(days=days)
        print(f"  … {count:,} orders", file=sys.stderr, flush=True)
    from tortoise import connections

    await connections.get("default").execute_script("ANALYZE")
    return time.perf_counter() - started


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, default=1_000_000, help="largest size (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=40, help="timed runs per query and size")
    parser.add_argument("--postgres", default=DEFAULT_BASE, help="a PostgreSQL URL whose server may create databases")
    parser.add_argument("--keep", action="store_true",
                        help="keep the database (to EXPLAIN the queries); drop it yourself")
    args = parser.parse_args(argv)
    sizes = [size for size in (10_000, 100_000, 1_000_000) if size <= args.max] or [args.max]

    import asyncpg

    admin_url = args.postgres.replace("postgres://", "postgresql://", 1)
    name = f"sidan_bench_{uuid.uuid4().hex[:8]}"
    url = args.postgres.rsplit("/", 1)[0] + "/" + name
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    print(f"database {name} (dropped at the end); density {BULK_ORDERS_PER_DAY} orders/day", file=sys.stderr)
    table: dict[int, dict[str, tuple[float, float]]] = {}
    try:
        await db.migrate(url)
        await db.init_db(url)
        settings = make_settings(url)
        await load_demo_data()
        now = datetime.now(timezone.utc)
        stats = Stats(settings.app.timezone)
        for size in sizes:
            seconds = await grow_to(settings, size, now, seed=20261124)
            window = await stats.summary(stats.period("30d"))
            print(f"{size:,} orders written in {seconds:.0f} s; the 30-day window holds "
                  f"{window.counts['received']:,}", file=sys.stderr, flush=True)
            table[size] = await time_queries(stats, args.repeat)
        await db.close_db()
    finally:
        if args.keep:
            print(f"kept: {url}", file=sys.stderr)
        else:
            admin = await asyncpg.connect(admin_url)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    print_table(table)
    return 0


def print_table(table: dict[int, dict[str, tuple[float, float]]]) -> None:
    sizes = list(table)
    names = list(next(iter(table.values())))
    width = max(len(name) for name in names) + 2
    header = "query".ljust(width) + "".join(f"{size:>10,} p50 / p95 ms".rjust(26) for size in sizes)
    print(header)
    print("-" * len(header))
    for name in names:
        cells = "".join(f"{table[size][name][0]:>12.1f} / {table[size][name][1]:<8.1f}".rjust(26) for size in sizes)
        print(name.ljust(width) + cells)
    worst = max(p95 for size in sizes for name, (_, p95) in table[size].items() if "365d" not in name)
    print(f"\nworst p95 of the dashboard's own queries (30-day window): {worst:.1f} ms (goal < 100 ms)")
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        growth = [table[last][n][0] / max(table[first][n][0], 0.01) for n in names if "365d" not in n]
        print(f"median growth {first:,} → {last:,} orders ({last // first}× the rows): "
              f"{min(growth):.2f}× to {max(growth):.2f}×")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
