"""`sidan worker` as its own process: one pass with --once, and the long-running loop stopped by SIGTERM."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time


from api.demo.township import load_demo_data
from orders import models
from orders.clock import Clock
from orders.services import Actor, OrderService
from tests.fake_wechat import FakeWeChat
from tests.support import REDIS_URL, REPO


def worker_env(database_url: str, backend: str, fake: FakeWeChat) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIDAN_")}
    env.update(SIDAN_ENV="test", SIDAN_DATABASE_URL=database_url, SIDAN_WECHAT_API_BASE=fake.base_url,
               SIDAN_REDIS_URL=REDIS_URL if backend == "postgres" else "", SIDAN_OUTBOX_POLL_SECONDS="0.05")
    return env


async def resolved_order(settings, fake_classifier) -> models.Order:
    await load_demo_data()
    service = OrderService(settings, fake_classifier, clock=Clock())
    order = (await service.submit(openid="oWorkerResident", text="路灯坏了")).order
    clerk = Actor.of_staff(await models.Staff.get(openid="demo-dept_staff-jianshe"))
    await service.accept(order.number, clerk)
    return await service.resolve(order.number, clerk, "已修好")


async def test_worker_once_delivers_everything_due_and_exits(orm, settings, database_url, backend, fake_wechat,
                                                             fake_classifier):
    order = await resolved_order(settings, fake_classifier)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "worker", "--once", cwd=REPO,
        env=worker_env(database_url, backend, fake_wechat),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    assert "sent=3" in stdout.decode()
    assert await models.Outbox.filter(order_id=order.id).exclude(status="sent").count() == 0
    to_resident = [m.body["data"]["keyword1"]["value"] for m in fake_wechat.messages_to("oWorkerResident")]
    assert to_resident == [order.number, order.number]  # accepted, then the survey (templates: no 48-hour window)


def test_worker_runs_until_sigterm_and_stops_cleanly(sqlite_url, fake_wechat):
    with subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], cwd=REPO,
                          env=worker_env(sqlite_url, "sqlite", fake_wechat),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as process:
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and process.poll() is None:
                if "Ctrl-C to stop" in process.stderr.readline():
                    break
            assert process.poll() is None, process.stderr.read()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
        finally:
            if process.poll() is None:
                process.kill()
