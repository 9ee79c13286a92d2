"""orders.sql.Sql: placeholders per dialect; a multi-row VALUES is the same as one in_list per row."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orders.sql import Sql

BEIJING = timezone(timedelta(hours=8))
ROWS = [["a", 1, datetime(2026, 11, 24, 9, 0, tzinfo=BEIJING), None], ["b", 2, datetime(2026, 11, 25, tzinfo=timezone.utc), True],
        # the first row's moment again, as another object in another zone, and the second's twice in one row
        ["c", 3, datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc), datetime(2026, 11, 25, 8, 0, tzinfo=BEIJING)]]


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_rows_equal_one_in_list_per_row_after_earlier_parameters(dialect):
    bulk, one_by_one = Sql(dialect), Sql(dialect)
    prefix = bulk.param("day"), one_by_one.param("day")
    assert prefix[0] == prefix[1]
    text = bulk.rows(ROWS)
    assert text == ", ".join(one_by_one.in_list(row) for row in ROWS)
    assert bulk.values == one_by_one.values


def test_postgres_numbers_every_placeholder_once_in_order():
    q = Sql("postgres")
    q.param(0)
    assert q.rows([[1, 2], [3, 4]]) == "($2, $3), ($4, $5)"
    assert q.values == [0, 1, 2, 3, 4]


def test_sqlite_stores_moments_as_utc_text():
    q = Sql("sqlite")
    assert q.rows(ROWS[:1]) == "(?, ?, ?, ?)"
    assert q.values == ["a", 1, "2026-11-24 01:00:00+00:00", None]
    q = Sql("sqlite")
    q.rows(ROWS)
    assert q.values[8:] == ["c", 3, "2026-11-24 01:00:00+00:00", "2026-11-25 00:00:00+00:00"]
