"""orders.sql's encoders skip Tortoise's to_db_value where its answer is known: for every column the intake writes
and every kind of value, they must give what to_db_value gives, or fail as it fails (both backends)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orders import models
from orders.lifecycle import State
from orders.sql import _encoders, _insert_names

BEIJING = timezone(timedelta(hours=8))
MOMENT = datetime(2026, 11, 24, 9, 30, tzinfo=BEIJING)
VALUES = [None, "", "ok", "长" * 300, 7, True, 0.5, State.SUBMITTED, MOMENT, MOMENT.astimezone(timezone.utc),
          {"to": "staff", "terms": ["路灯"]}, ["a"], "[1, 2]", b"x"]


def outcome(call, value):
    try:
        return "ok", call(value)
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return "error", type(exc)


@pytest.mark.parametrize("model", [models.Order, models.OrderEvent, models.Outbox, models.InboundMessage,
                                   models.Resident])
async def test_every_column_encodes_as_tortoise_does(orm, model):
    checked = 0
    for name, field, encode in _encoders(model, _insert_names(model._meta)):
        if encode is None:  # stamped by Tortoise itself: written through to_db_value with the instance
            assert getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            continue
        for value in VALUES + VALUES:  # twice: a repeated moment comes from the memo the second time
            expected = outcome(lambda v: field.to_db_value(v, model), value)
            assert outcome(encode, value) == expected, (model.__name__, name, value)
            checked += 1
    assert checked >= 2 * len(VALUES) * 5
