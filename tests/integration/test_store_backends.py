"""The store contract on both implementations (in-process and Redis)."""
from __future__ import annotations

import asyncio

import pytest

from orders.store import LockNotAcquired, RedisStore, StoreUnavailable, lock_key, take_lock


async def test_store_contract(store):
    assert await store.set("dedup:1", "reply", ttl=5, only_if_absent=True)
    assert not await store.set("dedup:1", "other", ttl=5, only_if_absent=True)
    assert await store.get("dedup:1") == "reply"
    assert [await store.incr("rate:o1", ttl=60) for _ in range(3)] == [1, 2, 3]
    await store.delete("dedup:1")
    assert await store.get("dedup:1") is None
    assert await store.ping()


async def test_many_answers_each_command_as_on_its_own(store):
    await store.set("held", "photo")
    assert await store.many([
        ("incr", "rate", 60), ("incr", "rate", 60), ("set", "claim", "x", 5, True), ("set", "claim", "y", 5, True),
        ("get", "held"), ("get", "nothing"), ("incr", "plain"), ("decr", "rate"), ("delete", "held"),
        ("delete", "nothing"),
    ]) == [1, 2, True, False, "photo", None, 1, 1, 1, 0]
    assert await store.get("claim") == "x" and await store.get("held") is None
    assert await store.incr("rate", ttl=60) == 2


async def test_a_lock_taken_in_many_is_released_only_by_its_token(store):
    assert await store.many([("set", lock_key("resident"), "t1", 5, True)]) == [True]
    assert await store.many([("release", lock_key("resident"), "someone else")]) == [0]
    with pytest.raises(LockNotAcquired):
        await take_lock(store, "resident", ttl=5, wait=0.05)  # still held
    assert await store.many([("release", lock_key("resident"), "t1")]) == [1]
    assert await take_lock(store, "resident", ttl=5, wait=0.05)  # free for the next holder


async def test_lock_admits_one_holder_at_a_time(store):
    inside = 0
    peak = 0

    async def hold():
        nonlocal inside, peak
        async with store.lock("token-refresh", ttl=5, wait=5):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(hold() for _ in range(5)))
    assert peak == 1


async def test_redis_down_raises_store_unavailable():
    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(StoreUnavailable):
        await store.get("x")
    await store.close()
