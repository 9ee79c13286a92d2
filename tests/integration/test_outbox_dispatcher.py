"""The outbox dispatcher on SQLite and PostgreSQL with an injected sender: claim, send, record, retry with backoff,
dead + alert, crash between send and record, release on shutdown, two dispatchers at once."""
from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.clock import SHANGHAI, Clock, FrozenClock
from orders.dispatcher import ALERT_KIND, ChannelDown, Dispatcher, Undeliverable, backoff_seconds

START = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


class Crash(BaseException):
    """The process dies: nothing after the send runs (not an Exception, so nothing catches it)."""


class RecordingSender:
    def __init__(self, failures: dict[str, list[BaseException]] | None = None, pause: float = 0.0) -> None:
        self.delivered: list[tuple[int, str]] = []
        self.attempts: list[int] = []
        self.failures = failures or {}
        self.pause = pause

    async def send(self, message: models.Outbox) -> None:
        self.attempts.append(message.id)
        if self.pause:
            await asyncio.sleep(self.pause)
        planned = self.failures.get(message.recipient)
        if planned:
            error = planned.pop(0)
            if not isinstance(error, Crash):
                raise error
            self.delivered.append((message.id, message.recipient))
            raise error  # sent, then the process died before recording it
        self.delivered.append((message.id, message.recipient))


async def add_rows(count: int, at: datetime, kind: str = "notify_dispatched", prefix: str = "o") -> list[int]:
    ids = []
    for index in range(count):
        row = await models.Outbox.create(kind=kind, recipient=f"{prefix}{index}", next_attempt_at=at, created_at=at,
                                         payload={"number": f"YK20261124-{index:04d}", "to": "staff", "text": "路灯"})
        ids.append(row.id)
    return ids


def dispatcher(settings, sender, clock, **options) -> Dispatcher:
    options.setdefault("backoff_base_seconds", 10)
    options.setdefault("backoff_max_seconds", 600)
    options.setdefault("rng", random.Random(7))
    return Dispatcher(settings, sender, clock, **options)


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    rng = random.Random(1)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (6, 64), (20, 100)]:
        delays = [backoff_seconds(attempts, 2, 100, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed value


async def test_due_rows_are_sent_in_order_and_recorded(orm, settings):
    clock = FrozenClock(START)
    ids = await add_rows(3, START)
    later = await models.Outbox.create(kind="notify_dispatched", recipient="later", payload={"to": "staff"},
                                       next_attempt_at=START + timedelta(minutes=5), created_at=START)
    sender = RecordingSender()
    report = await dispatcher(settings, sender, clock).run_once()
    assert (report.claimed, report.sent) == (3, 3)
    assert sender.delivered == [(ids[0], "o0"), (ids[1], "o1"), (ids[2], "o2")]
    rows = await models.Outbox.filter(id__in=ids).order_by("id")
    assert all(r.status == "sent" and r.attempts == 1 and r.sent_at == START and r.claimed_by is None for r in rows)
    assert (await models.Outbox.get(id=later.id)).status == "pending"  # not due yet
    assert (await dispatcher(settings, sender, clock).run_once()).claimed == 0


async def test_a_failure_is_retried_with_growing_backoff_until_it_succeeds(orm, settings):
    clock = FrozenClock(START)
    [row_id] = await add_rows(1, START)
    sender = RecordingSender({"o0": [RuntimeError("boom"), RuntimeError("boom again")]})
    worker = dispatcher(settings, sender, clock)
    assert (await worker.run_once()).retried == 1
    row = await models.Outbox.get(id=row_id)
    first_delay = (row.next_attempt_at - START).total_seconds()
    assert row.status == "pending" and row.attempts == 1 and 5 <= first_delay <= 10
    assert "boom" in row.last_error and row.claimed_by is None
    assert (await worker.run_once()).claimed == 0  # not due again yet
    clock.set(row.next_attempt_at)
    assert (await worker.run_once()).retried == 1
    row = await models.Outbox.get(id=row_id)
    second_delay = (row.next_attempt_at - clock.now()).total_seconds()
    assert row.attempts == 2 and 10 <= second_delay <= 20
    clock.set(row.next_attempt_at)
    assert (await worker.run_once()).sent == 1
    row = await models.Outbox.get(id=row_id)
    assert row.status == "sent" and row.attempts == 3 and row.last_error is None
    assert sender.delivered == [(row_id, "o0")]


async def test_after_max_attempts_a_message_is_dead_and_the_supervisor_is_alerted(orm, settings):
    await load_demo_data()
    clock = FrozenClock(START)
    [row_id] = await add_rows(1, START, kind="survey", prefix="oResident")
    await models.Outbox.filter(id=row_id).update(payload={"number": "YK20261124-0001", "to": "resident"})
    sender = RecordingSender({"oResident0": [RuntimeError("wechat says no")] * 3})
    worker = dispatcher(settings, sender, clock, max_attempts=3)
    for _ in range(3):
        await worker.run_once()
        clock.advance(hours=1)
    row = await models.Outbox.get(id=row_id)
    assert row.status == "dead" and row.attempts == 3 and "wechat says no" in row.last_error
    alert = await models.Outbox.get(kind=ALERT_KIND)
    assert alert.recipient == "demo-supervisor" and alert.status == "pending"
    assert alert.payload == {"to": "staff", "channel": "miniapp", "number": "YK20261124-0001",
                             "failed_kind": "survey", "failed_to": "resident", "attempts": 3,
                             "error": "RuntimeError: wechat says no"}
    await worker.run_once()
    assert (await models.Outbox.get(id=alert.id)).status == "sent"
    assert sender.delivered == [(alert.id, "demo-supervisor")]


async def test_an_undeliverable_message_is_dead_at_once_and_a_dead_alert_raises_no_alert(orm, settings):
    await load_demo_data()
    clock = FrozenClock(START)
    [row_id] = await add_rows(1, START)
    sender = RecordingSender({"o0": [Undeliverable("43004 require subscribe")],
                              "demo-supervisor": [Undeliverable("43101 refused")]})
    worker = dispatcher(settings, sender, clock)
    await worker.run_once()
    row = await models.Outbox.get(id=row_id)
    assert row.status == "dead" and row.attempts == 1
    await worker.run_once()  # the alert itself cannot be delivered either
    assert await models.Outbox.filter(kind=ALERT_KIND).values_list("status", flat=True) == ["dead"]
    assert await models.Outbox.filter(status="pending").count() == 0


async def test_when_the_channel_is_down_the_rest_of_the_batch_waits_without_spending_attempts(orm, settings):
    clock = FrozenClock(START)
    ids = await add_rows(4, START)
    sender = RecordingSender({"o0": [ChannelDown("connection refused")]})
    report = await dispatcher(settings, sender, clock).run_once()
    assert (report.claimed, report.retried, report.sent) == (4, 1, 0)
    assert sender.attempts == [ids[0]]  # one try, not four
    rows = await models.Outbox.filter(id__in=ids).order_by("id")
    assert [r.attempts for r in rows] == [1, 0, 0, 0]
    assert all(r.status == "pending" and r.claimed_by is None and r.next_attempt_at > START for r in rows)
    clock.advance(hours=1)
    assert (await dispatcher(settings, sender, clock).run_once()).sent == 4


async def test_a_crash_between_send_and_record_repeats_the_send_and_loses_nothing(orm, settings):
    clock = FrozenClock(START)
    [row_id] = await add_rows(1, START)
    sender = RecordingSender({"o0": [Crash()]})
    first = dispatcher(settings, sender, clock, name="worker-a", lease_seconds=120)
    with pytest.raises(Crash):
        await first.run_once()
    row = await models.Outbox.get(id=row_id)
    assert row.status == "pending" and row.claimed_by == "worker-a"  # sent, but not recorded
    second = dispatcher(settings, sender, clock, name="worker-b", lease_seconds=120)
    assert (await second.run_once()).claimed == 0  # the lease still holds
    clock.advance(seconds=121)
    assert (await second.run_once()).sent == 1
    assert (await models.Outbox.get(id=row_id)).status == "sent"
    assert sender.delivered == [(row_id, "o0"), (row_id, "o0")]  # at least once: repeated, never lost


async def test_stopping_a_dispatcher_mid_batch_hands_its_claims_back(orm, settings):
    clock = Clock()
    ids = await add_rows(3, clock.now() - timedelta(seconds=1))
    entered, release = asyncio.Event(), asyncio.Event()

    class StuckSender:
        async def send(self, message):
            entered.set()
            await release.wait()

    worker = dispatcher(settings, StuckSender(), clock, name="stuck", poll_seconds=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(entered.wait(), 5)
    assert await models.Outbox.filter(claimed_by="stuck").count() == 3
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await models.Outbox.filter(id__in=ids)
    assert all(r.claimed_by is None and r.status == "pending" and r.next_attempt_at <= clock.now() for r in rows)
    sender = RecordingSender()
    assert (await dispatcher(settings, sender, clock).run_until_idle()).sent == 3


async def test_a_stopped_loop_ends_cleanly_and_the_loop_survives_a_failing_round(orm, settings, monkeypatch):
    clock = Clock()
    await add_rows(2, clock.now() - timedelta(seconds=1))
    sender = RecordingSender()
    worker = dispatcher(settings, sender, clock, poll_seconds=0.01)
    real_claim, failures = worker.claim, [RuntimeError("database went away")]

    async def flaky_claim():
        if failures:
            raise failures.pop()
        return await real_claim()

    monkeypatch.setattr(worker, "claim", flaky_claim)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        if len(sender.delivered) == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(sender.delivered) == 2 and not failures


async def test_two_dispatchers_at_once_send_each_message_exactly_once(orm, settings, backend):
    clock = Clock()
    ids = await add_rows(60, clock.now() - timedelta(seconds=1))
    sender = RecordingSender(pause=0.002)
    first = dispatcher(settings, sender, clock, name="worker-1", batch_size=7)
    second = dispatcher(settings, sender, clock, name="worker-2", batch_size=7)
    one, two = await asyncio.gather(first.run_until_idle(), second.run_until_idle())
    delivered = [row_id for row_id, _ in sender.delivered]
    assert sorted(delivered) == sorted(ids)  # every message, none twice
    assert one.sent + two.sent == 60
    if backend == "postgres":
        assert one.sent > 0 and two.sent > 0  # both really worked side by side (SKIP LOCKED)
    assert await models.Outbox.filter(status="sent").count() == 60


async def test_when_recording_fails_the_batch_is_handed_back_at_once_and_sent_again(orm, settings, monkeypatch):
    clock = Clock()
    ids = await add_rows(2, clock.now() - timedelta(seconds=1))
    sender = RecordingSender()
    worker = dispatcher(settings, sender, clock, poll_seconds=0.01, lease_seconds=3600)
    real_sent, failures = worker._sent, [RuntimeError("database went away while recording")]

    async def flaky_sent(row):
        if failures:
            raise failures.pop()
        await real_sent(row)

    monkeypatch.setattr(worker, "_sent", flaky_sent)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    for _ in range(500):
        if await models.Outbox.filter(id__in=ids, status="sent").count() == 2:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await models.Outbox.filter(id__in=ids, status="sent").count() == 2  # not stuck for the hour-long lease
    assert [row_id for row_id, _ in sender.delivered] == [ids[0], ids[0], ids[1]]  # the unrecorded one again
