"""Raw SQL where the ORM has no form for a statement (upserts with RETURNING, the statistics): one statement built
with the dialect's placeholders, so the same text serves PostgreSQL and SQLite."""
from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any


class Sql:
    """Builds one statement with the dialect's placeholders ($1 for PostgreSQL, ? for SQLite)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def param(self, value: Any) -> str:
        if self.dialect == "sqlite":
            value = _sqlite_value(value)
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect == "postgres" else "?"

    def time(self, value: datetime) -> str:
        """A moment to compare with a timestamp column wrapped in Stats._t."""
        placeholder = self.param(value)
        return f"julianday({placeholder})" if self.dialect == "sqlite" else placeholder

    def in_list(self, values: Iterable[Any]) -> str:
        return "(" + ", ".join(self.param(value) for value in values) + ")"

    def rows(self, rows: list[list[Any]]) -> str:
        """`(…), (…)` for a multi-row VALUES: in_list for each row, built in bulk (the intake writes hundreds)."""
        width = len(rows[0])
        first = len(self.values) + 1
        if self.dialect == "postgres":
            text = ", ".join("(" + ", ".join(f"${n}" for n in range(start, start + width)) + ")"
                             for start in range(first, first + width * len(rows), width))
            for row in rows:
                self.values.extend(row)
            return text
        moments: dict[datetime, str] = {}  # a batch's rows share a few moments (its `now` in every row)
        for row in rows:
            for value in row:
                if isinstance(value, datetime):
                    text = moments.get(value)
                    if text is None:
                        text = moments[value] = _sqlite_value(value)
                    value = text
                self.values.append(value)
        return ", ".join(["(" + ", ".join("?" * width) + ")"] * len(rows))


def _sqlite_value(value: Any) -> Any:
    """Moments as UTC text, as Tortoise stores them in SQLite (which compares them as text)."""
    return value.astimezone(timezone.utc).isoformat(sep=" ") if isinstance(value, datetime) else value


_IMMUTABLE = (type(None), bool, int, float, str, bytes)
MAX_PARAMETERS = 30_000  # per statement; SQLite allows 32,766, PostgreSQL 32,767


async def insert_with_ids(conn: Any, objects: list[Any], key: str) -> None:
    """Insert Tortoise model instances in one statement and give each its generated id (bulk_create does not).
    RETURNING's row order is not guaranteed (SQLite says so): rows are matched back by the unique field `key`."""
    if not objects:
        return
    meta = type(objects[0])._meta
    names = _insert_names(meta)
    q = Sql(conn.capabilities.dialect)
    fields = [(name, meta.fields_map[name]) for name in names]
    rows = q.rows([[field.to_db_value(getattr(obj, name), obj) for name, field in fields] for obj in objects])
    pk, key_column = meta.db_pk_column, meta.fields_db_projection[key]
    sql = f'{_insert_into(meta, names)} VALUES {rows} RETURNING "{pk}", "{key_column}"'
    ids = {row[key_column]: row[pk] for row in await conn.execute_query_dict(sql, q.values)}
    for obj in objects:
        obj.pk = ids[getattr(obj, key)]
        obj._saved_in_db = True


async def insert_rows(conn: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows given as {field: value} in as few statements as the parameter limit allows, without building a
    model instance per row (the hot path writes several per report). A field left out takes its default."""
    if not rows:
        return
    meta = model._meta
    names = _insert_names(meta)
    fields = [(name, meta.fields_map[name]) for name in names]
    per_statement = max(1, MAX_PARAMETERS // len(names))
    for start in range(0, len(rows), per_statement):
        q = Sql(conn.capabilities.dialect)
        values = q.rows([[field.to_db_value(row[name] if name in row else _default(field), model)
                          for name, field in fields] for row in rows[start:start + per_statement]])
        await conn.execute_query(f"{_insert_into(meta, names)} VALUES {values}", q.values)


def new_instance(model: Any, **values: Any) -> Any:
    """A model instance not yet written, every field given or defaulted, built the way Tortoise builds rows it reads
    (one assignment per field) instead of through Model.__init__ (a validated assignment each: a tenth of a
    millisecond for an order, and the intake builds one per report)."""
    meta = model._meta
    row = {}
    for name, column in meta.fields_db_projection.items():
        row[column] = values[name] if name in values else _default(meta.fields_map[name])
    instance = model._init_from_db(**row)
    instance._saved_in_db = False
    return instance


def _default(field: Any) -> Any:
    """A field's default for one new row: called when it is a function, copied when it is mutable."""
    default = field.default
    if callable(default):
        return default()
    return default if isinstance(default, _IMMUTABLE) else copy.deepcopy(default)


def _insert_names(meta: Any) -> list[str]:
    return [name for name in meta.fields_db_projection if not meta.fields_map[name].generated]


def _insert_into(meta: Any, names: list[str]) -> str:
    columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in names)
    return f'INSERT INTO "{meta.db_table}" ({columns})'
