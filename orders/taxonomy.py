"""The township taxonomy (corpus/taxonomy.toml): categories, departments, allowed pairs, urgencies."""
from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orders.config import REPO_ROOT

TAXONOMY_PATH = REPO_ROOT / "corpus" / "taxonomy.toml"


@dataclass(frozen=True)
class DepartmentSpec:
    code: str
    name: str
    duties: tuple[str, ...]


@dataclass(frozen=True)
class UrgencySpec:
    name: str
    motto: str
    accept_hours: float
    resolve_days: float
    danger_words: tuple[str, ...]


@dataclass(frozen=True)
class Taxonomy:
    categories: dict[str, tuple[str, ...]]  # category name -> allowed department codes
    departments: dict[str, DepartmentSpec]
    urgencies: dict[str, UrgencySpec]  # most urgent first

    def allows(self, category: str, department: str) -> bool:
        return department in self.categories.get(category, ())

    def default_category(self, department: str) -> str | None:
        for category, departments in self.categories.items():
            if department in departments:
                return category
        return None

    @property
    def most_urgent(self) -> str:
        return next(iter(self.urgencies))


@functools.cache
def load_taxonomy(path: Path = TAXONOMY_PATH) -> Taxonomy:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    departments = {
        d["code"]: DepartmentSpec(d["code"], d["name"], tuple(d.get("duties", ()))) for d in data["departments"]
    }
    categories = {c["name"]: tuple(c["departments"]) for c in data["categories"]}
    for name, codes in categories.items():
        unknown = set(codes) - set(departments)
        if unknown:
            raise ValueError(f"taxonomy: category {name} names unknown departments {sorted(unknown)}")
    urgencies = {
        u["name"]: UrgencySpec(
            u["name"], u["motto"], float(u["accept_hours"]), float(u["resolve_days"]), tuple(u.get("danger_words", ()))
        )
        for u in data["urgencies"]
    }
    return Taxonomy(categories, departments, urgencies)
