"""The read side: order lists with filters and cursor pagination, the dispatch queue, one order's detail.

Scope is OrderService.can_see's rule (orders/scope.py) as a database filter, so a page never loads rows its reader
may not see. Pagination is keyset on the primary key (newest first for lists, oldest first for the queue): a page is
one indexed query, whatever the table's size, and rows arriving meanwhile never shift a page.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from orders import models, scope
from orders.clock import SHANGHAI
from orders.errors import InvalidInput, NotFound
from orders.lifecycle import OPEN_STATES, Action, Role, State
from orders.outbox_kinds import told_resident
from orders.privacy import is_recorded_access
from orders.services import Actor, OrderService

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
QUEUE_STATES = scope.DISPATCH_QUEUE_STATES
DEADLINE_STATES = (State.DISPATCHED, State.ACCEPTED, State.REOPENED)  # the open orders the sweep watches
UNACCEPTED_STATES = (State.DISPATCHED, State.REOPENED)
_CURSOR_PREFIX = "o1:"


@dataclass(frozen=True)
class OrderFilters:
    states: tuple[State, ...] = ()
    category: str | None = None
    department: str | None = None  # department code
    grid: str | None = None  # grid code
    overdue: bool | None = None
    since: date | None = None  # submitted on or after this local (Shanghai) day
    until: date | None = None  # submitted on or before this local day
    text: str | None = None  # in the request text or the order number
    resident_id: int | None = None
    extension_pending: bool | None = None  # a department's request for more time awaits a supervisor
    # 即将超期: not overdue yet, and the deadline it works against falls inside this window (now, now + warning):
    # the accept deadline while nobody has accepted it, the resolve deadline while it is open
    due_soon: bool | None = None
    due_window: tuple[datetime, datetime] | None = None
    urgent: bool | None = None  # the taxonomy's most urgent level (急难事)
    most_urgent: str = "急难事"


@dataclass(frozen=True)
class ReturnNote:
    """Why a department handed an order back (退单), for whoever routes it again."""

    reason: str | None
    suggested_department: models.Department | None
    suggested_category: str | None
    returned_by: str
    returned_at: datetime


@dataclass
class OrderPage:
    orders: list[models.Order]
    next_cursor: str | None
    returns: dict[int, ReturnNote] = field(default_factory=dict)  # order id -> its last 退单, for returned orders


@dataclass
class OrderDetail:
    order: models.Order
    events: list[models.OrderEvent] = field(default_factory=list)
    ratings: list[models.Rating] = field(default_factory=list)
    media: list[models.Media] = field(default_factory=list)  # its evidence, photos and voice, in arrival order
    # 合并工单 (staff only): open orders likely the same matter [{"number", "score", "distance_m"}], the primary this
    # order follows, the orders that follow it
    similar: list[dict[str, Any]] = field(default_factory=list)
    merged_into: str | None = None
    followers: list[str] = field(default_factory=list)


def encode_cursor(order_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{order_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    value = raw[len(_CURSOR_PREFIX):] if raw.startswith(_CURSOR_PREFIX) else ""
    if not value.isdigit() or len(value) > 12:
        raise InvalidInput("翻页参数 cursor 无效,请从第一页重新加载", field="cursor")
    return int(value)


def scoped(actor: Actor) -> QuerySet[models.Order]:
    """The orders `actor` may see, as a query (the same rule as OrderService.can_see: orders/scope.py)."""
    return scope.visible(actor)


def _local_day_start(day: date) -> datetime:
    # In UTC: SQLite compares the stored timestamps as text, so the bound must be written the way they are.
    return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(timezone.utc)


def _filtered(query: QuerySet[models.Order], filters: OrderFilters) -> QuerySet[models.Order]:
    if filters.states:
        query = query.filter(state__in=[str(state) for state in filters.states])
    if filters.category:
        query = query.filter(category=filters.category)
    if filters.department:
        query = query.filter(department__code=filters.department)
    if filters.grid:
        query = query.filter(grid__code=filters.grid)
    if filters.overdue is not None:
        query = query.filter(overdue=filters.overdue)
    if filters.since:
        query = query.filter(submitted_at__gte=_local_day_start(filters.since))
    if filters.until:
        query = query.filter(submitted_at__lt=_local_day_start(filters.until + timedelta(days=1)))
    if filters.text:
        query = query.filter(Q(text__icontains=filters.text) | Q(number__icontains=filters.text))
    if filters.resident_id is not None:
        query = query.filter(resident_id=filters.resident_id)
    if filters.extension_pending is not None:
        pending = Q(extension_days_requested__isnull=False, state=State.ACCEPTED)
        query = query.filter(pending if filters.extension_pending else ~pending)
    if filters.due_soon is not None:
        if filters.due_window is None:
            raise ValueError("due_soon needs due_window")
        start, end = filters.due_window
        unaccepted = [str(state) for state in UNACCEPTED_STATES]
        soon = Q(overdue=False) & (
            Q(state__in=unaccepted, accept_deadline__gt=start, accept_deadline__lte=end)
            | Q(state__in=[str(state) for state in DEADLINE_STATES], resolve_deadline__gt=start,
                resolve_deadline__lte=end))
        query = query.filter(soon if filters.due_soon else ~soon)
    if filters.urgent is not None:
        query = query.filter(urgency=filters.most_urgent) if filters.urgent else \
            query.exclude(urgency=filters.most_urgent)
    return query


async def list_orders(
    actor: Actor,
    filters: OrderFilters = OrderFilters(),
    *,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    oldest_first: bool = False,
) -> OrderPage:
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidInput("开始日期不能晚于结束日期", field="since")
    limit = max(1, min(limit, MAX_LIMIT))
    query = _filtered(scoped(actor), filters)
    if cursor:
        after = decode_cursor(cursor)
        query = query.filter(id__gt=after) if oldest_first else query.filter(id__lt=after)
    rows = await query.order_by("id" if oldest_first else "-id").limit(limit + 1).select_related("department", "grid")
    more = len(rows) > limit
    rows = rows[:limit]
    return OrderPage(rows, encode_cursor(rows[-1].id) if more and rows else None)


async def dispatch_queue(actor: Actor, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT) -> OrderPage:
    """Orders waiting for a person to route them, oldest first: a grid worker's are their grid's and the
    ungridded ones; supervisors and admins see the whole township's."""
    page = await list_orders(actor, OrderFilters(states=QUEUE_STATES), cursor=cursor, limit=limit, oldest_first=True)
    page.returns = await return_notes([order for order in page.orders if order.state == State.RETURNED])
    return page


async def return_notes(orders: list[models.Order]) -> dict[int, ReturnNote]:
    """The last 退单 of each order: its reason and the department it suggests (two queries for a page)."""
    if not orders:
        return {}
    events = await models.OrderEvent.filter(order_id__in=[order.id for order in orders],
                                            action=Action.RETURN).order_by("id")
    codes = {(event.data or {}).get("suggested_department") for event in events} - {None}
    departments = {d.code: d for d in await models.Department.filter(code__in=codes)} if codes else {}
    return {event.order_id: ReturnNote(
        reason=event.reason, suggested_department=departments.get((event.data or {}).get("suggested_department")),
        suggested_category=(event.data or {}).get("suggested_category"), returned_by=event.actor_name,
        returned_at=event.at) for event in events}  # in id order: the last 退单 of an order is the one kept


async def urgent_unattended(limit: int = DEFAULT_LIMIT) -> list[models.Order]:
    """Open urgent reports that reached nobody when they came in (Order.urgent_unnotified), newest first: every
    staff member sees them when they log in, whatever their scope, until one attends to them."""
    return await models.Order.filter(urgent_unnotified=True, state__in=[str(state) for state in OPEN_STATES]) \
        .order_by("-id").limit(limit).select_related("department", "grid")


async def order_detail(actor: Actor, number: str, now: datetime | None = None, *,
                       record_access: bool = True) -> OrderDetail:
    """One order as `actor` opens it. Staff who read its personal data unmasked (orders.privacy) leave a record
    (`record_access=False`: the same view read again, after opening it changed it)."""
    order = await models.Order.get_or_none(number=number).select_related(
        "department", "grid", "accepted_by", "resident")
    if order is None or not OrderService.can_see(actor, order):
        raise NotFound(f"没有找到工单 {number}")
    if record_access and is_recorded_access(actor, order):
        await models.PersonalDataAccess.create(staff_id=actor.id, order_id=order.id, what="view",
                                               at=now or datetime.now(timezone.utc))
    events = await models.OrderEvent.filter(order_id=order.id).order_by("id")
    ratings = await models.Rating.filter(order_id=order.id).order_by("round")
    media = await models.Media.filter(order_id=order.id).order_by("id")
    detail = OrderDetail(order, list(events), list(ratings), list(media), **await _merge_view(order, actor))
    return for_resident(detail) if actor.role == Role.RESIDENT else detail


async def _merge_view(order: models.Order, actor: Actor) -> dict[str, Any]:
    """合并工单 on the order view: whom it follows, who follows it and (staff only) the similar orders still open."""
    primary = (await models.Order.filter(id=order.merged_into_id).values_list("number", flat=True)
               if order.merged_into_id else [])
    followers = await models.Order.filter(merged_into_id=order.id).order_by("id").values_list("number", flat=True)
    similar = []
    if actor.role != Role.RESIDENT and order.similar:
        numbers = [entry.get("number") for entry in order.similar if isinstance(entry, dict)]
        still_open = set(await models.Order.filter(number__in=numbers, state__in=[str(s) for s in OPEN_STATES])
                         .values_list("number", flat=True))
        similar = [entry for entry in order.similar if isinstance(entry, dict) and entry.get("number") in still_open]
    return {"similar": similar, "merged_into": primary[0] if primary else None, "followers": list(followers)}


def for_resident(detail: OrderDetail) -> OrderDetail:
    """The order as its resident sees it: a department's internal progress notes (not notify_resident) and the
    photos only they carry are left out."""
    shown = [event for event in detail.events if told_resident(event.action, event.data)]
    hidden = [event for event in detail.events if not told_resident(event.action, event.data)]
    if not hidden:
        return detail

    def photos(events: list[models.OrderEvent]) -> set[int]:
        return {int(media_id) for event in events for media_id in (event.data or {}).get("photos", [])}

    internal = photos(hidden) - photos(shown)
    media = [medium for medium in detail.media if medium.id not in internal]
    return replace(detail, events=shown, media=media)
