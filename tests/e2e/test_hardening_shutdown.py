"""Graceful shutdown: `sidan serve` stopped (SIGTERM) while a request is in flight finishes that request; outbox
claims held by a stopping dispatcher are handed back (or expire) so another dispatcher sends them."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import httpx

from api.demo.township import load_demo_data
from bot.chat import Simulator
from orders import models
from orders.background import BackgroundTasks
from orders.clock import FrozenClock
from orders.dispatcher import Dispatcher
from orders.services import OrderService
from tests.support import REDIS_URL, REPO, FakeClassifier, free_port

RESIDENT = "o_shutdown_resident_000001"
START = datetime(2026, 11, 24, 8, 30, tzinfo=timezone.utc)


async def wait_until_serving(base: str, process: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited while starting"
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not start")


async def test_a_request_in_flight_when_the_server_stops_is_answered(settings, backend, orm, quick_model,
                                                                     tmp_path):
    await load_demo_data()
    port = free_port()
    env = {**os.environ, "SIDAN_ENV": "test", "SIDAN_DATABASE_URL": settings.database.url,
           "SIDAN_REDIS_URL": REDIS_URL if backend == "postgres" else "", "SIDAN_CLASSIFIER_MODEL_PATH": str(quick_model),
           "SIDAN_APP_RUN_BACKGROUND_TASKS": "false"}
    with open(tmp_path / "server.log", "w") as server_log:
        process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=server_log)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_until_serving(base, process)
        simulator = Simulator(base, settings.wechat.token, RESIDENT, appid=settings.wechat.appid)
        params, body = simulator.envelope(simulator.text_message("楼坝村的路灯坏了好几天"))
        payload = body.encode()
        query = "&".join(f"{key}={value}" for key, value in params.items())
        # the request's head and half its body, then the stop signal, then the rest: a request in flight
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write((f"POST /wechat?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
                      f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n").encode() + payload[:40])
        await writer.drain()
        await asyncio.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        assert process.poll() is None, "the server must wait for the request in flight"
        writer.write(payload[40:])
        await writer.drain()
        response = (await asyncio.wait_for(reader.read(), 10)).decode()
        writer.close()
        assert response.startswith("HTTP/1.1 200"), response[:300]
        assert "工单号" in simulator.read_reply(response.split("\r\n\r\n", 1)[1])
        assert process.wait(timeout=20) == 0
        assert await models.Order.filter(resident__openid=RESIDENT).count() == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def start_server(settings, backend: str, model, log_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "SIDAN_ENV": "test", "SIDAN_DATABASE_URL": settings.database.url,
           "SIDAN_REDIS_URL": REDIS_URL if backend == "postgres" else "", "SIDAN_CLASSIFIER_MODEL_PATH": str(model),
           "SIDAN_APP_RUN_BACKGROUND_TASKS": "false"}
    with open(log_path, "a") as server_log:
        process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=server_log)
    return process, f"http://127.0.0.1:{port}"


async def test_a_server_killed_during_a_burst_loses_and_doubles_nothing(settings, backend, orm, store, quick_model,
                                                                         tmp_path):
    """SIGKILL while a burst of reports is being written: what had committed keeps its order, the rest left no trace,
    and WeChat's retries (same MsgIds, to the restarted server) end with exactly one order per message."""
    await load_demo_data()
    process, base = start_server(settings, backend, quick_model, tmp_path / "server.log")
    residents = [Simulator(base, settings.wechat.token, f"o_burst_resident_{n:09d}", appid=settings.wechat.appid)
                 for n in range(24)]
    messages = [resident.text_message(f"楼坝村{n}组的路灯坏了好几天,晚上很黑") for n, resident in enumerate(residents)]

    async def send(client, resident, fields) -> str | None:
        params, body = resident.envelope(fields)
        try:
            response = await client.post(f"{resident.url}/wechat", params=params, content=body)
        except httpx.TransportError:
            return None  # the server died before answering: WeChat will retry
        return resident.read_reply(response.text)

    try:
        await wait_until_serving(base, process)
        async with httpx.AsyncClient(timeout=10) as client:
            burst = [asyncio.ensure_future(send(client, r, m)) for r, m in zip(residents, messages)]
            deadline = time.monotonic() + 10
            while await models.Order.all().count() == 0 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            process.kill()  # as the first batch commits: no shutdown; the database drops what was not committed
            first = await asyncio.gather(*burst)
        process.wait()
        assert await models.Order.all().count() >= 1  # killed as (or after) a batch committed, answers in flight
        if backend == "postgres":
            # The retries below stand for WeChat's next delivery, which comes within the claims' lifetime: a loaded
            # machine can take longer than CLAIM_SECONDS to restart the server, so the dead worker's claims are kept
            # until then (else an unrecorded message is, rightly, filed afresh and the check below would not hold).
            async for claim in store._redis.scan_iter(match="sidan:wx:msg:*"):
                await store._redis.persist(claim)
        process, base = start_server(settings, backend, quick_model, tmp_path / "server.log")
        await wait_until_serving(base, process)
        for resident in residents:
            resident.url = base
        async with httpx.AsyncClient(timeout=10) as client:
            if backend == "postgres":
                # The dead worker's claims are still in Redis. A retry of a message it recorded answers with its order
                # (from the store, or from the database when the worker died before the store heard); one it did
                # not record is "busy" (true: nothing is written) until its claim lapses.
                recorded = set(await models.InboundMessage.all().values_list("msg_key", flat=True))
                early = await asyncio.gather(*(send(client, r, m) for r, m in zip(residents, messages)))
                for resident, fields, before, reply in zip(residents, messages, first, early):
                    if f"msg:{resident.openid}:{fields['MsgId']}" in recorded:
                        assert reply and "工单号" in reply and reply == (before or reply)
                    else:
                        assert reply == "系统繁忙,请稍后再试。"
                assert await models.Order.all().count() == len(recorded)
                await store._redis.flushdb()  # the claims lapse (CLAIM_SECONDS) by WeChat's next delivery
            retried = await asyncio.gather(*(send(client, r, m) for r, m in zip(residents, messages)))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert all(reply and "工单号" in reply for reply in retried), retried
    for before, after in zip(first, retried):
        if before is not None and "工单号" in before:
            assert before == after  # answered before the kill: the same order, not a second one
    assert await models.Order.all().count() == len(residents)
    assert await models.InboundMessage.all().count() == len(residents)
    for resident in residents:
        assert await models.Order.filter(resident__openid=resident.openid).count() == 1


class BlockingSender:
    """Holds the first message forever (a WeChat call that hangs) until the dispatcher is cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def send(self, message) -> None:
        self.started.set()
        await asyncio.Event().wait()


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[int] = []

    async def send(self, message) -> None:
        self.sent.append(message.id)


async def _pending_outbox(settings, clock) -> set[int]:
    await load_demo_data()
    service = OrderService(settings, FakeClassifier(), clock=clock)
    for text in ("楼坝村的路灯坏了", "新滩村的路灯也坏了", "安富村有人家煤气泄漏着火了"):
        await service.submit(openid=RESIDENT, text=text)
    ids = set(await models.Outbox.filter(status="pending").values_list("id", flat=True))
    assert len(ids) >= 3
    return ids


async def test_a_stopping_dispatcher_hands_its_claims_back_to_the_next_one(settings, orm):
    clock = FrozenClock(START)
    pending = await _pending_outbox(settings, clock)
    blocking = BlockingSender()
    stopping = BackgroundTasks(Dispatcher(settings, blocking, clock=clock, name="worker-stopping", poll_seconds=0.05))
    stopping.start()
    await asyncio.wait_for(blocking.started.wait(), 5)
    assert await models.Outbox.filter(claimed_by="worker-stopping").count() >= 1
    await stopping.stop(grace_seconds=0.2)  # the hung send is cancelled; its claims are released on the way out
    assert await models.Outbox.filter(claimed_by__isnull=False).count() == 0
    recording = RecordingSender()
    await Dispatcher(settings, recording, clock=clock, name="worker-next").run_until_idle()
    assert set(recording.sent) == pending  # nothing waits for the lease: sent at once, each once
    assert await models.Outbox.filter(status="sent").count() == len(pending)


async def test_claims_of_a_dispatcher_that_died_expire_and_are_sent_by_another(settings, orm):
    clock = FrozenClock(START)
    pending = await _pending_outbox(settings, clock)
    died = Dispatcher(settings, RecordingSender(), clock=clock, name="worker-killed", lease_seconds=60)
    claimed = await died.claim()  # claimed, then the process is killed: no release
    assert {row.id for row in claimed} == pending
    recording = RecordingSender()
    survivor = Dispatcher(settings, recording, clock=clock, name="worker-survivor")
    await survivor.run_until_idle()
    assert recording.sent == []  # the lease still holds
    clock.advance(seconds=61)
    await survivor.run_until_idle()
    assert set(recording.sent) == pending
    assert await models.Outbox.filter(status="sent").count() == len(pending)
