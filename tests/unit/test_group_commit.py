"""GroupCommit: what arrives during a write is written together next; each caller gets its own item's outcome."""
from __future__ import annotations

import asyncio
import contextvars

import pytest

from bot.intake import GroupCommit


class Recorder:
    """A write that records its calls; a gate holds a write until the test opens it. Items in fail_items fail
    any write they are part of; fail_batch fails every write of more than one item."""

    def __init__(self, fail_batch: bool = False, fail_items: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.finished: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_batch = fail_batch
        self.fail_items = fail_items

    async def write(self, items: list[str]) -> list[str]:
        self.calls.append(("batch" if len(items) > 1 else "one", list(items)))
        await self.gate.wait()
        if self.fail_batch and len(items) > 1:
            raise RuntimeError("the batch failed")
        for item in items:
            if item in self.fail_items:
                raise ValueError(f"{item} is bad")
        self.finished.extend(items)
        return [f"done {item}" if len(items) > 1 else f"alone {item}" for item in items]


def held_writes(fail_batch: bool = False, fail_items: tuple[str, ...] = (),
                **options) -> tuple[Recorder, GroupCommit]:
    """A GroupCommit over a Recorder whose writes wait until the test opens the gate."""
    recorder = Recorder(fail_batch=fail_batch, fail_items=fail_items)
    recorder.gate.clear()
    return recorder, GroupCommit(recorder.write, **options)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_lone_item_is_written_at_once_on_its_own():
    recorder = Recorder()
    commit = GroupCommit(recorder.write)
    assert await commit.submit("a", key="alice") == "alone a"
    assert recorder.calls == [("one", ["a"])]


async def test_items_arriving_during_a_write_go_together_in_the_next_one():
    recorder, commit = held_writes()
    first = asyncio.ensure_future(commit.submit("a", key="k1"))
    await settle()
    assert recorder.calls == [("one", ["a"])]  # written at once, nobody waited to fill a batch
    rest = [asyncio.ensure_future(commit.submit(item, key=f"k-{item}")) for item in "bcd"]
    await settle()
    assert commit.pending() == 3
    recorder.gate.set()
    assert await first == "alone a"
    assert await asyncio.gather(*rest) == ["done b", "done c", "done d"]
    assert recorder.calls == [("one", ["a"]), ("batch", ["b", "c", "d"])]
    assert commit.pending() == 0


async def test_one_key_at_most_once_per_batch_and_in_arrival_order():
    recorder, commit = held_writes()
    blocker = asyncio.ensure_future(commit.submit("x", key="other"))
    await settle()
    waiting = [asyncio.ensure_future(commit.submit(item, key=key))
               for item, key in [("a1", "alice"), ("b1", "bob"), ("a2", "alice"), ("a3", "alice"), ("c1", "carol")]]
    await settle()
    recorder.gate.set()
    await asyncio.gather(blocker, *waiting)
    assert recorder.calls[1:] == [("batch", ["a1", "b1", "c1"]), ("one", ["a2"]), ("one", ["a3"])]


async def test_batches_are_bounded():
    recorder, commit = held_writes(max_batch=2)
    waiting = [asyncio.ensure_future(commit.submit(str(n), key=str(n))) for n in range(6)]
    await settle()
    recorder.gate.set()
    await asyncio.gather(*waiting)
    assert [items for _, items in recorder.calls] == [["0", "1"], ["2", "3"], ["4", "5"]]


async def test_a_failed_batch_is_written_again_one_by_one_and_each_caller_gets_its_own_outcome():
    recorder, commit = held_writes(fail_batch=True, fail_items=("b",))
    blocker = asyncio.ensure_future(commit.submit("x", key="x"))
    await settle()
    waiting = [asyncio.ensure_future(commit.submit(item, key=item)) for item in "abc"]
    await settle()
    recorder.gate.set()
    results = await asyncio.gather(blocker, *waiting, return_exceptions=True)
    assert results[0] == "alone x" and results[1] == "alone a" and results[3] == "alone c"
    assert isinstance(results[2], ValueError) and "b is bad" in str(results[2])
    assert recorder.calls[1:] == [("batch", ["a", "b", "c"]), ("one", ["a"]), ("one", ["b"]), ("one", ["c"])]
    assert commit.fallbacks == 1


async def test_a_caller_that_gives_up_while_queued_is_withdrawn_and_nothing_is_written():
    recorder, commit = held_writes()
    first = asyncio.ensure_future(commit.submit("a", key="a"))
    await settle()
    impatient = asyncio.ensure_future(commit.submit("b", key="b"))
    patient = asyncio.ensure_future(commit.submit("c", key="c"))
    await settle()
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    recorder.gate.set()
    assert await first == "alone a" and await patient == "alone c"
    assert recorder.finished == ["a", "c"]  # b never reached the database


async def test_a_caller_that_gives_up_during_its_write_still_gets_the_outcome():
    recorder, commit = held_writes()
    caller = asyncio.ensure_future(commit.submit("a", key="a"))
    await settle()
    caller.cancel()  # the reply budget ran out while the order was being written
    await settle()
    recorder.gate.set()
    assert await caller == "alone a"  # its number, not "try again": it would be filed twice
    assert recorder.finished == ["a"]


async def test_a_batch_that_runs_out_of_time_fails_its_callers_at_once_and_is_not_split():
    recorder, commit = held_writes(timeout_seconds=0.05)  # the database never answers
    first = asyncio.ensure_future(commit.submit("a", key="a"))
    await settle()
    grouped = [asyncio.ensure_future(commit.submit(item, key=item)) for item in "bc"]
    results = await asyncio.wait_for(asyncio.gather(first, *grouped, return_exceptions=True), 1)
    assert all(isinstance(result, TimeoutError) for result in results)
    assert recorder.calls == [("one", ["a"]), ("batch", ["b", "c"])]  # b and c were not retried one by one
    assert recorder.finished == []


async def test_the_writer_runs_in_a_context_of_its_own():
    request_id = contextvars.ContextVar("request_id", default=None)
    seen = []

    async def write(items):
        seen.append(request_id.get())
        return items

    commit = GroupCommit(write)
    request_id.set("first-caller")
    assert await commit.submit("a", key="a") == "a"
    assert seen == [None]


async def test_a_cancelled_writer_fails_its_callers_instead_of_leaving_them_waiting():
    recorder, commit = held_writes()
    writing = asyncio.ensure_future(commit.submit("a", key="a"))
    await settle()
    queued = asyncio.ensure_future(commit.submit("b", key="b"))
    await settle()
    commit._writer.cancel()  # the worker shutting down mid-write
    for caller in (writing, queued):
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(caller, 1)
    assert recorder.finished == [] and commit.pending() == 0
