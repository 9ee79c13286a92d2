"""Benchmark of the WeChat callback: the full /wechat path (signature, parse, dedup, classify, persist, reply)
served by `sidan serve` in a subprocess, against a bare Sanic app that only answers `success`, on the same
machine in the same run.

    .venv/bin/python bench/callback.py                 # 20 s per phase, every configuration
    .venv/bin/python bench/callback.py --seconds 10    # shorter
    .venv/bin/python bench/callback.py --quick         # 5 s per phase, SQLite 1 worker and PostgreSQL 2 workers

Each configuration runs two phases, both loopback only and bounded in time:
- saturation: a fixed number of keep-alive connections send as fast as answers come back (msg/s, p50/p99);
- fixed rate: --rate msg/s scheduled in advance (open loop: latency counts from the scheduled moment, so a
  stalled server is not hidden by a stalled client), for the "p99 < 50 ms at 1,000 msg/s" goal; several rates
  (--rate 600,800,1000) give the latency curve, one phase each.
Afterwards the orders in the database are counted against the messages answered: none lost, none doubled.

The load generator is this process (asyncio, raw HTTP/1.1 on keep-alive connections); on a 2-core machine it
competes with the server for the CPU, which lowers every figure, the bare server's most. --pin gives the load
generator the first CPU and the servers (with their workers) the others, so the two stop taking turns on the same
core; PostgreSQL and Redis are not pinned. On a 2-CPU machine that leaves one CPU to the server, which 2 workers
then share.

--against CHECKOUT (repeatable) compares code: another checkout of sidan (e.g. `git worktree add /tmp/b <commit>`)
serves beside this one (each on a fresh database, with this virtualenv), saturation only, in phases taken in turn
--rounds times, the order rotating (A B, B A, …); per round, this checkout's rate over the other's and their server
CPU per message: two code versions measured in one run on a noisy machine.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.chat import sign, to_xml  # noqa: E402 - after the path set-up, so the script runs from anywhere

PYTHON = sys.executable
TOKEN = "sidan-dev-token"  # the development token: the server runs with the development config
ACCOUNT = "gh_sidan_bench"
REPORTS = ["楼坝村{n}组的路灯坏了好几天,晚上走路看不见", "新滩村{n}号门口的下水道堵了,污水流到路上",
           "安富村{n}社有人在河边焚烧秸秆,烟很大", "向家坝镇{n}号楼楼上装修噪音太大,晚上也不停",
           "楼坝村{n}组低保申请交上去一个月了还没有消息", "新滩村{n}组的自来水停了两天了"]
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"  # not 15: the test suite flushes that one


# ------------------------------------------------------------------------------------------------ messages
@dataclass
class Messages:
    """Signed WeChat text messages, each with a fresh MsgId, from many residents (under the rate limit)."""

    residents: int = 10_000  # 20 messages a minute each (the rate limit) would be 3,333 msg/s
    _ids: itertools.count = field(default_factory=lambda: itertools.count(secrets.randbits(40)))
    _counter: itertools.count = field(default_factory=itertools.count)
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:6])

    def fields(self) -> dict:
        n = next(self._counter)
        return {"ToUserName": ACCOUNT, "FromUserName": f"o_bench_{self.run}_{n % self.residents:06d}",
                "CreateTime": int(time.time()), "MsgType": "text",
                "Content": REPORTS[n % len(REPORTS)].format(n=n % 97 + 1), "MsgId": next(self._ids)}


def request_bytes(fields: dict, host: str) -> bytes:
    """One POST /wechat exactly as WeChat signs it (plaintext mode)."""
    timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
    body = to_xml(fields).encode()
    query = f"signature={sign(TOKEN, timestamp, nonce)}&timestamp={timestamp}&nonce={nonce}&openid={fields['FromUserName']}"
    head = (f"POST /wechat?{query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


# ------------------------------------------------------------------------------------------------ the client
class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes, timeout: float = 10.0) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(raw)
            return await asyncio.wait_for(self._response(), timeout)
        except BaseException:
            self.close()
            raise

    async def _response(self) -> tuple[int, bytes]:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, closing = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                closing = True
        body = await self.reader.readexactly(length) if length else b""
        if closing:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Result:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    orders_replied: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    unsent: int = 0  # fixed rate: due within the phase but never sent (the server could not keep up)

    def record(self, status: int, body: bytes, latency: float) -> None:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.ok += 1
            self.latencies.append(latency)
            if "工单号".encode() in body:
                self.orders_replied += 1
        else:
            self.failed += 1

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        return (f"{self.rate:8.0f} msg/s  p50 {self.percentile(0.50):7.1f} ms  p99 {self.percentile(0.99):7.1f} ms"
                f"  ({self.ok} ok, {self.failed} failed)")


async def saturate(port: int, seconds: float, connections: int, messages: Messages) -> Result:
    """Closed loop: each connection sends its next message as soon as the previous answer is in."""
    result = Result()
    stop_at = time.monotonic() + seconds

    async def loop() -> None:
        connection = Connection("127.0.0.1", port)
        while time.monotonic() < stop_at:
            raw = request_bytes(messages.fields(), f"127.0.0.1:{port}")
            started = time.monotonic()
            try:
                status, body = await connection.request(raw)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                status, body = 0, b""
            result.record(status, body, time.monotonic() - started)
        connection.close()

    started = time.monotonic()
    await asyncio.gather(*(loop() for _ in range(connections)))
    result.seconds = time.monotonic() - started
    return result


async def fixed_rate(port: int, seconds: float, rate: float, connections: int, messages: Messages) -> Result:
    """Open loop: message i is due at start + i/rate; its latency runs from that moment, queueing included."""
    result = Result()
    total = int(seconds * rate)
    next_index = itertools.count()
    start = time.monotonic() + 0.2

    async def loop() -> None:
        connection = Connection("127.0.0.1", port)
        for index in iter(lambda: next(next_index), None):
            if index >= total or time.monotonic() > start + seconds:
                break  # bounded in time: a server slower than the rate leaves the rest unsent (reported)
            due = start + index / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            raw = request_bytes(messages.fields(), f"127.0.0.1:{port}")
            try:
                status, body = await connection.request(raw)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                status, body = 0, b""
            result.record(status, body, time.monotonic() - due)
        connection.close()

    await asyncio.gather(*(loop() for _ in range(connections)))
    result.seconds = time.monotonic() - start
    result.unsent = total - result.sent
    return result


async def intake_counters(port: int) -> tuple[float, float]:
    """(transactions, reports written) of the intake's group commit, from /metrics. Per worker: with two, each
    scrape may reach the other one, so only one-worker runs print the figure."""
    connection = Connection("127.0.0.1", port)
    try:
        status, body = await connection.request(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    finally:
        connection.close()
    values = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return float(values.get("sidan_intake_batches_total", 0)), float(values.get("sidan_intake_reports_total", 0))


def per_batch(before: tuple[float, float], after: tuple[float, float]) -> str:
    batches, reports = after[0] - before[0], after[1] - before[1]
    return f"{reports / batches:5.1f} reports per transaction" if batches else "no transaction seen"


# ------------------------------------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BARE_APP = """
import sys
from sanic import Sanic
from sanic.response import text
app = Sanic("bare")
app.config.TOUCHUP = True
@app.post("/wechat")
async def wechat(request):
    return text("success")
@app.get("/healthz")
async def healthz(request):
    return text("ok")
if __name__ == "__main__":
    workers = int(sys.argv[2])
    app.run(host="127.0.0.1", port=int(sys.argv[1]), workers=workers, access_log=False, single_process=workers == 1)
"""


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log_path: Path

    def rss_bytes(self) -> int:
        """Resident memory of the server and its worker processes (Linux /proc)."""
        total = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU of the server and its worker processes so far (Linux /proc)."""
        ticks = 0
        for pid in [self.process.pid, *children(self.process.pid)]:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    found.extend(children(int(child)))
    return found


async def wait_ready(server: Server, seconds: float = 60, workers: int = 1) -> None:
    """Wait for the workers to log "Worker ready" (or, for the bare app, for a first answer), then for /healthz.

    Not polled before that: a request that arrives while `sidan serve` is starting and is abandoned by the client
    was seen to wedge the worker (every later request hangs) — reported, not worked around here."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"server exited while starting; see {server.log_path}:\n"
                             + server.log_path.read_text()[-2000:])
        log = server.log_path.read_text(errors="replace")
        if log.count("Worker ready") >= workers or "Goin' Fast" in log and "bare" in server.log_path.name:
            break
        await asyncio.sleep(0.2)
    while time.monotonic() < deadline:
        connection = Connection("127.0.0.1", server.port)
        try:
            status, _ = await connection.request(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", timeout=10)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            status = 0
        connection.close()
        if status == 200:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"server did not start in time; see {server.log_path}")


SERVER_CPUS: set[int] | None = None  # --pin: the CPUs the servers run on (the load generator has the rest)


def pin(enabled: bool) -> str:
    """With --pin: this process (the load generator) on the first allowed CPU, the servers on the others."""
    global SERVER_CPUS
    allowed = sorted(os.sched_getaffinity(0))
    if not enabled or len(allowed) < 2:
        return "client and server share the machine"
    os.sched_setaffinity(0, {allowed[0]})
    SERVER_CPUS = set(allowed[1:])
    return f"load generator pinned to CPU {allowed[0]}, servers to CPU {', '.join(map(str, allowed[1:]))}"


def start(command: list[str], env: dict[str, str], port: int, log_dir: Path, name: str, cwd: Path = REPO) -> Server:
    log_path = log_dir / f"{name}.log"
    cpus = SERVER_CPUS
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    return Server(process, port, log_path)


def start_bare(workers: int, log_dir: Path) -> Server:
    script = log_dir / "bare_app.py"
    script.write_text(BARE_APP)
    port = free_port()
    return start([PYTHON, str(script), str(port), str(workers)], dict(os.environ), port, log_dir, f"bare-{workers}w")


def full_env(database_url: str, redis_url: str, model: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIDAN_")}
    # The development config: real code paths, development credentials, so the outbox never calls WeChat
    # (and the API base points at a closed loopback port in case anything tried).
    env.update(SIDAN_ENV="development", SIDAN_DATABASE_URL=database_url, SIDAN_REDIS_URL=redis_url,
               SIDAN_CLASSIFIER_MODEL_PATH=str(model), SIDAN_WECHAT_API_BASE="http://127.0.0.1:9")
    return env


def start_full(workers: int, database_url: str, redis_url: str, model: Path, log_dir: Path, name: str,
               checkout: Path = REPO) -> Server:
    """`sidan serve` from `checkout`'s code: `-m` puts its folder first on sys.path, before the editable install."""
    port = free_port()
    command = [PYTHON, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    env = full_env(database_url, redis_url, model) | {"PYTHONPATH": str(checkout)}
    return start(command, env, port, log_dir, name, cwd=checkout)


# ------------------------------------------------------------------------------------------------ databases
async def fresh_database(backend: str, work: Path, postgres_base: str) -> str:
    """A migrated database with the demo departments, nobody else's rows."""
    from api.demo.township import load_demo_data
    from orders import db

    if backend == "sqlite":
        url = f"sqlite://{work / f'bench-{uuid.uuid4().hex[:6]}.sqlite3'}"
    else:
        import asyncpg

        name = f"sidan_bench_{uuid.uuid4().hex[:8]}"
        conn = await asyncpg.connect(postgres_base.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = postgres_base.rsplit("/", 1)[0] + "/" + name
    await db.migrate(url)
    await db.init_db(url)
    try:
        await load_demo_data()
    finally:
        await db.close_db()
    return url


async def drop_database(url: str, postgres_base: str) -> None:
    if url.startswith("sqlite://"):
        with contextlib.suppress(OSError):
            os.remove(url.removeprefix("sqlite://"))
        return
    import asyncpg

    conn = await asyncpg.connect(postgres_base.replace("postgres://", "postgresql://", 1))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def count_rows(url: str) -> dict[str, int]:
    """Orders, and inbound text messages (unique per MsgId): equal when no message made two orders."""
    from orders import db, models

    await db.init_db(url)
    try:
        orders = await models.Order.all().count()
        messages = await models.InboundMessage.filter(msg_key__startswith="msg:").count()
        return {"orders": orders, "messages": messages}
    finally:
        await db.close_db()


async def flush_redis(url: str) -> None:
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def ensure_model(path: Path | None, work: Path) -> Path:
    if path is not None:
        return path
    default = REPO / "var/models/router.pkl"
    if default.exists():
        return default
    from classifiers.cli import main as classify

    model = work / "router.pkl"
    print("training a quick routing model (no var/models/router.pkl)…", flush=True)
    if classify(["train", "--quick", "--model", str(model)]) != 0:
        raise SystemExit("training the model failed")
    return model


# ------------------------------------------------------------------------------------------------ the run
@dataclass
class Config:
    backend: str  # sqlite | postgres
    workers: int
    redis: bool

    @property
    def name(self) -> str:
        store = "+Redis" if self.redis else ""
        return f"{'SQLite' if self.backend == 'sqlite' else 'PostgreSQL'}{store}, {self.workers} worker{'s' * (self.workers > 1)}"


async def bench_bare(workers: int, args, work: Path) -> Result:
    server = start_bare(workers, work)
    try:
        await wait_ready(server)
        await saturate(server.port, min(2.0, args.seconds), args.connections, Messages())  # warm-up
        return await saturate(server.port, args.seconds, args.connections, Messages())
    finally:
        server.stop()


async def bench_full(config: Config, args, work: Path, model: Path) -> dict:
    url = await fresh_database(config.backend, work, args.postgres)
    redis_url = args.redis if config.redis else ""
    if redis_url:
        await flush_redis(redis_url)
    server = start_full(config.workers, url, redis_url, model, work, f"full-{config.backend}-{config.workers}w")
    try:
        await wait_ready(server, workers=config.workers)
        messages = Messages()
        warm = await saturate(server.port, min(2.0, args.seconds), args.connections, messages)  # warm-up
        warm_sent = messages_sent(messages)
        counters = [await intake_counters(server.port)]
        saturated = await saturate(server.port, args.seconds, args.connections, messages)
        counters.append(await intake_counters(server.port))
        steady = []
        for rate in args.rates:  # lowest first: a phase the server fell behind in leaves no backlog to the next
            steady.append(await fixed_rate(server.port, args.seconds, rate, args.rate_connections, messages))
            counters.append(await intake_counters(server.port))
        rss = server.rss_bytes()
    finally:
        server.stop()
    counts = await count_rows(url)
    sent = messages_sent(messages)
    await drop_database(url, args.postgres)
    return {"saturated": saturated, "steady": steady, "sent": sent, "warm": warm_sent,
            "numbered": warm.orders_replied + saturated.orders_replied + sum(r.orders_replied for r in steady),
            "counts": counts, "rss": rss, "log": server.log_path,
            "batching": [per_batch(before, after) for before, after in zip(counters, counters[1:])]}


def disagree(outcome: dict) -> bool:
    """Lost (an order number given but no row) or doubled (more orders than messages)."""
    counts = outcome["counts"]
    return counts["orders"] != outcome["numbered"] or counts["orders"] != counts["messages"]


async def compare(configs: list[Config], args, work: Path, model: Path) -> int:
    """--against: every checkout's server up at once, each on a fresh database of its own, then saturation phases
    in turn (A B C, B C A, C A B, … --rounds times), so that the machine's other load falls on each alike. Per
    phase: msg/s, and the server's CPU per message (user + system, its workers included), which that load disturbs
    less."""
    checkouts = [REPO, *args.against]
    labels = "ABCDEFGH"[:len(checkouts)]
    for label, checkout in zip(labels, checkouts):
        print(f"{label} = {checkout} ({git_head(checkout)})", flush=True)
    problems = 0
    for config in configs:
        print(f"\nfull /wechat, {config.name}, saturation:", flush=True)
        redis_url = args.redis if config.redis else ""
        if redis_url:
            await flush_redis(redis_url)  # shared by the servers: their residents and MsgIds differ
        urls = [await fresh_database(config.backend, work, args.postgres) for _ in checkouts]
        servers = [start_full(config.workers, url, redis_url, model, work,
                              f"full-{config.backend}-{config.workers}w-{label}", checkout)
                   for url, label, checkout in zip(urls, labels, checkouts)]
        messages = [Messages() for _ in checkouts]
        numbered = [0] * len(checkouts)
        rates: list[list[float]] = [[] for _ in checkouts]
        cpu: list[list[float]] = [[] for _ in checkouts]
        try:
            for server in servers:
                await wait_ready(server, workers=config.workers)
            for index, server in enumerate(servers):
                warm = await saturate(server.port, min(2.0, args.seconds), args.connections, messages[index])
                numbered[index] += warm.orders_replied
            for round_number in range(1, args.rounds + 1):
                turn = (round_number - 1) % len(servers)  # the order rotates: no version always goes first
                for index in [*range(turn, len(servers)), *range(turn)]:
                    label, server = labels[index], servers[index]
                    before = server.cpu_seconds()
                    result = await saturate(server.port, args.seconds, args.connections, messages[index])
                    per_message = (server.cpu_seconds() - before) * 1000 / result.ok if result.ok else float("nan")
                    numbered[index] += result.orders_replied
                    rates[index].append(result.rate)
                    cpu[index].append(per_message)
                    print(f"  round {round_number} {label} {result.line()}  server CPU {per_message:.2f} ms/msg",
                          flush=True)
        finally:
            for server in servers:
                server.stop()
        for label, url, given in zip(labels, urls, numbered):
            counts = await count_rows(url)
            await drop_database(url, args.postgres)
            if disagree({"counts": counts, "numbered": given}):
                problems += 1
                print(f"  !! {label}: {given} order numbers given, {counts['orders']} orders, "
                      f"{counts['messages']} inbound rows")
        for label, runs, costs in zip(labels, rates, cpu):
            print(f"  {label}: msg/s {spread(runs, '.0f')}; server CPU ms/msg {spread(costs, '.2f')}")
        for label, runs, costs in zip(labels[1:], rates[1:], cpu[1:]):
            print(f"  A/{label} msg/s per round: {ratios(rates[0], runs)}\n"
                  f"  {label}/A CPU per message per round: {ratios(costs, cpu[0])}", flush=True)
    return 1 if problems else 0


def spread(values: list[float], form: str) -> str:
    return f"median {statistics.median(values):{form}}, min {min(values):{form}}, max {max(values):{form}}"


def ratios(numerators: list[float], denominators: list[float]) -> str:
    """Round by round, then their median, min and max."""
    each = [a / b if b else float("nan") for a, b in zip(numerators, denominators)]
    return " ".join(f"{r:.3f}" for r in each) + f" ({spread(each, '.3f')})"


def git_head(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (done.stdout.strip()[:70] or "not a git checkout") + (", with uncommitted changes" if dirty else "")


def messages_sent(messages: Messages) -> int:
    """How many messages were built (each sent once): the next counter value."""
    probe = next(messages._counter)
    messages._counter = itertools.count(probe)
    return probe


async def main_async(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="sidan-bench-"))
    model = ensure_model(args.model, work)
    configs = [Config("sqlite", 1, False), Config("sqlite", 2, True), Config("postgres", 1, True),
               Config("postgres", 2, True)]
    if args.quick:
        configs = [Config("sqlite", 1, False), Config("postgres", 2, True)]
    if args.only:
        configs = [c for c in configs if c.backend == args.only]
    if args.workers:
        configs = [c for c in configs if c.workers == args.workers]
    if args.against:
        args.rates = []  # saturation only: the figure compared
    placement = pin(args.pin)
    steady = (f", {', '.join(f'{rate:g}' for rate in args.rates)} msg/s with {args.rate_connections} connections "
              f"(fixed rate)") if args.rates else ""
    print(f"callback benchmark: {args.seconds:g} s per phase, {args.connections} connections (saturation){steady}; "
          f"{os.cpu_count()} CPUs; {placement}", flush=True)
    if args.against:
        return await compare(configs, args, work, model)
    bare = {}
    for workers in sorted({c.workers for c in configs}):
        bare[workers] = await bench_bare(workers, args, work)
        print(f"bare Sanic, {workers} worker{'s' * (workers > 1)}:        {bare[workers].line()}", flush=True)
    problems = 0
    for config in configs:
        outcome = await bench_full(config, args, work, model)
        saturated, steady, counts = outcome["saturated"], outcome["steady"], outcome["counts"]
        ratio = saturated.rate / bare[config.workers].rate if bare[config.workers].rate else 0
        answered = outcome["sent"] - saturated.failed - sum(r.failed for r in steady)  # warm-up: counted below
        print(f"\nfull /wechat, {config.name}:")
        batching = outcome["batching"] if config.workers == 1 else [""] * len(outcome["batching"])
        print(f"  saturation  {saturated.line()}   full/bare {ratio:5.1%} (goal ≥ 40%)" + (batching[0] and "; ")
              + batching[0])
        for rate, result, batches in zip(args.rates, steady, batching[1:]):
            goal = "   (goal p99 < 50 ms)" if rate == 1000 else ""
            print(f"  {rate:g} msg/s  {result.line()}{goal}" + (batches and "; ") + batches
                  + (f"; {result.unsent} due messages never sent: the server fell behind" if result.unsent else ""))
        busy = outcome["sent"] - outcome["numbered"]
        print(f"  messages sent {outcome['sent']} (incl. {outcome['warm']} warm-up), answered with an order number "
              f"{outcome['numbered']}, answered busy/other {busy} (nothing recorded: the resident sends again); orders in the database "
              f"{counts['orders']}, inbound rows {counts['messages']}; server RSS {outcome['rss'] / 2**20:.0f} MiB")
        if disagree(outcome):
            problems += 1
            print("  !! orders and messages disagree")
        if answered != outcome["sent"]:
            print(f"  note: {outcome['sent'] - answered} requests failed or timed out (see {outcome['log']})")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase (default 20)")
    parser.add_argument("--quick", action="store_true", help="5 s phases, two configurations")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="one backend only")
    parser.add_argument("--workers", type=int, choices=[1, 2], help="only the configurations with this many workers")
    parser.add_argument("--connections", type=int, default=32, help="connections in the saturation phase")
    parser.add_argument("--rate", default="1000", help="messages per second of the fixed-rate phase; several, "
                        "comma-separated, make one phase each, lowest first (e.g. 600,800,1000)")
    parser.add_argument("--rate-connections", type=int, default=64, help="connections in the fixed-rate phase")
    parser.add_argument("--model", type=Path, help="routing model (default var/models/router.pkl, else trained)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL to create bench databases in")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis database (flushed!) for 2-worker runs")
    parser.add_argument("--pin", action="store_true", help="load generator on one CPU, servers on the others")
    parser.add_argument("--against", action="append", type=Path, default=[], metavar="CHECKOUT",
                        help="another checkout to serve in turn with this one (saturation only); repeatable")
    parser.add_argument("--rounds", type=int, default=6, help="with --against: alternations (default 6); a "
                        "multiple of the number of versions puts each first equally often")
    args = parser.parse_args(argv)
    if len(args.against) > 7:
        parser.error("--against: at most 7 other checkouts")
    for checkout in args.against:
        if not (checkout / "api" / "cli.py").is_file():
            parser.error(f"--against: {checkout} is not a sidan checkout (no api/cli.py)")
    args.against = [checkout.resolve() for checkout in args.against]
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    try:
        args.rates = sorted(float(rate) for rate in args.rate.split(","))
    except ValueError:
        parser.error(f"--rate: numbers separated by commas, not {args.rate!r}")
    if not args.rates or min(args.rates) <= 0:
        parser.error("--rate: positive messages per second")
    if args.quick:
        args.seconds = min(args.seconds, 5.0)
    if args.seconds <= 0 or args.seconds > 600:
        parser.error("--seconds must be in (0, 600]")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
