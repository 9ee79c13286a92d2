"""合并工单's first half: the open orders likely the same matter as a new report, listed on it as `similar`.

Looked for after the intake's commit, never on the reply path: `Intake.submitted` (called once the transaction that
wrote the reports has committed) starts a background task in this worker; the deadline sweep looks again for
reports still without a list (a worker that stopped in between), so every report gets one.

Likely the same matter (config [duplicates]): an open order (not merged) reported at most window_hours before,
at the same place — the same grid, or within distance_m of the report's location — whose text reads alike on the
router's own features (classifiers.similarity: cosine ≥ threshold). At most max_listed, most alike first, each
{"number", "score", "distance_m"} (distance_m: None when one of them has no location). The list is stored on the
order (None: not looked for yet; []: nothing alike); the order view shows the entries that are still open.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise.expressions import Q

from orders import models
from orders.config import DuplicatesSection
from orders.geo import distance_km
from orders.lifecycle import OPEN_STATES
from orders.unit_of_work import UnitOfWork

log = logging.getLogger("sidan.duplicates")

LOOK_AGAIN_AFTER = timedelta(minutes=1)  # the sweep leaves younger reports to the task their intake started
SWEEP_BATCH = 50


def _distance_m(a: models.Order, b: models.Order) -> float | None:
    if None in (a.latitude, a.longitude, b.latitude, b.longitude):
        return None
    return distance_km(float(a.latitude), float(a.longitude), float(b.latitude), float(b.longitude)) * 1000


def same_place(order: models.Order, other: models.Order, rules: DuplicatesSection) -> tuple[bool, float | None]:
    """Whether two reports are of one place (the same grid, or near enough), and their distance in metres."""
    distance = _distance_m(order, other)
    if distance is not None and distance <= rules.distance_m:
        return True, distance
    return order.grid_id is not None and order.grid_id == other.grid_id, distance


def pick_similar(order: models.Order, candidates: Sequence[models.Order], scores: Sequence[float],
                 rules: DuplicatesSection) -> list[dict[str, Any]]:
    """Pure: the candidates that are the same matter, most alike first, at most rules.max_listed."""
    found = []
    for other, score in zip(candidates, scores, strict=True):
        near, distance = same_place(order, other, rules)
        if near and score >= rules.threshold:
            found.append({"number": other.number, "score": round(float(score), 3),
                          "distance_m": None if distance is None else round(distance)})
    found.sort(key=lambda entry: (-entry["score"], entry["number"]))
    return found[:rules.max_listed]


class Duplicates(UnitOfWork):
    # set by OrderService.__init__
    classifier: Any
    _similarity: Any
    _similar_tasks: set[asyncio.Task]

    @property
    def similarity(self) -> Any:
        """The worker's TextSimilarity (given to OrderService), else made once from the router (None for a classifier
        without features: tests' fakes)."""
        if self._similarity is None and getattr(self.classifier, "featurizer", None) is not None:
            from classifiers.similarity import TextSimilarity

            self._similarity = TextSimilarity(self.classifier)
        return self._similarity

    def look_for_similar(self, orders: Iterable[models.Order]) -> None:
        """After the intake's commit: find the orders' similar ones in a background task of this worker."""
        ids = [order.id for order in orders]
        if not ids or self.similarity is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._find_logged(ids))
        except RuntimeError:  # no loop (a synchronous caller): the sweep finds them
            return
        self._similar_tasks.add(task)
        task.add_done_callback(self._similar_tasks.discard)

    async def similar_settled(self) -> None:
        """Until the background look-ups started so far are done (tests, shutdown)."""
        while self._similar_tasks:
            await asyncio.gather(*list(self._similar_tasks), return_exceptions=True)

    async def _find_logged(self, ids: list[int]) -> None:
        try:
            await self.find_similar(ids)
        except Exception:  # noqa: BLE001 - the sweep looks again; the reports are written either way
            log.exception("looking for similar orders of %s failed", ids)

    async def find_similar(self, ids: Iterable[int]) -> int:
        """Look for each order's similar ones (those not looked for yet) and store the lists; how many were stored."""
        if self.similarity is None:
            return 0
        rules = self.settings.duplicates
        stored = 0
        for order in await models.Order.filter(id__in=list(ids), similar__isnull=True).order_by("id"):
            found = await self._similar_of(order, rules)
            stored += await models.Order.filter(id=order.id, similar__isnull=True).update(similar=found)
        return stored

    async def find_pending_similar(self, now: datetime) -> int:
        """The sweep's part: recent open reports whose look-up never ran (their worker stopped)."""
        if self.similarity is None:
            return 0
        now = now.astimezone(timezone.utc)
        window = timedelta(hours=self.settings.duplicates.window_hours)
        ids = await (models.Order.filter(similar__isnull=True, state__in=[str(s) for s in OPEN_STATES],
                                         submitted_at__gte=now - window, submitted_at__lte=now - LOOK_AGAIN_AFTER)
                     .order_by("id").limit(SWEEP_BATCH).values_list("id", flat=True))
        return await self.find_similar(ids) if ids else 0

    async def _similar_of(self, order: models.Order, rules: DuplicatesSection) -> list[dict[str, Any]]:
        if order.grid_id is None and order.latitude is None:
            return []  # no place to compare
        submitted = order.submitted_at.astimezone(timezone.utc)
        place = Q(grid_id=order.grid_id) if order.grid_id is not None else Q(id__lt=0)
        if order.latitude is not None:
            place = Q(place, Q(latitude__isnull=False), join_type=Q.OR)
        candidates = list(await models.Order.filter(
            place, state__in=[str(s) for s in OPEN_STATES], id__not=order.id,
            submitted_at__gte=submitted - timedelta(hours=rules.window_hours), submitted_at__lte=submitted,
        ).order_by("-submitted_at").limit(500))
        candidates = [other for other in candidates if same_place(order, other, rules)[0]]
        if not candidates:
            return []
        scores = self.similarity.scores(order.text, [other.text for other in candidates])
        return pick_similar(order, candidates, scores, rules)
