"""Property: random action sequences by random actors never reach an inconsistent order.

After every step the order's state, its timestamps, its ratings and its events agree, and the event chain
replays through the transition table to the current state. Runs on SQLite (each example its own database)."""
from __future__ import annotations

import asyncio
import shutil

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from api.demo.township import load_demo_data
from orders import db, models
from orders.errors import DomainError
from orders.lifecycle import TRANSITIONS, Action, Role, State
from orders.services import Actor, OrderService
from tests.support import FakeClassifier, make_settings

ACTIONS = ["dispatch", "accept", "progress", "request_extension", "extend", "deny_extension", "resolve", "rate",
           "reopen", "cancel", "close_unrated", "escalate", "return_", "invalidate"]
ACTORS = ["resident", "grid_worker", "right_staff", "wrong_staff", "supervisor", "system"]
TEXTS = ["村口的路灯坏了", "隔壁两口子天天吵架", "低保怎么还没发"]

step = st.tuples(st.sampled_from(ACTIONS), st.sampled_from(ACTORS), st.integers(1, 5),
                 st.sampled_from(["jianshe", "minzheng", "sifasuo", "anjian"]))


async def _actor(kind: str, order: models.Order) -> Actor:
    if kind == "resident":
        return Actor.of_resident(await models.Resident.get(id=order.resident_id))
    if kind == "system":
        return Actor.system()
    if kind in ("right_staff", "wrong_staff"):
        department = await models.Department.get_or_none(id=order.department_id) if order.department_id else None
        code = department.code if department else "jianshe"
        if kind == "wrong_staff":
            code = "jiaoyu" if code != "jiaoyu" else "minzheng"
        return Actor.of_staff(await models.Staff.get(openid=f"demo-dept_staff-{code}"))
    return Actor.of_staff(await models.Staff.get(openid=f"demo-{kind}"))


async def _do(service: OrderService, action: str, actor: Actor, order: models.Order, score: int, dept: str):
    n = order.number
    calls = {
        "dispatch": lambda: service.dispatch(n, actor, dept),
        "accept": lambda: service.accept(n, actor),
        "progress": lambda: service.progress(n, actor, "进展"),
        "request_extension": lambda: service.request_extension(n, actor, score, "需要时间"),
        "extend": lambda: service.extend(n, actor, days=score),
        "deny_extension": lambda: service.deny_extension(n, actor, "不同意"),
        "resolve": lambda: service.resolve(n, actor, "已处理"),
        "rate": lambda: service.rate(n, actor, score),
        "reopen": lambda: service.reopen(n, actor, "重办"),
        "cancel": lambda: service.cancel(n, actor),
        "close_unrated": lambda: service.close_unrated(n),
        "escalate": lambda: service.escalate(n, actor, "督办"),
        "return_": lambda: service.return_(n, actor, "不归我们管"),
        "invalidate": lambda: service.invalidate(n, actor, "out_of_remit", "请向县供电公司反映"),
    }
    await calls[action]()


async def _check(order_id: int) -> None:
    order = await models.Order.get(id=order_id)
    events = await models.OrderEvent.filter(order_id=order_id).order_by("id")
    state = None
    for event in events:
        assert event.from_state == (state.value if state else None), (event.action, event.from_state, state)
        if event.action in ("add_photo", "set_location"):
            continue
        rule = TRANSITIONS[(State(event.from_state) if event.from_state else None, Action(event.action))]
        assert Role(event.actor_role) in rule.roles
        expected = rule.to or State(event.from_state)
        assert event.to_state == expected.value
        state = expected
    assert state is not None and order.state == state.value
    assert order.version == len(events) - 1  # creation writes version 0 and the submit event
    current = State(order.state)
    if current in (State.DISPATCHED, State.ACCEPTED, State.RESOLVED, State.VERIFIED):
        assert order.dispatched_at is not None and order.department_id is not None
    if current in (State.ACCEPTED, State.RESOLVED):
        assert order.accepted_at is not None and order.accepted_at >= order.submitted_at
    if current in (State.RESOLVED, State.VERIFIED):
        assert order.resolved_at is not None and order.result
    if current == State.VERIFIED:
        assert order.rated_at is not None
    if current in (State.CANCELLED, State.CLOSED_UNRATED, State.INVALID):
        assert order.closed_at is not None
    if current in (State.SUBMITTED, State.RETURNED):
        assert order.department_id is None
    rate_events = sum(1 for e in events if e.action == "rate")
    assert await models.Rating.filter(order_id=order_id).count() == rate_events
    assert order.reopen_count == sum(1 for e in events if e.action == "reopen")
    assert 0 <= order.escalation_level <= 2
    # A request for more time lives only while a department has the order (退单 takes it away with them).
    assert order.extension_days_requested is None or current == State.ACCEPTED


async def _scenario(template, workdir, text: str, steps) -> None:
    path = workdir / "prop.sqlite3"
    shutil.copy(template, path)
    url = f"sqlite://{path}"
    await db.init_db(url)
    try:
        await load_demo_data()
        service = OrderService(make_settings(url), FakeClassifier())
        order = (await service.submit(openid="oProp", text=text)).order
        await _check(order.id)
        for action, actor_kind, score, dept in steps:
            order = await models.Order.get(id=order.id)
            try:
                await _do(service, action, await _actor(actor_kind, order), order, score, dept)
            except DomainError:
                pass  # refused: must leave everything as it was, which _check verifies
            await _check(order.id)
    finally:
        await db.close_db()


def test_random_action_sequences_stay_consistent(sqlite_template, tmp_path):
    @hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=st.sampled_from(TEXTS), steps=st.lists(step, min_size=1, max_size=14))
    def run(text, steps):
        asyncio.run(_scenario(sqlite_template, tmp_path, text, steps))

    run()
