"""Raw SQL where the ORM has no form for a statement (upserts with RETURNING, the statistics): one statement built
with the dialect's placeholders, so the same text serves PostgreSQL and SQLite."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any


class Sql:
    """Builds one statement with the dialect's placeholders ($1 for PostgreSQL, ? for SQLite)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def param(self, value: Any) -> str:
        if isinstance(value, datetime) and self.dialect == "sqlite":
            value = value.astimezone(timezone.utc).isoformat(sep=" ")
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect == "postgres" else "?"

    def time(self, value: datetime) -> str:
        """A moment to compare with a timestamp column wrapped in Stats._t."""
        placeholder = self.param(value)
        return f"julianday({placeholder})" if self.dialect == "sqlite" else placeholder

    def in_list(self, values: Iterable[Any]) -> str:
        return "(" + ", ".join(self.param(value) for value in values) + ")"
