"""The demo history: replayed through the use cases and written in bulk, the same plans give the same rows;
either way the rows agree with the lifecycle."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from tortoise import Tortoise

from api.demo.history import generate_history
from api.demo.plans import make_plans
from api.demo.township import load_demo_data
from orders import db, models
from orders.lifecycle import STATE_TIMESTAMP, State
from tests.support import POSTGRES_URL, create_postgres_database, drop_postgres_database

NOW = datetime(2026, 3, 20, 1, 0, tzinfo=timezone.utc)
COMPARED = ("state", "category", "department_id", "grid_id", "urgency", "auto_dispatched", "routing_corrected",
            "escalation_level", "overdue", "reopen_count", "accept_deadline", "resolve_deadline",
            "accepted_within_deadline", "accepted_by_id", "submitted_at", "dispatched_at", "accepted_at",
            "resolved_at", "rated_at", "returned_at", "reopened_at", "closed_at", "confidence",
            "predicted_category", "predicted_department", "text")


async def snapshot() -> dict[str, tuple]:
    orders = {o.number: tuple(getattr(o, column) for column in COMPARED) for o in await models.Order.all()}
    ratings = sorted((r.order.number, r.round, r.score, r.resolved, r.at)
                     for r in await models.Rating.all().prefetch_related("order"))
    return {"orders": orders, "ratings": ratings}


@pytest.fixture
async def second_database(backend, tmp_path, sqlite_template, postgres_url_if_needed):
    """Another empty database of the same backend, for the bulk copy."""
    if backend == "sqlite":
        import shutil

        path = tmp_path / "bulk.sqlite3"
        shutil.copy(sqlite_template, path)
        yield f"sqlite://{path}"
        return
    url = await create_postgres_database(POSTGRES_URL)
    await db.migrate(url)
    yield url
    await drop_postgres_database(POSTGRES_URL, url)


@pytest.fixture
def postgres_url_if_needed(backend, request):
    if backend == "postgres":
        request.getfixturevalue("postgres_url")  # skips (or fails in CI) without PostgreSQL


async def test_replay_and_bulk_write_the_same_history(database_url, second_database, settings):
    results = []
    for url, method in ((database_url, "replay"), (second_database, "bulk")):
        await db.init_db(url)
        try:
            await load_demo_data()
            written = await generate_history(settings, 80, seed=11, now=NOW, days=40, method=method)
            assert written == 80
            results.append(await snapshot())
        finally:
            await Tortoise.close_connections()
    replayed, bulk = results
    assert replayed["orders"].keys() == bulk["orders"].keys()
    for number, row in replayed["orders"].items():
        assert bulk["orders"][number] == row, number
    assert replayed["ratings"] == bulk["ratings"]
    states = {row[0] for row in replayed["orders"].values()}
    assert {"verified", "closed_unrated", "reopened"} & states and len(states) >= 4  # a varied history


async def test_the_history_is_consistent_and_spread_over_months(orm, settings):
    await load_demo_data()
    assert await generate_history(settings, 120, seed=5, now=NOW, method="replay") == 120
    orders = await models.Order.all()
    for order in orders:
        stamp = STATE_TIMESTAMP[State(order.state)]
        assert getattr(order, stamp) is not None, (order.number, order.state)
        if order.accepted_at and order.dispatched_at:
            assert order.accepted_at >= order.dispatched_at or order.reopened_at
    months = {o.submitted_at.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m") for o in orders}
    assert len(months) >= 5  # 180 days
    assert await models.OrderEvent.filter(action="rate").count() == await models.Rating.all().count()
    # History is not news: nothing from it waits to be sent.
    assert await models.Outbox.filter(status="pending").count() == 0


def test_plans_are_repeatable_by_seed(settings):
    first, end = NOW - timedelta(days=30), NOW
    one = make_plans(settings, 30, 3, first, end)
    two = make_plans(settings, 30, 3, first, end)
    assert [(p.example, [(s.at, s.kind) for s in p.steps]) for p in one] == \
           [(p.example, [(s.at, s.kind) for s in p.steps]) for p in two]
    assert [p.example for p in make_plans(settings, 30, 4, first, end)] != [p.example for p in one]


async def test_bad_arguments_are_refused(orm, settings):
    with pytest.raises(ValueError):
        await generate_history(settings, -1, seed=1)
    with pytest.raises(RuntimeError, match="demo"):
        await generate_history(settings, 5, seed=1)  # no departments yet
