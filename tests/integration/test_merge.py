"""合并工单 on a real database (SQLite and PostgreSQL): who may merge and into what (refusals write nothing), what a
merge writes, how a merged order follows its primary (the primary's steps reach its resident, each surveyed and rated
on its own number, an unsatisfied reporter reopens the primary and its followers), and the statistics counting the
matter once and every reporter's rating."""
from __future__ import annotations

from datetime import datetime

import pytest

from api.demo.township import load_demo_data
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.errors import IllegalTransition, InvalidInput, NotFound, NotPermitted
from orders.services import OrderService
from orders.stats import Stats
from tests.integration.stats_history import Chronicle, resident, staff

IN_THE_GRID = {"latitude": 28.641, "longitude": 104.406}  # XJB-01, demo-grid_worker's grid
NOW = datetime(2026, 5, 20, 9, 0, tzinfo=SHANGHAI)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 5, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
async def service(orm, settings, fake_classifier):
    await load_demo_data()
    return OrderService(settings, fake_classifier)


async def report(service: OrderService, openid: str, text: str, **extra) -> models.Order:
    return (await service.submit(openid=openid, text=text, location=extra.pop("location", IN_THE_GRID),
                                 **extra)).order


async def written(*orders: models.Order) -> list[tuple]:
    """Everything a use case may write about these orders: rows, events, outbox rows."""
    out = []
    for order in orders:
        row = await models.Order.get(id=order.id)
        out.append((row.state, row.version, row.merged_into_id, row.merged_at,
                    await models.OrderEvent.filter(order_id=order.id).count(),
                    await models.Outbox.filter(order_id=order.id).count()))
    return out


async def test_a_grid_worker_merges_a_duplicate_and_it_is_recorded_and_its_resident_told(service):
    primary = await report(service, "oFirst", "村口的路灯坏了,晚上黑漆漆的")
    duplicate = await report(service, "oSecond", "村口路灯不亮了好几天")
    merged = await service.merge(duplicate.number, await staff("demo-grid_worker"), primary.number,
                                 reason="同一盏路灯")
    assert merged.state == "merged" and merged.merged_into_id == primary.id and merged.merged_at is not None
    event = await models.OrderEvent.filter(order_id=duplicate.id).order_by("-id").first()
    assert (event.action, event.from_state, event.to_state, event.actor_role, event.actor_name, event.reason) == (
        "merge", "dispatched", "merged", "grid_worker", "网格员王小燕", "同一盏路灯")
    assert event.data == {"into": primary.number, "reason": "同一盏路灯"}
    [told] = await models.Outbox.filter(order_id=duplicate.id, kind="resident_merged")
    assert told.recipient == "oSecond" and told.dedup_key == f"merged:{duplicate.id}"
    assert {key: told.payload[key] for key in ("to", "number", "state", "primary", "reason", "department")} == {
        "to": "resident", "number": duplicate.number, "state": "merged", "primary": primary.number,
        "reason": "同一盏路灯", "department": "村镇建设办"}
    note = await models.OrderEvent.filter(order_id=primary.id).order_by("-id").first()
    assert (note.action, note.from_state, note.to_state, note.data) == (
        "merged_in", "dispatched", "dispatched", {"from": duplicate.number})
    assert (await models.Order.get(id=primary.id)).state == "dispatched"  # the primary is worked as before


async def test_the_department_handling_it_merges_and_a_department_elsewhere_hears_it_has_no_more_to_do(service):
    primary = await report(service, "oFirst", "村口的路灯坏了")  # auto → jianshe
    elsewhere = await report(service, "oSecond", "村口黑了,灯不亮")  # unsure → waits for a grid worker
    await service.dispatch(elsewhere.number, await staff("demo-grid_worker"), "minzheng")
    minzheng = await staff("demo-dept_staff-minzheng")
    with pytest.raises(InvalidInput) as unseen:  # minzheng may not see jianshe's order
        await service.merge(elsewhere.number, minzheng, primary.number)
    assert unseen.value.details["field"] == "into" and "没有找到要合并到的工单" in unseen.value.message
    await service.merge(elsewhere.number, await staff("demo-supervisor"), primary.number)
    kinds = await models.Outbox.filter(order_id=elsewhere.id).values_list("kind", "recipient")
    assert ("notify_merged", "demo-dept_staff-minzheng") in kinds
    after = await models.Order.get(id=elsewhere.id)
    assert after.department_id == primary.department_id  # its department is now the primary's
    jianshe = await staff("demo-dept_staff-jianshe")
    third = await report(service, "oThird", "路灯坏了没人修")
    await service.merge(third.number, jianshe, primary.number)  # jianshe handles both
    assert (await models.Order.get(id=third.id)).state == "merged"


async def test_refused_merges_say_why_in_chinese_and_write_nothing(service):
    grid_worker = await staff("demo-grid_worker")
    a = await report(service, "oA", "村口的路灯坏了")
    b = await report(service, "oB", "路灯不亮")
    c = await report(service, "oC", "路灯坏了好几天")
    spam = await report(service, "oD", "路灯路灯")
    await service.invalidate(spam.number, grid_worker, "spam", "这条消息没有具体诉求,请直接描述问题")
    await service.merge(b.number, grid_worker, a.number)
    before = await written(a, b, c, spam)
    cases = [
        (c.number, c.number, "不能把工单合并到它自己"),
        (c.number, b.number, f"工单 {b.number} 已合并到工单 {a.number},请合并到主工单"),
        (c.number, spam.number, "不予受理,不能合并到它"),
        (c.number, "YK20990101-0001", "没有找到要合并到的工单"),
        (a.number, b.number, "已合并到本工单,不能再反向合并(会形成循环)"),
        (a.number, c.number, f"已有 1 个工单合并到本工单,请把工单 {c.number} 合并到本工单"),
        (c.number, "", "请填写要合并到的主工单号"),
    ]
    for number, into, message in cases:
        with pytest.raises(InvalidInput) as refused:
            await service.merge(number, grid_worker, into)
        assert message in refused.value.message, (number, into)
    with pytest.raises(IllegalTransition):  # merged already: not open
        await service.merge(b.number, grid_worker, c.number)
    with pytest.raises(NotPermitted):
        await service.merge(c.number, await resident("oC"), a.number)
    with pytest.raises(NotFound):  # another grid's worker sees neither
        await service.merge(c.number, await staff("demo-grid_worker-XJB-02"), a.number)
    assert await written(a, b, c, spam) == before


async def test_an_order_others_follow_is_neither_cancelled_nor_closed_as_invalid(service):
    a = await report(service, "oA", "村口的路灯坏了")
    b = await report(service, "oB", "路灯不亮")
    await service.merge(b.number, await staff("demo-grid_worker"), a.number)
    before = await written(a, b)
    with pytest.raises(InvalidInput) as cancel:
        await service.cancel(a.number, await resident("oA"))
    assert "还有 1 位群众反映的同一事项合并在此办理,不能取消" in cancel.value.message
    with pytest.raises(InvalidInput) as closing:
        await service.invalidate(a.number, await staff("demo-supervisor"), "duplicate", "与其他工单重复,请关注")
    assert "不能不予受理" in closing.value.message
    assert await written(a, b) == before


async def test_a_merged_order_follows_its_primary_to_its_own_survey_and_an_unhappy_reporter_reopens_both(service):
    jianshe, grid_worker = await staff("demo-dept_staff-jianshe"), await staff("demo-grid_worker")
    a = await report(service, "oA", "村口的路灯坏了")
    b = await report(service, "oB", "路灯不亮")
    await service.merge(b.number, grid_worker, a.number)
    await service.accept(a.number, jianshe)
    [heard] = await models.Outbox.filter(order_id=b.id, kind="accepted")
    assert heard.recipient == "oB" and heard.payload["number"] == b.number and heard.payload["primary"] == a.number
    await service.progress(a.number, jianshe, "电工已到现场", notify_resident=True)
    await service.progress(a.number, jianshe, "内部:等配件")  # internal: nobody is told
    notes = await models.Outbox.filter(kind="resident_progress").order_by("id").values_list(
        "order_id", "recipient", "payload")
    heard = [(order_id, recipient, payload["note"], payload.get("primary")) for order_id, recipient, payload in notes]
    assert heard == [(a.id, "oA", "电工已到现场", None), (b.id, "oB", "电工已到现场", a.number)]
    await service.resolve(a.number, jianshe, "已更换灯泡")
    b_now = await models.Order.get(id=b.id)
    assert (b_now.state, b_now.result, b_now.department_id) == ("resolved", "已更换灯泡", a.department_id)
    surveys = await models.Outbox.filter(kind="survey").order_by("id").values_list("order_id", "recipient", "dedup_key")
    assert surveys == [(a.id, "oA", f"survey:{a.id}:0"), (b.id, "oB", f"survey:{b.id}:0")]
    # B's reporter is not satisfied: A is reopened, and B follows it again (its next round)
    await service.rate(b.number, await resident("oB"), 1, comment="灯还是不亮")
    a_now, b_now = await models.Order.get(id=a.id), await models.Order.get(id=b.id)
    assert (a_now.state, a_now.reopen_count) == ("reopened", 1)
    assert (b_now.state, b_now.reopen_count, b_now.resolved_at) == ("merged", 1, None)
    reopen = await models.OrderEvent.filter(order_id=a.id, action="reopen").first()
    assert reopen.actor_role == "system" and reopen.reason == f"合并工单 {b.number} 的群众评价不满意:灯还是不亮"
    follow = await models.OrderEvent.filter(order_id=b.id, action="follow").first()
    assert (follow.from_state, follow.to_state) == ("verified", "merged")
    with pytest.raises(IllegalTransition):  # A's first survey was overtaken by the reopening
        await service.rate(a.number, await resident("oA"), 5)
    # worked again; both reporters rate the second round, each on their own number
    await service.accept(a.number, jianshe)
    await service.resolve(a.number, jianshe, "更换了线路")
    await service.rate(a.number, await resident("oA"), 5)
    await service.rate(b.number, await resident("oB"), 4)
    ratings = await models.Rating.filter(order_id__in=[a.id, b.id]).order_by("id").values_list(
        "order_id", "round", "score")
    assert ratings == [(b.id, 0, 1), (a.id, 1, 5), (b.id, 1, 4)]
    assert [o.state for o in (await models.Order.get(id=a.id), await models.Order.get(id=b.id))] == [
        "verified", "verified"]
    before = await written(a, b)
    with pytest.raises(InvalidInput) as redo:  # a supervisor redoes the matter on its primary
        await service.reopen(b.number, await staff("demo-supervisor"), "群众电话反映还是不亮")
    assert f"请重办主工单 {a.number}" in redo.value.message and await written(a, b) == before
    await service.reopen(a.number, await staff("demo-supervisor"), "群众电话反映还是不亮")
    assert [o.state for o in (await models.Order.get(id=a.id), await models.Order.get(id=b.id))] == [
        "reopened", "merged"]


async def test_past_the_reopen_limit_an_unhappy_follower_sends_the_primary_to_the_supervisor(service):
    jianshe = await staff("demo-dept_staff-jianshe")
    a = await report(service, "oA", "村口的路灯坏了")
    b = await report(service, "oB", "路灯不亮")
    await service.merge(b.number, await staff("demo-grid_worker"), a.number)
    for _ in range(service.settings.survey.max_reopens + 1):
        await service.accept(a.number, jianshe)
        await service.resolve(a.number, jianshe, "已修")
        await service.rate(a.number, await resident("oA"), 5)
        await service.rate(b.number, await resident("oB"), 1)
    a_now, b_now = await models.Order.get(id=a.id), await models.Order.get(id=b.id)
    assert (a_now.state, a_now.reopen_count, a_now.escalation_level) == ("verified", 2, 2)
    assert b_now.state == "verified"


@pytest.fixture
async def matter(orm, settings, fake_classifier) -> dict[str, str]:
    """P (primary) and F (merged into P) report one lamp; both rated; Q a lamp elsewhere, accepted late."""
    await load_demo_data()
    chronicle = Chronicle(settings, fake_classifier, at(1, 0))
    service, submit, step = chronicle.service, chronicle.submit, chronicle.step
    jianshe = await staff("demo-dept_staff-jianshe")
    p = await submit("P", at(2, 9), "村口的路灯坏了", location=IN_THE_GRID)
    f = await submit("F", at(2, 9, 20), "村口路灯不亮", location=IN_THE_GRID)
    step(at(2, 9, 30)); await service.merge(f, jianshe, p)
    step(at(2, 9, 40)); await service.accept(p, jianshe)
    step(at(3, 9)); await service.resolve(p, jianshe, "已更换灯泡")
    step(at(3, 10)); await service.rate(p, await resident("resident-P"), 5)
    step(at(3, 11)); await service.rate(f, await resident("resident-F"), 3, resolved=True)
    q = await submit("Q", at(4, 9), "路灯又坏了")
    step(at(6, 9)); await service.accept(q, jianshe)  # late
    return chronicle.numbers


async def test_the_statistics_count_the_matter_once_and_every_reporter_s_rating(matter):
    stats = Stats("Asia/Shanghai", clock=FrozenClock(NOW))
    may = await stats.summary(stats.period("2026-05"))
    counts = may.counts
    assert (counts["received"], counts["matters"], counts["merged"]) == (3, 2, 1)  # 受理: reports and matters
    assert counts["accepted"] == 2 and counts["resolved"] == 1 and counts["dispatched"] == 2
    assert (may.rates["response"].numerator, may.rates["response"].denominator) == (1, 2)  # P on time, Q late
    assert (may.rates["completion"].numerator, may.rates["completion"].denominator) == (1, 2)
    assert (may.rates["satisfaction"].numerator, may.rates["satisfaction"].denominator) == (1, 2)  # P5, F3
    assert (may.rates["resolution"].numerator, may.rates["resolution"].denominator) == (2, 2)
    assert may.durations["resolve"].count == 1  # the matter's wait, once
    by_department = {figures.label: figures for figures in await stats.figures(stats.period("2026-05"),
                                                                                by="department")}
    assert by_department["村镇建设办"].counts["ratings"] == 2  # F's rating is the department's too
