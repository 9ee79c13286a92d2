"""corpus/taxonomy.toml as data: categories, departments, allowed pairs and urgencies (danger: classifiers/danger.py).

The classifier reads the file itself (classifiers/ imports nothing of ours)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from classifiers.text import corpus_dir


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    duties: tuple[str, ...]


@dataclass(frozen=True)
class Urgency:
    name: str
    motto: str
    accept_hours: float
    resolve_days: float


@dataclass(frozen=True)
class Taxonomy:
    categories: dict[str, tuple[str, ...]]  # category name -> allowed department codes
    departments: dict[str, Department]
    urgencies: dict[str, Urgency]  # in order, the most urgent first

    @property
    def urgency_names(self) -> tuple[str, ...]:
        return tuple(self.urgencies)

    @property
    def most_urgent(self) -> str:
        return next(iter(self.urgencies))

    @property
    def pairs(self) -> frozenset[tuple[str, str]]:
        return frozenset((c, d) for c, codes in self.categories.items() for d in codes)

    def allows(self, category: str | None, department: str | None) -> bool:
        return department in self.categories.get(category or "", ())


def taxonomy_path() -> Path:
    return corpus_dir() / "taxonomy.toml"


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    data = tomllib.loads(Path(path or taxonomy_path()).read_text(encoding="utf-8"))
    departments = {
        d["code"]: Department(d["code"], d.get("name", d["code"]), tuple(d.get("duties", ())))
        for d in data["departments"]
    }
    categories = {c["name"]: tuple(c["departments"]) for c in data["categories"]}
    for name, codes in categories.items():
        unknown = set(codes) - set(departments)
        if unknown:
            raise ValueError(f"taxonomy: category {name} names unknown departments {sorted(unknown)}")
    urgencies = {
        u["name"]: Urgency(
            u["name"], u.get("motto", u["name"]), float(u.get("accept_hours", 1)), float(u.get("resolve_days", 7)),
        )
        for u in data["urgencies"]
    }
    if not urgencies:
        raise ValueError("taxonomy: no urgencies")
    return Taxonomy(categories, departments, urgencies)
