"""The use cases: 点单 submit, 派单 dispatch, 接单 accept, 办单 progress/resolve, 退单 return_, 延期 extend,
验单 rate, 重办 reopen, cancel, close_unrated, 督单 escalate, 不予受理 invalidate, 合并工单 merge; evidence upload and reading.

Each runs in one transaction: it checks the transition table, changes the order with a conditional update
(the version column, so two staff accepting at once cannot both win), writes its OrderEvent and any
Outbox rows in that same transaction. The bot and the API call these; no business rule lives in a door.

OrderService is the one object the doors hold. Its use cases are grouped by the part of the loop they serve, each
group in its own module over one shared unit of work (orders/unit_of_work.py): 点单 and its cancelling in
orders/intake.py; 派单, 退单, 接单 and 办单 in orders/handling.py; 验单 and 重办 in orders/surveys.py; 督单 and 延期
in orders/supervision.py; 不予受理 (closing an order nobody will work) in orders/closing.py; 合并工单 (one matter, several
reports) in orders/merging.py; the evidence (photos, voice) in orders/evidence.py.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from orders import models
from orders.clock import Clock
from orders.closing import Closing
from orders.config import Settings
from orders.deadlines import DeadlinePolicy
from orders.duplicates import Duplicates
from orders.evidence import Evidence
from orders.handling import Handling
from orders.intake import Classifier, DuplicateMessage, Intake, PredictionLike, Report, Submission
from orders.media_store import MediaStore
from orders.merging import Merging
from orders.supervision import MAX_ESCALATION, Supervision
from orders.surveys import Surveys
from orders.taxonomy import Taxonomy, load_taxonomy
from orders.township.identity import IdentityCache
from orders.unit_of_work import Actor

__all__ = [
    "MAX_ESCALATION", "Actor", "Classifier", "DuplicateMessage", "OrderService", "PredictionLike", "Report",
    "Submission",
]


class OrderService(Intake, Handling, Surveys, Supervision, Closing, Merging, Duplicates, Evidence):
    """The one object the doors call: every use case of the loop, over one unit of work."""

    def __init__(
        self,
        settings: Settings,
        classifier: Classifier,
        clock: Clock | None = None,
        taxonomy: Taxonomy | None = None,
        on_submit: Iterable[Callable[[models.Order, Any], None]] = (),
        media_store: MediaStore | None = None,
        similarity: Any = None,
    ) -> None:
        self.settings = settings
        self._media_store = media_store  # None: opened from settings.media.url when first needed
        self.on_submit = list(on_submit)  # observers (metrics); called after the transaction commits
        self.classifier = classifier
        self.clock = clock or Clock()
        self.taxonomy = taxonomy or load_taxonomy()
        self.deadlines = DeadlinePolicy(settings, self.taxonomy)
        self.identity = IdentityCache(settings)  # the township's name and order prefix (file, else config)
        self._departments: tuple[float, dict[str, models.Department], dict[int, models.Department]] | None = None
        # the router's TextSimilarity (orders/duplicates.py): the worker's one, else made from the router when needed
        self._similarity = similarity
        self._similar_tasks = set()
