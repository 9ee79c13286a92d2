"""热点诉求: several reports of one matter from one village within hours are one incident, not so many chores.

Pure: the reports come in (orders/stats/hotspots.py reads them), groups of them go out. Two reports are one matter
when they come from the same village and read alike; how alike is a function the caller passes (`Similarity`: in
production classifiers.similarity.TextSimilarity, the router's own features), so the grouping is tested without a
model.

The grouping is average linkage: groups join while the average likeness of all pairs across them is at least the
threshold. Single linkage would chain a lamp report to a rubbish report through one that mentions both "好几天";
the average asks every report of a group to read like the others on the whole.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform


class Similarity(Protocol):
    """How alike texts read (classifiers.similarity.TextSimilarity satisfies it)."""

    def pairwise(self, texts: Sequence[str]) -> np.ndarray: ...

    def top_terms(self, texts: Sequence[str], n: int = 5) -> list[str]: ...


@dataclass(frozen=True)
class Report:
    """One recent order, placed in its village."""

    order_id: int
    number: str
    village: str
    text: str
    at: datetime  # submitted


@dataclass
class Hotspot:
    village: str
    reports: list[Report]  # oldest first
    terms: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.reports)

    @property
    def numbers(self) -> list[str]:
        return [report.number for report in self.reports]

    @property
    def order_ids(self) -> list[int]:
        return [report.order_id for report in self.reports]

    @property
    def first_at(self) -> datetime:
        return self.reports[0].at

    @property
    def last_at(self) -> datetime:
        return self.reports[-1].at


def groups(texts: Sequence[str], pairwise: Callable[[Sequence[str]], np.ndarray], threshold: float) -> list[list[int]]:
    """The indexes of texts in groups of one matter (average linkage at `threshold`), each group in index order,
    groups in the order of their first member. A text alike to no other is a group of its own."""
    n = len(texts)
    if n < 2:
        return [[i] for i in range(n)]
    likeness = np.asarray(pairwise(texts), dtype=float)
    if likeness.shape != (n, n):
        raise ValueError(f"pairwise gave a {likeness.shape} matrix for {n} texts")
    distance = 1.0 - np.clip((likeness + likeness.T) / 2, 0.0, 1.0)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - threshold + 1e-9, criterion="distance")
    members: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(int(label), []).append(index)
    return sorted(members.values(), key=lambda group: group[0])


def find_hotspots(reports: Sequence[Report], similarity: Similarity, *, threshold: float, min_reports: int,
                  top_terms: int = 5) -> list[Hotspot]:
    """The hot spots among reports: per village, the groups of one matter with at least min_reports reports;
    the largest first, then the most recent."""
    by_village: dict[str, list[Report]] = {}
    for report in sorted(reports, key=lambda r: (r.at, r.order_id)):
        by_village.setdefault(report.village, []).append(report)
    found: list[Hotspot] = []
    for village, placed in by_village.items():
        if len(placed) < min_reports:
            continue
        for group in groups([report.text for report in placed], similarity.pairwise, threshold):
            if len(group) >= min_reports:
                members = [placed[i] for i in group]
                found.append(Hotspot(village, members, similarity.top_terms([r.text for r in members], top_terms)))
    found.sort(key=lambda spot: (-spot.count, -spot.last_at.timestamp(), spot.village))
    return found


def place_of(text: str, grid_village: str | None, villages: Sequence[str]) -> str | None:
    """Where a report is: its grid's village, else a village its text names (the longest name that it contains:
    "新滩村二组" is 新滩村 even when a village is called 新滩), else nowhere (it joins no hot spot)."""
    if grid_village:
        return grid_village
    for name in sorted(villages, key=len, reverse=True):
        if name and name in text:
            return name
    return None
