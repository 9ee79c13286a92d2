"""Demo order histories over months, planned: for the dashboard demo and the benchmarks.

Each order gets a *plan*: its request (a labelled text from corpus/requests), where it happened, and a
timeline of steps (submit, dispatch, return, accept, progress, extension, overdue escalation, resolve, rating,
reopen, close, cancel) drawn from a seeded random generator. Steps later than `now` do not happen yet, so the
newest orders are left in progress, as in a live township. api/demo/history.py writes the plans.
"""
from __future__ import annotations

import csv
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from api.demo.township import demo_township
from orders.clock import SHANGHAI
from orders.config import REPO_ROOT, Settings
from orders.deadlines import DeadlinePolicy
from orders.taxonomy import Taxonomy, load_taxonomy

# Departments differ: how quickly they accept (a factor on the delay) and how residents rate them (a shift).
DEPARTMENT_HABITS = {
    "jianshe": (1.3, -0.2), "paichusuo": (0.6, 0.1), "anjian": (0.5, 0.2), "minzheng": (1.0, 0.0),
    "sifasuo": (1.2, -0.3), "huanbao": (1.5, -0.2), "zhifa": (1.4, -0.4), "nongye": (1.0, 0.1),
}
HOUR_WEIGHTS = {7: 2, 8: 6, 9: 10, 10: 10, 11: 8, 12: 4, 13: 4, 14: 7, 15: 8, 16: 8, 17: 6, 18: 4, 19: 4, 20: 3,
                21: 2, 22: 1, 23: 1, 0: 0.3, 6: 1}


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    department: str
    urgency: str


@dataclass
class Step:
    at: datetime
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Plan:
    example: Example
    resident: str  # openid
    grid: str | None  # grid code
    latitude: float | None
    longitude: float | None
    prediction: dict[str, Any]
    steps: list[Step]

    @property
    def submitted_at(self) -> datetime:
        return self.steps[0].at


def load_examples(taxonomy: Taxonomy | None = None) -> list[Example]:
    taxonomy = taxonomy or load_taxonomy()
    examples = []
    for path in sorted((REPO_ROOT / "corpus" / "requests").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text = (row.get("text") or "").strip()
                category, department, urgency = row.get("category"), row.get("department"), row.get("urgency")
                if (text and taxonomy.allows(category or "", department or "")
                        and urgency in taxonomy.urgencies):
                    examples.append(Example(text, category, department, urgency))
    if not examples:
        raise RuntimeError("corpus/requests has no labelled requests to build a demo history from")
    return examples


# ------------------------------------------------------------------------------------------ planning
def resolve_deadline_for(policy: DeadlinePolicy, start: datetime, urgency: str, category: str | None,
                         department: str | None) -> datetime:
    """As the use cases set it: disputes (平安建设 at 司法所) get the mediation deadline."""
    if getattr(policy, "is_dispute", None) and policy.is_dispute(category, department):
        return policy.resolve_deadline(start, urgency, dispute=True)
    return policy.resolve_deadline(start, urgency)


@dataclass(frozen=True)
class DemoGrid:
    """A grid of the demo township file, to place made-up reports inside it."""

    code: str
    shape: Any  # shapely Polygon
    center_lat: float
    center_lng: float
    half_lat: float
    half_lng: float

    @classmethod
    def of(cls, grid) -> DemoGrid:
        from shapely.geometry import Polygon

        shape = Polygon(grid.polygon)
        min_lng, min_lat, max_lng, max_lat = shape.bounds
        center_lng, center_lat = grid.center or ((min_lng + max_lng) / 2, (min_lat + max_lat) / 2)
        half_lng = max(center_lng - min_lng, max_lng - center_lng)
        half_lat = max(center_lat - min_lat, max_lat - center_lat)
        return cls(grid.code, shape, center_lat, center_lng, half_lat, half_lng)

    def point(self, rng: random.Random) -> tuple[float, float]:
        """(lat, lng) drawn around the centre until it falls inside (at once for a square around its centre)."""
        import shapely

        while True:
            lat = round(self.center_lat + rng.uniform(-0.9, 0.9) * self.half_lat, 6)
            lng = round(self.center_lng + rng.uniform(-0.9, 0.9) * self.half_lng, 6)
            if shapely.intersects_xy(self.shape, lng, lat):
                return lat, lng


class Planner:
    """Draws plans. Deadlines come from the same DeadlinePolicy the use cases use."""

    def __init__(self, settings: Settings, seed: int, taxonomy: Taxonomy | None = None) -> None:
        self.settings = settings
        self.rng = random.Random(seed)
        self.seed = seed
        self.taxonomy = taxonomy or load_taxonomy()
        self.policy = DeadlinePolicy(settings, self.taxonomy)
        self.examples = load_examples(self.taxonomy)
        self.departments = sorted(self.taxonomy.departments)
        self.threshold = settings.classifier.confidence_threshold
        self.grids = [DemoGrid.of(grid) for grid in demo_township().grids if grid.polygon]

    def submission_times(self, n: int, first: datetime, end: datetime) -> list[datetime]:
        """n moments in [first, end): fewer on weekends, mostly in office hours (local time), sorted."""
        rng = self.rng
        days = max(1, math.ceil((end - first).total_seconds() / 86400))
        start_day = first.astimezone(SHANGHAI).date()
        weights = [0.6 if (start_day + timedelta(days=i)).weekday() >= 5 else 1.0 for i in range(days)]
        hours, hour_weights = zip(*HOUR_WEIGHTS.items())
        moments = []
        while len(moments) < n:
            day = start_day + timedelta(days=rng.choices(range(days), weights)[0])
            hour = rng.choices(hours, hour_weights)[0]
            moment = datetime(day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60),
                              tzinfo=SHANGHAI).astimezone(timezone.utc)
            if first <= moment < end:
                moments.append(moment)
        return sorted(moments)

    def plan(self, submitted_at: datetime, residents: int) -> Plan:
        rng = self.rng
        example = rng.choice(self.examples)
        resident = f"demo-resident-{self.seed}-{rng.randrange(residents)}"
        grid = lat = lng = None
        if rng.random() < 0.85:
            place = rng.choice(self.grids)
            grid = place.code
            lat, lng = place.point(rng)
        urgency = example.urgency
        draw = rng.random()
        if draw < 0.72:  # the router is sure and right
            prediction = {"category": example.category, "department": example.department,
                          "confidence": round(rng.uniform(max(self.threshold, 0.62), 0.98), 4)}
        elif draw < 0.80:  # sure and wrong: the department will return it
            wrong = rng.choice([code for code in self.departments if code != example.department])
            prediction = {"category": self.taxonomy.default_category(wrong), "department": wrong,
                          "confidence": round(rng.uniform(max(self.threshold, 0.62), 0.9), 4)}
        else:  # unsure: the grid worker routes it
            prediction = {"category": example.category, "department": example.department,
                          "confidence": round(rng.uniform(0.15, min(self.threshold, 0.6) - 0.01), 4)}
        prediction["urgency"] = urgency
        prediction["danger"] = urgency == self.taxonomy.most_urgent
        confident = prediction["confidence"] >= self.threshold
        steps = [Step(submitted_at, "submit")]
        now = submitted_at
        department, category = (prediction["department"], prediction["category"]) if confident else (None, None)
        dispatched_at = submitted_at if confident else None

        def later(minutes: float) -> datetime:
            nonlocal now
            now = now + timedelta(minutes=max(1.0, minutes))
            return now

        if rng.random() < 0.03:  # the resident cancels before anyone accepts
            steps.append(Step(later(rng.uniform(5, 50)), "cancel"))
            return Plan(example, resident, grid, lat, lng, prediction, steps)
        if confident and department != example.department:
            steps.append(Step(later(rng.uniform(10, 90)), "return",
                              {"department": department, "suggest": example.department,
                               "category": example.category}))
            department = None
        if department is None:
            dispatched_at = later(rng.lognormvariate(math.log(40), 0.8))
            department, category = example.department, example.category
            steps.append(Step(dispatched_at, "dispatch", {"department": department, "category": category}))
        speed, mood = DEPARTMENT_HABITS.get(department, (1.0, 0.0))
        spec_hours = self.taxonomy.urgencies[urgency].accept_hours
        round_start = dispatched_at
        for round_number in range(self.settings.survey.max_reopens + 1):
            resolve_deadline = resolve_deadline_for(self.policy, round_start, urgency, category, department)
            if round_number == 0 and rng.random() < 0.12 * speed:
                delay = rng.uniform(1.05, 8) * spec_hours * 60  # late: past the acceptance deadline
            else:
                delay = min(rng.lognormvariate(math.log(18 * speed), 0.6), spec_hours * 60 * 0.95)
            now = round_start
            steps.append(Step(later(delay), "accept", {"department": department}))
            accepted_at = now
            if rng.random() < 0.5:
                steps.append(Step(later(rng.uniform(30, 600)), "progress", {"department": department}))
            span = (resolve_deadline - accepted_at).total_seconds() / 60
            if rng.random() < 0.04 and span > 240:
                days = rng.randint(3, 7)
                steps.append(Step(later(span * 0.5), "request_extension", {"department": department, "days": days}))
                steps.append(Step(later(rng.uniform(30, 240)), "extend", {"days": days}))
                resolve_deadline = self.policy.add_days(resolve_deadline, days)
            span = (resolve_deadline - accepted_at).total_seconds() / 60
            late = rng.random() < 0.13 * speed
            fraction = rng.uniform(1.05, 1.6) if late else rng.uniform(0.08, 0.9)
            resolve_at = max(now + timedelta(minutes=20), accepted_at + timedelta(minutes=span * fraction))
            if resolve_at > resolve_deadline:  # the deadline sweep flags it and raises the level first
                escalate_at = max(now + timedelta(minutes=1), resolve_deadline + timedelta(minutes=30))
                steps.append(Step(escalate_at, "escalate_overdue"))
                resolve_at = max(resolve_at, escalate_at + timedelta(minutes=10))
            now = max(now + timedelta(minutes=2), resolve_at)
            steps.append(Step(now, "resolve", {"department": department}))
            if rng.random() < (0.68 if round_number == 0 else 0.75):
                score = self._score(mood + (0.8 if round_number else 0.0))
                steps.append(Step(later(rng.uniform(30, 3 * 24 * 60)), "rate", {"score": score}))
                if score >= 3:
                    break
                if round_number >= self.settings.survey.max_reopens:
                    break  # the rating escalates it to the township instead of reopening
                round_start = now  # reopened at the moment of the rating
                continue
            steps.append(Step(later(self.settings.survey.window_days * 24 * 60), "close_unrated"))
            break
        return Plan(example, resident, grid, lat, lng, prediction, steps)

    def _score(self, shift: float) -> int:
        weights = [0.05, 0.08, 0.10, 0.27, 0.50]  # 1..5
        if shift:
            weights = [max(0.01, w * math.exp(shift * (index - 2) * 0.5)) for index, w in enumerate(weights)]
        return self.rng.choices([1, 2, 3, 4, 5], weights)[0]


def make_plans(settings: Settings, n: int, seed: int, first: datetime, end: datetime) -> list[Plan]:
    planner = Planner(settings, seed)
    residents = max(20, n // 3)
    return [planner.plan(moment, residents) for moment in planner.submission_times(n, first, end)]


def describe(plans: list[Plan]) -> dict[str, int]:
    """How many plans contain each kind of step (for tests and curiosity)."""
    return dict(Counter(step.kind for plan in plans for step in plan.steps))
