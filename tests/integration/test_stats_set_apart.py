"""The orders the statistics count apart, on both backends: 不予受理 (invalid: in no rate, whatever happened to them
before) and 办结(未解决) (unsatisfied after the last 重办: not counted as 办结). Every figure is worked out by hand."""
from __future__ import annotations

from datetime import datetime

import pytest

from api.demo.township import load_demo_data
from orders.clock import SHANGHAI, FrozenClock
from orders.stats import Stats
from tests.integration.stats_history import Chronicle, resident, staff

NOW = datetime(2026, 4, 20, 9, 0, tzinfo=SHANGHAI)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 4, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
async def history(orm, settings, fake_classifier) -> dict[str, str]:
    """J K N closed as invalid (J after an automatic dispatch, N after a rating, a 重办 and a 退单); L unsatisfied
    after both reopenings (办结(未解决)); M resolved and rated 5."""
    await load_demo_data()
    chronicle = Chronicle(settings, fake_classifier, at(1, 0))
    service, submit, step = chronicle.service, chronicle.submit, chronicle.step
    grid_worker, supervisor = await staff("demo-grid_worker"), await staff("demo-supervisor")
    jianshe, minzheng = await staff("demo-dept_staff-jianshe"), await staff("demo-dept_staff-minzheng")

    # J: auto → jianshe, in the grid worker's grid; they find it is the power company's (out of remit) before
    # anyone accepts.
    j = await submit("J", at(2, 9), "路灯坏了,电费也太贵", location={"latitude": 28.641, "longitude": 104.406})
    step(at(2, 9, 10)); await service.invalidate(j, grid_worker, "out_of_remit", "电费问题请拨打供电公司 95598 反映")
    # K: unsure; spam, closed by the supervisor.
    k = await submit("K", at(2, 10), "问个事情")
    step(at(2, 10, 5)); await service.invalidate(k, supervisor, "spam", "这条消息没有具体诉求,如有问题请直接描述")
    # L: auto → minzheng; accepted on time; rated 1, then 2 (both reopen it), then "未解决" with no reopening left.
    l_ = await submit("L", at(3, 9), "低保申请材料")
    for round_, (score, resolved) in enumerate(((1, None), (2, None), (3, False))):
        step(at(3 + round_, 9, 20)); await service.accept(l_, minzheng)
        step(at(3 + round_, 15)); await service.resolve(l_, minzheng, "已告知材料")
        step(at(3 + round_, 18)); await service.rate(l_, await resident("resident-L"), score, resolved=resolved)
    # M: auto → jianshe; accepted on time; resolved; rated 5.
    m = await submit("M", at(6, 9), "路灯又坏了")
    step(at(6, 9, 5)); await service.accept(m, jianshe)
    step(at(7, 9)); await service.resolve(m, jianshe, "已修")
    step(at(7, 10)); await service.rate(m, await resident("resident-M"), 5)
    # N: auto → jianshe; accepted, resolved, rated 1 → reopened; returned by jianshe (a private quarrel over a lamp);
    # the grid worker finds it a duplicate of J.
    n = await submit("N", at(8, 9), "路灯的电费谁出")
    step(at(8, 9, 5)); await service.accept(n, jianshe)
    step(at(8, 12)); await service.resolve(n, jianshe, "已解释")
    step(at(8, 13)); await service.rate(n, await resident("resident-N"), 1)
    step(at(8, 14)); await service.return_(n, jianshe, "不属于路灯维修,是邻里电费纠纷")
    step(at(8, 15)); await service.invalidate(n, grid_worker, "duplicate", f"与您此前反映的工单 {j} 是同一件事")
    return chronicle.numbers


@pytest.fixture
def stats() -> Stats:
    return Stats("Asia/Shanghai", clock=FrozenClock(NOW))


def rate(figures, name):
    r = figures.rates[name]
    return r.numerator, r.denominator


async def test_invalid_orders_are_counted_apart_and_in_no_rate(history, stats):
    april = await stats.summary(stats.period("2026-04"))
    counts = april.counts
    assert counts["received"] == 5                       # J K L M N: received, all of them
    assert counts["invalid"] == 3                        # J K N
    assert counts["dispatched"] == 2                     # L M (J and N were dispatched, but are set aside)
    assert counts["auto_dispatched"] == 2                # L M
    assert counts["accepted"] == 2 and counts["open"] == 0
    assert counts["ratings"] == 4                        # L1 L2 L3 M5 (N's 1 is set aside with N)
    assert rate(april, "response") == (2, 2)             # L and M on time; J was dispatched and never decided
    assert rate(april, "auto_dispatch") == (2, 2)
    assert rate(april, "auto_corrected") == (0, 2)       # N's 退单 corrected its routing: set aside
    assert rate(april, "satisfaction") == (1, 4)         # M5
    assert rate(april, "resolution") == (1, 2)           # latest: L 未解决, M resolved


async def test_unsatisfied_after_the_last_reopen_is_closed_unresolved_not_resolved(history, stats):
    april = await stats.summary(stats.period("2026-04"))
    assert april.counts["closed_unresolved"] == 1        # L: verified, escalated, latest rating 未解决
    assert april.counts["resolved"] == 1                 # M only
    assert rate(april, "completion") == (1, 2)           # M ÷ L M
    assert april.counts["reopened"] == 2                 # L (twice) and N: what happened, not a rate
    by_department = {figures.label: figures for figures in await stats.figures(stats.period("2026-04"),
                                                                                by="department")}
    assert by_department["民政办"].counts["closed_unresolved"] == 1 and by_department["民政办"].counts["resolved"] == 0
    assert by_department["村镇建设办"].counts["invalid"] == 1  # J kept its department; N's went with the 退单
    assert by_department["未派单"].counts["invalid"] == 2


async def test_the_export_names_the_states(history, stats):
    rows = [row async for batch in stats.orders_for_export(stats.period("2026-04")) for row in batch]
    assert {row["number"]: row["state"] for row in rows} == {
        history["J"]: "invalid", history["K"]: "invalid", history["L"]: "verified", history["M"]: "verified",
        history["N"]: "invalid"}
