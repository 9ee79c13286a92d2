"""Demo order histories over months, written: the plans of api/demo/plans.py, for the dashboard demo and the
benchmarks.

Two ways to write the plans, with the same result on the order columns the statistics read:
- `replay`: through the real use cases (OrderService) with a moving clock: events, outbox rows, corrections,
  everything. Seconds for a few thousand orders.
- `bulk`: the final rows computed here and inserted many at a time (COPY on PostgreSQL): orders, ratings and
  residents only, no audit trail. For 100k–1M orders in benchmarks.
A test replays and bulk-writes the same plans and compares the rows.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise import connections

from api.demo.plans import Plan, make_plans, resolve_deadline_for
from orders import models
from orders.clock import SHANGHAI, FrozenClock
from orders.config import Settings
from orders.deadlines import DeadlinePolicy
from orders.lifecycle import State
from orders.taxonomy import Taxonomy, load_taxonomy
from orders.township import read_identity

REPLAY_LIMIT = 2000  # above this, `auto` writes in bulk
DEFAULT_REPLAY_DAYS = 180
BULK_ORDERS_PER_DAY = 300  # bulk histories grow backwards in time at this density (a county-sized load)
MAX_ESCALATION = 2


# ------------------------------------------------------------------------------------------ replay
class _ScriptedClassifier:
    """Says what the plan says the router said."""

    def __init__(self) -> None:
        self.next: dict[str, Any] | None = None

    def predict(self, text: str):
        from types import SimpleNamespace

        p = self.next or {}
        return SimpleNamespace(category=p.get("category"), department=p.get("department"),
                               urgency=p.get("urgency", "操心事"), confidence=p.get("confidence", 0.0),
                               terms=(), danger=p.get("danger", False))


async def replay(settings: Settings, plans: list[Plan], now: datetime) -> int:
    from orders.services import Actor, OrderService

    classifier = _ScriptedClassifier()
    clock = FrozenClock(now)
    service = OrderService(settings, classifier, clock=clock)
    staff = {row.openid: Actor.of_staff(row) for row in await models.Staff.filter(active=True, openid__isnull=False)}
    grid_workers = {row.grid_id: Actor.of_staff(row) for row in await models.Staff.filter(role="grid_worker",
                                                                                          active=True)}
    grid_ids = {grid.code: grid.id for grid in await models.Grid.all()}
    supervisor = staff.get("demo-supervisor") or Actor.system("督办")
    residents: dict[str, Actor] = {}
    written = []

    def department_actor(code: str) -> Actor:
        return staff.get(f"demo-dept_staff-{code}") or Actor.system()

    async def resident_actor(openid: str) -> Actor:
        if openid not in residents:
            residents[openid] = Actor.of_resident(await models.Resident.get(openid=openid))
        return residents[openid]

    for plan in plans:
        number = None
        for step in plan.steps:
            if step.at > now:
                break
            clock.set(step.at)
            kind, data = step.kind, step.data
            if kind == "submit":
                classifier.next = plan.prediction
                location = ({"latitude": plan.latitude, "longitude": plan.longitude, "label": None}
                            if plan.latitude is not None else None)
                number = (await service.submit(openid=plan.resident, text=plan.example.text, location=location)
                          ).order.number
                written.append(number)
            elif kind == "dispatch":
                worker = grid_workers.get(grid_ids.get(plan.grid)) or staff.get("demo-grid_worker") or supervisor
                await service.dispatch(number, worker, data["department"], data["category"])
            elif kind == "return":
                await service.return_(number, department_actor(data["department"]), "不属于本部门职责,请改派",
                                      data["category"], data["suggest"])
            elif kind == "accept":
                await service.accept(number, department_actor(data["department"]))
            elif kind == "progress":
                await service.progress(number, department_actor(data["department"]), "已到现场核实,正在办理")
            elif kind == "request_extension":
                await service.request_extension(number, department_actor(data["department"]), data["days"],
                                                "需协调多个部门,申请延期")
            elif kind == "extend":
                await service.extend(number, supervisor, data["days"], "同意延期")
            elif kind == "escalate_overdue":
                await service.escalate(number, Actor.system("超期督办"), "超过办结时限未办结", overdue=True)
            elif kind == "resolve":
                await service.resolve(number, department_actor(data["department"]), "已办理完毕,请评价")
            elif kind == "rate":
                await service.rate(number, await resident_actor(plan.resident), data["score"])
            elif kind == "close_unrated":
                await service.close_unrated(number)
            elif kind == "cancel":
                await service.cancel(number, await resident_actor(plan.resident), "问题已自行解决")
    if written:
        # History, not news: nobody should be messaged today about a request from last spring.
        await models.Outbox.filter(status="pending", order__number__in=written).update(status="sent")
    return len(written)


# ------------------------------------------------------------------------------------------ bulk
ORDER_COLUMNS = (
    "id", "number", "resident_id", "text", "normalized_text", "photos", "latitude", "longitude", "location_label",
    "grid_id", "category", "department_id", "urgency", "confidence", "predicted_category", "predicted_department",
    "auto_dispatched", "routing_corrected", "state", "escalation_level", "overdue", "reopen_count",
    "accept_deadline", "resolve_deadline", "accepted_within_deadline", "accepted_by_id", "extension_days_requested",
    "result", "submitted_at", "dispatched_at", "accepted_at", "resolved_at", "rated_at", "returned_at",
    "reopened_at", "closed_at", "updated_at", "version",
)
RATING_COLUMNS = ("id", "order_id", "round", "score", "resolved", "comment", "at")


class Folder:
    """Applies a plan's steps to a row the way the use cases change an order (the replay test checks it)."""

    def __init__(self, settings: Settings, taxonomy: Taxonomy | None = None) -> None:
        self.settings = settings
        self.taxonomy = taxonomy or load_taxonomy()
        self.policy = DeadlinePolicy(settings, self.taxonomy)

    def _deadlines(self, row: dict[str, Any], start: datetime, department_code: str | None) -> None:
        row["accept_deadline"] = self.policy.accept_deadline(start, row["urgency"])
        row["resolve_deadline"] = resolve_deadline_for(self.policy, start, row["urgency"], row["category"],
                                                       department_code)

    def fold(self, plan: Plan, now: datetime, department_ids: dict[str, int], staff_ids: dict[str, int],
             grid_ids: dict[str, int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        p = plan.prediction
        taxonomy = self.taxonomy
        ratings: list[dict[str, Any]] = []
        row: dict[str, Any] = dict.fromkeys(ORDER_COLUMNS)
        codes = {value: key for key, value in department_ids.items()}
        for step in plan.steps:
            if step.at > now:
                break
            t, kind, data = step.at, step.kind, step.data
            row["updated_at"] = t
            row["version"] = (row["version"] or 0) + 1
            if kind == "submit":
                row.update(text=plan.example.text, normalized_text=plan.example.text, photos="[]",
                           latitude=plan.latitude, longitude=plan.longitude,
                           grid_id=grid_ids.get(plan.grid) if plan.grid else None,
                           category=p["category"] if p["category"] in taxonomy.categories else None,
                           urgency=p["urgency"], confidence=round(float(p["confidence"]), 4),
                           predicted_category=p["category"], predicted_department=p["department"],
                           auto_dispatched=False, routing_corrected=False, state=State.SUBMITTED.value,
                           escalation_level=0, overdue=False, reopen_count=0, submitted_at=t, version=0)
                confident = (p["department"] in taxonomy.departments and p["category"] in taxonomy.categories
                             and taxonomy.allows(p["category"], p["department"])
                             and p["confidence"] >= self.settings.classifier.confidence_threshold)
                if confident:
                    row.update(department_id=department_ids[p["department"]], category=p["category"],
                               dispatched_at=t, overdue=False, auto_dispatched=True, state=State.DISPATCHED.value,
                               version=1)
                    self._deadlines(row, t, p["department"])
            elif kind == "dispatch":
                corrected = (data["department"], data["category"]) != (row["predicted_department"],
                                                                      row["predicted_category"])
                row.update(department_id=department_ids[data["department"]], category=data["category"],
                           dispatched_at=t, overdue=False, state=State.DISPATCHED.value)
                self._deadlines(row, t, data["department"])
                if corrected and row["auto_dispatched"]:
                    row["routing_corrected"] = True
            elif kind == "return":
                row.update(department_id=None, returned_at=t, accepted_by_id=None, state=State.RETURNED.value)
                if row["auto_dispatched"]:
                    row["routing_corrected"] = True
            elif kind == "accept":
                if row["state"] == State.DISPATCHED.value:
                    row["accepted_within_deadline"] = row["accept_deadline"] is None or t <= row["accept_deadline"]
                row.update(accepted_at=t, accepted_by_id=staff_ids.get(f"demo-dept_staff-{data['department']}"),
                           state=State.ACCEPTED.value)
            elif kind == "request_extension":
                row["extension_days_requested"] = data["days"]
            elif kind == "extend":
                start = max(row["resolve_deadline"], t) if row["overdue"] else row["resolve_deadline"]
                row.update(resolve_deadline=self.policy.add_days(start, data["days"]), extension_days_requested=None,
                           overdue=bool(row["accept_deadline"] and not row["accepted_at"]
                                        and row["accept_deadline"] < t))
            elif kind == "escalate_overdue":
                row.update(escalation_level=min(MAX_ESCALATION, row["escalation_level"] + 1), overdue=True)
            elif kind == "resolve":
                row.update(resolved_at=t, result="已办理完毕,请评价", overdue=False, extension_days_requested=None,
                           state=State.RESOLVED.value)
            elif kind == "rate":
                score = data["score"]
                resolved = score >= 3
                ratings.append({"round": row["reopen_count"], "score": score, "resolved": resolved, "at": t})
                row.update(rated_at=t, state=State.VERIFIED.value)
                if score <= 2 or not resolved:
                    row["version"] += 1
                    if row["reopen_count"] < self.settings.survey.max_reopens:
                        row.update(reopen_count=row["reopen_count"] + 1, reopened_at=t, resolved_at=None,
                                   rated_at=None, accepted_at=None, closed_at=None, overdue=False,
                                   state=State.REOPENED.value)
                        self._deadlines(row, t, codes.get(row["department_id"]))
                    else:
                        row["escalation_level"] = max(row["escalation_level"], MAX_ESCALATION)
            elif kind == "close_unrated":
                row.update(closed_at=t, state=State.CLOSED_UNRATED.value)
            elif kind == "cancel":
                row.update(closed_at=t, state=State.CANCELLED.value)
        return row, ratings


async def bulk_write(settings: Settings, plans: list[Plan], now: datetime) -> int:
    """The plans' final rows, inserted in batches (COPY on PostgreSQL). Orders, ratings and residents only."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    department_ids = {d.code: d.id for d in await models.Department.all()}
    staff_ids = {s.openid: s.id for s in await models.Staff.filter(openid__isnull=False)}
    grid_ids = {g.code: g.id for g in await models.Grid.all()}
    folder = Folder(settings)

    async def next_id(table: str) -> int:
        rows = await conn.execute_query_dict(f"SELECT COALESCE(MAX(id), 0) AS m FROM {table}")
        return int(rows[0]["m"]) + 1

    # Residents: the ones the plans name that do not exist yet.
    wanted = sorted({plan.resident for plan in plans if plan.steps[0].at <= now})
    existing = (set(await models.Resident.filter(openid__in=wanted).values_list("openid", flat=True))
                if wanted else set())
    resident_id = await next_id("resident")
    new_residents = []
    for openid in wanted:
        if openid not in existing:
            new_residents.append((resident_id, openid, True, plans[0].submitted_at))
            resident_id += 1
    await _insert(conn, postgres, "resident", ("id", "openid", "subscribed", "created_at"), new_residents)
    resident_ids = dict(await models.Resident.filter(openid__in=wanted).values_list("openid", "id")) if wanted else {}

    counters = {row["day"]: int(row["value"]) for row in
                await conn.execute_query_dict("SELECT day, value FROM daily_counter")}
    order_id, rating_id = await next_id("orders"), await next_id("rating")
    prefix = (await read_identity(settings, conn)).order_prefix
    written = 0
    batch_orders: list[tuple] = []
    batch_ratings: list[tuple] = []
    for plan in plans:
        if plan.submitted_at > now:
            continue
        row, ratings = folder.fold(plan, now, department_ids, staff_ids, grid_ids)
        day = plan.submitted_at.astimezone(SHANGHAI).strftime("%Y%m%d")
        counters[day] = counters.get(day, 0) + 1
        row.update(id=order_id, number=f"{prefix}{day}-{counters[day]:04d}", resident_id=resident_ids[plan.resident])
        batch_orders.append(tuple(row[column] for column in ORDER_COLUMNS))
        for rating in ratings:
            batch_ratings.append((rating_id, order_id, rating["round"], rating["score"], rating["resolved"], None,
                                  rating["at"]))
            rating_id += 1
        order_id += 1
        written += 1
        if len(batch_orders) >= 20000:
            await _insert(conn, postgres, "orders", ORDER_COLUMNS, batch_orders)
            await _insert(conn, postgres, "rating", RATING_COLUMNS, batch_ratings)
            batch_orders, batch_ratings = [], []
    await _insert(conn, postgres, "orders", ORDER_COLUMNS, batch_orders)
    await _insert(conn, postgres, "rating", RATING_COLUMNS, batch_ratings)
    placeholder = "($1, $2)" if postgres else "(?, ?)"
    for day, value in counters.items():
        await conn.execute_query(f"INSERT INTO daily_counter (day, value) VALUES {placeholder} "
                                 "ON CONFLICT (day) DO UPDATE SET value = excluded.value", [day, value])
    if postgres:  # explicit ids were written: move the sequences past them
        for table in ("orders", "rating", "resident"):
            await conn.execute_query(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                     f"(SELECT COALESCE(MAX(id), 1) FROM {table}))")
    return written


async def _insert(conn, postgres: bool, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    if not rows:
        return
    if postgres:
        async with conn.acquire_connection() as raw:
            await raw.copy_records_to_table(table, records=rows, columns=list(columns))
        return
    sqlite_rows = [tuple(_sqlite_value(value) for value in row) for row in rows]
    marks = ", ".join("?" for _ in columns)
    async with conn.acquire_connection() as raw:
        await raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", sqlite_rows)
        await raw.commit()


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat(sep=" ")
    if isinstance(value, bool):
        return int(value)
    return value


# ------------------------------------------------------------------------------------------ the entry point
async def generate_history(
    settings: Settings,
    n_orders: int,
    seed: int,
    *,
    now: datetime | None = None,
    end: datetime | None = None,
    days: float | None = None,
    method: str = "auto",
) -> int:
    """Write `n_orders` orders submitted over `days` days before `end` (default: now), their steps played up
    to `now`. Needs the demo departments, grids and staff (api.demo.township.load_demo_data). Returns the count."""
    if not isinstance(n_orders, int) or n_orders < 0:
        raise ValueError("n_orders must be a non-negative integer")
    if method not in ("auto", "replay", "bulk"):
        raise ValueError("method is auto, replay or bulk")
    if n_orders == 0:
        return 0
    if not await models.Department.exists():
        raise RuntimeError("load the demo departments, grids and staff first (api.demo.township.load_demo_data)")
    now = now or datetime.now(timezone.utc)
    end = min(end or now, now)
    bulk = method == "bulk" or (method == "auto" and n_orders > REPLAY_LIMIT)
    if days is None:
        days = max(DEFAULT_REPLAY_DAYS, n_orders / BULK_ORDERS_PER_DAY) if bulk else DEFAULT_REPLAY_DAYS
    plans = make_plans(settings, n_orders, seed, end - timedelta(days=days), end)
    if bulk:
        return await bulk_write(settings, plans, now)
    conn = connections.get("default")
    if conn.capabilities.dialect != "sqlite":
        return await replay(settings, plans, now)
    # Thousands of small transactions: on SQLite skip the fsync of each (a demo, rebuilt if the machine dies).
    before = (await conn.execute_query_dict("PRAGMA synchronous"))[0]["synchronous"]
    await conn.execute_script("PRAGMA synchronous = OFF")
    try:
        return await replay(settings, plans, now)
    finally:
        await conn.execute_script(f"PRAGMA synchronous = {int(before)}")
