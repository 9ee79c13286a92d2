from __future__ import annotations

import asyncio

import pytest

from orders.store import LockNotAcquired, MemoryStore, StoreUnavailable


async def test_set_get_ttl_and_only_if_absent():
    store = MemoryStore()
    assert await store.set("k", "v", ttl=0.05)
    assert not await store.set("k", "other", only_if_absent=True)
    assert await store.get("k") == "v"
    await asyncio.sleep(0.06)
    assert await store.get("k") is None
    assert await store.set("k", "new", only_if_absent=True)


async def test_incr_keeps_the_window_of_the_first_hit():
    store = MemoryStore()
    assert [await store.incr("rate", ttl=0.05) for _ in range(3)] == [1, 2, 3]
    await asyncio.sleep(0.06)
    assert await store.incr("rate", ttl=0.05) == 1


async def test_lock_excludes_and_is_released():
    store = MemoryStore()
    order = []

    async def worker(name):
        async with store.lock("x", ttl=1, wait=1):
            order.append(f"{name}-in")
            await asyncio.sleep(0.01)
            order.append(f"{name}-out")

    await asyncio.gather(worker("a"), worker("b"))
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])
    async with store.lock("y", ttl=5, wait=0):
        with pytest.raises(LockNotAcquired):
            async with store.lock("y", ttl=5, wait=0.02):
                pass


async def test_a_store_gone_at_release_does_not_fail_the_lock_holder():
    class GoneAtRelease(MemoryStore):
        async def delete(self, key: str) -> None:
            raise StoreUnavailable("store went away (test)")

    store = GoneAtRelease()
    done = False
    async with store.lock("resident", ttl=0.05, wait=0.1):
        done = True
    assert done
    await asyncio.sleep(0.06)
    async with store.lock("resident", ttl=5, wait=0.1):  # the lease ended by itself
        pass
