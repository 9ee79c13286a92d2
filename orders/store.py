"""A small async key-value store for dedup, conversation state, rate limits, cached tokens and locks.

Two implementations: in-process (the embedded default, one worker only) and Redis (redis.asyncio).
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Protocol


class StoreUnavailable(Exception):
    """The store did not answer; callers fall back (dedup falls back to the database constraint)."""


class LockNotAcquired(Exception):
    pass


class Store(Protocol):
    kind: str

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float | None = None, only_if_absent: bool = False) -> bool: ...
    async def delete(self, key: str) -> None: ...
    async def incr(self, key: str, ttl: float | None = None) -> int: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...
    async def many(self, commands: list[tuple]) -> list: ...
    def lock(self, key: str, ttl: float = 10.0, wait: float = 5.0) -> contextlib.AbstractAsyncContextManager[None]: ...


def lock_key(key: str) -> str:
    """Where lock(key) keeps its holder's token. A lock can also be taken with ("set", lock_key(key), token, ttl,
    True) in many() and given back with ("release", lock_key(key), token), beside other commands."""
    return f"lock:{key}"


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class MemoryStore:
    """In-process store. Shared by the coroutines of one worker; other processes see nothing of it."""

    kind = "memory"

    def __init__(self) -> None:
        self._data: dict[str, tuple[str, float | None]] = {}

    def _live(self, key: str) -> str | None:
        item = self._data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= time.monotonic():
            del self._data[key]
            return None
        return value

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        if only_if_absent and self._live(key) is not None:
            return False
        self._data[key] = (value, time.monotonic() + ttl if ttl else None)
        if len(self._data) > 100_000:
            self._sweep()
        return True

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)

    async def incr(self, key: str, ttl: float | None = None) -> int:
        return self._add(key, 1, ttl)

    def _add(self, key: str, amount: int, ttl: float | None = None) -> int:
        """Add to a counter, keeping the expiry it got when it was created."""
        current = self._live(key)
        value = int(current or 0) + amount
        expires = self._data[key][1] if current is not None else (time.monotonic() + ttl if ttl else None)
        self._data[key] = (str(value), expires)
        return value

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._data.clear()

    async def many(self, commands: list[tuple]) -> list:
        return [await _run(self, command) for command in commands]

    def _sweep(self) -> None:
        now = time.monotonic()
        for key in [k for k, (_, exp) in self._data.items() if exp is not None and exp <= now]:
            del self._data[key]

    @contextlib.asynccontextmanager
    async def lock(self, key: str, ttl: float = 10.0, wait: float = 5.0) -> AsyncIterator[None]:
        async with _acquire(self, key, ttl, wait):
            yield


class RedisStore:
    """Redis through redis.asyncio, shared by all workers and hosts."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = "sidan:") -> None:
        from redis import asyncio as redis_asyncio

        self._redis = redis_asyncio.from_url(url, decode_responses=True, socket_timeout=2, socket_connect_timeout=2)
        self._prefix = prefix

    def _k(self, key: str) -> str:
        return self._prefix + key

    async def _call(self, coro):
        from redis.exceptions import RedisError

        try:
            return await coro
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc

    async def get(self, key: str) -> str | None:
        return await self._call(self._redis.get(self._k(key)))

    async def set(self, key: str, value: str, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        px = int(ttl * 1000) if ttl else None
        result = await self._call(self._redis.set(self._k(key), value, px=px, nx=only_if_absent))
        return bool(result)

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(self._k(key)))

    async def incr(self, key: str, ttl: float | None = None) -> int:
        async def _incr() -> int:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._k(key))
                if ttl:
                    pipe.expire(self._k(key), int(max(1, ttl)), nx=True)
                result = await pipe.execute()
            return int(result[0])

        return await self._call(_incr())

    async def ping(self) -> bool:
        return bool(await self._call(self._redis.ping()))

    async def close(self) -> None:
        await self._redis.aclose()

    async def many(self, commands: list[tuple]) -> list:
        """The commands in one round trip (a pipeline, not a transaction), each answered as on its own:
        ("get", key), ("set", key, value, ttl, only_if_absent), ("incr", key[, ttl]), ("decr", key),
        ("delete", key), ("release", key, token) (delete if it still holds token)."""
        async def _many() -> list:
            async with self._redis.pipeline(transaction=False) as pipe:
                extra = []  # positions of the EXPIRE that follows an INCR with a ttl
                for name, key, *rest in commands:
                    if name == "get":
                        pipe.get(self._k(key))
                    elif name == "set":
                        value, ttl, only_if_absent = rest
                        pipe.set(self._k(key), value, px=int(ttl * 1000) if ttl else None, nx=only_if_absent)
                    elif name == "incr":
                        pipe.incr(self._k(key))
                        if rest and rest[0]:
                            pipe.expire(self._k(key), int(max(1, rest[0])), nx=True)
                            extra.append(len(pipe.command_stack) - 1)
                    elif name == "decr":
                        pipe.decr(self._k(key))
                    elif name == "delete":
                        pipe.delete(self._k(key))
                    elif name == "release":
                        pipe.eval(_RELEASE, 1, self._k(key), rest[0])
                    else:
                        raise ValueError(f"unknown store command {name!r}")
                results = await pipe.execute()
            answers = [result for position, result in enumerate(results) if position not in extra]
            return [bool(answer) if command[0] == "set" else answer if command[0] == "get" else int(answer)
                    for command, answer in zip(commands, answers)]

        return await self._call(_many())

    @contextlib.asynccontextmanager
    async def lock(self, key: str, ttl: float = 10.0, wait: float = 5.0) -> AsyncIterator[None]:
        async with _acquire(self, key, ttl, wait):
            yield


async def _run(store: MemoryStore, command: tuple):
    name, key, *rest = command
    if name == "get":
        return await store.get(key)
    if name == "set":
        value, ttl, only_if_absent = rest
        return await store.set(key, value, ttl=ttl, only_if_absent=only_if_absent)
    if name == "incr":
        return await store.incr(key, ttl=rest[0] if rest else None)
    if name == "decr":
        return store._add(key, -1)
    if name == "delete":
        existed = store._live(key) is not None
        await store.delete(key)
        return int(existed)
    if name == "release":
        if store._live(key) == rest[0]:
            await store.delete(key)
            return 1
        return 0
    raise ValueError(f"unknown store command {name!r}")


async def take_lock(store: MemoryStore | RedisStore, key: str, ttl: float, wait: float) -> str:
    """The lease lock on key, waited for up to `wait` seconds (LockNotAcquired after): its holder's token."""
    token = secrets.token_hex(8)
    deadline = time.monotonic() + wait
    delay = 0.005
    while not await store.set(lock_key(key), token, ttl=ttl, only_if_absent=True):
        if time.monotonic() >= deadline:
            raise LockNotAcquired(key)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
    return token


@contextlib.asynccontextmanager
async def _acquire(store: MemoryStore | RedisStore, key: str, ttl: float, wait: float) -> AsyncIterator[None]:
    """A lease lock: set-if-absent with a TTL and a random token, released only by its holder."""
    token = await take_lock(store, key, ttl, wait)
    try:
        yield
    finally:
        # A store gone away cannot be told; the lease ends by itself at its TTL. The holder's work is done and
        # must not fail for that.
        with contextlib.suppress(StoreUnavailable):
            await store.many([("release", lock_key(key), token)])


def open_store(redis_url: str) -> MemoryStore | RedisStore:
    return RedisStore(redis_url) if redis_url else MemoryStore()
