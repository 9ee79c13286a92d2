"""Bounded soak of the WeChat callback: `sidan serve` in a subprocess on a fresh database, a fixed message rate
for --minutes (default 10), WeChat's retries and duplicate MsgIds mixed in. It ends by checking that every
distinct message has exactly one order and that the server's RSS did not grow past --rss-growth-mib.

    .venv/bin/python bench/soak.py --minutes 2
    .venv/bin/python bench/soak.py --minutes 10 --backend postgres --workers 2

Loopback only; the load stops by itself at the end of the run.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from callback import (DEFAULT_POSTGRES, DEFAULT_REDIS, Connection, Messages, count_rows, drop_database,
                      ensure_model, flush_redis, fresh_database, request_bytes, start_full, wait_ready)

ORDER_NUMBER = "工单号".encode()


async def soak(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="sidan-soak-"))
    model = ensure_model(args.model, work)
    url = await fresh_database(args.backend, work, args.postgres)
    redis_url = args.redis if args.backend == "postgres" or args.workers > 1 else ""
    if redis_url:
        await flush_redis(redis_url)
    server = start_full(args.workers, url, redis_url, model, work, "soak")
    rng = random.Random(args.seed)
    messages = Messages()
    distinct: dict[int, dict] = {}  # MsgId -> fields: every message ever sent
    numbered: set[int] = set()  # MsgIds answered with an order number
    stats = {"sent": 0, "duplicates": 0, "retries": 0, "busy": 0, "errors": 0}
    try:
        await wait_ready(server, workers=args.workers)
        rss_start = server.rss_bytes()
        rss_peak = rss_start
        total = int(args.minutes * 60 * args.rate)
        start = time.monotonic() + 0.2
        next_index = iter(range(total))

        async def deliver(connection: Connection, fields: dict) -> None:
            """One message as WeChat delivers it: retried (same MsgId, fresh signature) until it gets an answer."""
            for attempt in range(args.retries + 1):
                stats["sent"] += 1
                stats["retries"] += attempt > 0
                try:
                    status, body = await connection.request(request_bytes(fields, "127.0.0.1"), timeout=5)
                except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                    stats["errors"] += 1
                    continue
                if status == 200 and ORDER_NUMBER in body:
                    numbered.add(fields["MsgId"])
                    return
                stats["busy"] += 1
            # given up: like WeChat after its last retry; the check below still expects one order at most

        async def loop() -> None:
            connection = Connection("127.0.0.1", server.port)
            for index in next_index:
                delay = start + index / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if distinct and rng.random() < args.duplicates:
                    stats["duplicates"] += 1
                    fields = distinct[rng.choice(list(distinct)[-500:])]  # a recent message, delivered again
                else:
                    fields = messages.fields()
                    distinct[fields["MsgId"]] = fields
                    if rng.random() < args.duplicates:  # WeChat's own retry, right away and concurrently
                        stats["duplicates"] += 1
                        asyncio.ensure_future(deliver(Connection("127.0.0.1", server.port), fields))
                await deliver(connection, fields)
            connection.close()

        async def watch_memory() -> None:
            nonlocal rss_peak
            while time.monotonic() < start + args.minutes * 60:
                rss_peak = max(rss_peak, server.rss_bytes())
                await asyncio.sleep(5)

        print(f"soak: {args.minutes:g} min at {args.rate:g} msg/s, {args.duplicates:.0%} duplicates, "
              f"{args.backend}, {args.workers} worker(s)", flush=True)
        await asyncio.gather(watch_memory(), *(loop() for _ in range(args.connections)))
        await asyncio.sleep(1)  # the concurrent duplicates still in flight
        rss_end = server.rss_bytes()
    finally:
        server.stop()
    counts = await count_rows(url)
    await drop_database(url, args.postgres)
    growth = (rss_end - rss_start) / 2**20
    print(f"requests {stats['sent']} ({stats['retries']} retries, {stats['duplicates']} duplicate deliveries, "
          f"{stats['busy']} busy answers, {stats['errors']} errors)")
    print(f"distinct messages {len(distinct)}, answered with an order number {len(numbered)}, orders "
          f"{counts['orders']}, inbound rows {counts['messages']}")
    print(f"server RSS {rss_start / 2**20:.0f} MiB at start, {rss_end / 2**20:.0f} MiB at end "
          f"(peak {rss_peak / 2**20:.0f}), growth {growth:+.0f} MiB (bound {args.rss_growth_mib} MiB)")
    failures = []
    if counts["orders"] != len(distinct):
        failures.append(f"{len(distinct)} distinct messages but {counts['orders']} orders")
    if counts["messages"] != counts["orders"]:
        failures.append("inbound rows and orders disagree")
    if growth > args.rss_growth_mib:
        failures.append(f"RSS grew {growth:.0f} MiB")
    print("OK: every distinct message has exactly one order" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=40.0, help="new messages per second (default 40)")
    parser.add_argument("--duplicates", type=float, default=0.1, help="share delivered twice (default 0.1)")
    parser.add_argument("--retries", type=int, default=3, help="WeChat retries a message up to 3 times")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rss-growth-mib", type=int, default=64, help="allowed RSS growth (default 64 MiB)")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 120:
        parser.error("--minutes must be in (0, 120]")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
