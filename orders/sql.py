"""Raw SQL where the ORM has no form for a statement (upserts with RETURNING, the statistics): one statement built
with the dialect's placeholders, so the same text serves PostgreSQL and SQLite."""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

from tortoise.fields import DatetimeField
from tortoise.fields.base import Field
from tortoise.validators import MaxLengthValidator


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
    encoders = _encoders(type(objects[0]), names)
    rows = q.rows([[encode(getattr(obj, name)) if encode is not None else field.to_db_value(getattr(obj, name), obj)
                    for name, field, encode in encoders] for obj in objects])
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
    encoders = [(name, field, encode or (lambda value, to_db=field.to_db_value: to_db(value, model)))
                for name, field, encode in _encoders(model, names)]
    per_statement = max(1, MAX_PARAMETERS // len(names))
    for start in range(0, len(rows), per_statement):
        q = Sql(conn.capabilities.dialect)
        values = q.rows([[encode(row[name] if name in row else _default(field)) for name, field, encode in encoders]
                         for row in rows[start:start + per_statement]])
        await conn.execute_query(f"{_insert_into(meta, names)} VALUES {values}", q.values)


_MOMENT = object()  # in a cached plan: a moment column, given a memo of its own for each statement
_plans: dict[tuple[Any, ...], list[tuple[str, Any, Any]]] = {}


def _encoders(model: Any, names: list[str]) -> list[tuple[str, Any, Callable[[Any], Any] | None]]:
    """For one statement: (name, field, encode) per column, encode(value) == field.to_db_value(value, model) but
    cheaper where the answer is known without asking (the intake converts ~80 values per report):
    - a plain field (Field's own to_db_value) given a value of exactly its type returns it, after its validators:
      none, or a maximum length checked here;
    - a moment is converted once per statement however many rows and columns repeat it (a batch's `now`).
    None for a field stamped by Tortoise on write (auto_now): it needs the instance, not the class."""
    fields = [model._meta.fields_map[name] for name in names]
    key = (model, *map(id, fields))  # the fields themselves: Tortoise builds new ones when it is initialised again
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = [(name, field, _encoder(field, model)) for name, field in zip(names, fields)]
    return [(name, field, _memo_moments(lambda value, to_db=field.to_db_value: to_db(value, model))
             if encode is _MOMENT else encode) for name, field, encode in plan]


def _encoder(field: Any, model: Any) -> Any:
    if type(field).to_db_value is Field.to_db_value:
        return _plain_encoder(field, model)
    if type(field) is DatetimeField:
        return None if field.auto_now or field.auto_now_add else _MOMENT
    return None if getattr(field, "auto_now", False) else (lambda value, to_db=field.to_db_value: to_db(value, model))


def _plain_encoder(field: Any, model: Any) -> Callable[[Any], Any]:
    to_db, kind, validators = field.to_db_value, field.field_type, field.validators
    if not validators:
        return lambda value: value if value is None or type(value) is kind else to_db(value, model)
    if len(validators) == 1 and type(validators[0]) is MaxLengthValidator and kind is str:
        limit = validators[0].max_length
        return lambda value: value if type(value) is str and len(value) <= limit else to_db(value, model)
    return lambda value: to_db(value, model)


def _memo_moments(encode: Callable[[Any], Any]) -> Callable[[Any], Any]:
    done: dict[Any, Any] = {}

    def memoized(value: Any) -> Any:
        if type(value) is not datetime:  # None, or something to_db_value takes or refuses on its own
            return encode(value)
        try:
            return done[value]
        except KeyError:
            result = done[value] = encode(value)
            return result
    return memoized


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
