"""What the resident reads of their orders in the chat: "我的工单" (the latest five) and "查询 <工单号>" (one order's
state, deadline and the last step they may read). A merged order (合并工单) shows its primary's handling."""
from __future__ import annotations

from bot import replies
from bot.delivery import Outcome
from bot.replies import OrderView
from orders import models
from orders.errors import NotFound
from orders.lifecycle import ACTION_LABELS, State
from orders.outbox_kinds import told_resident
from orders.services import Actor, OrderService


async def my_orders(resident: models.Resident) -> str:
    query = models.Order.filter(resident_id=resident.id)
    total = await query.count()
    recent = await query.order_by("-submitted_at", "-id").limit(5)
    followed = await primaries(recent)
    return replies.my_orders_reply([view(order, primary=followed.get(order.merged_into_id)) for order in recent],
                                   total)


async def primaries(orders: list[models.Order]) -> dict[int, models.Order]:
    """合并工单: the primaries the merged ones among `orders` follow (while they follow it), by id."""
    ids = {order.merged_into_id for order in orders if order.state == State.MERGED and order.merged_into_id}
    return {primary.id: primary for primary in await models.Order.filter(id__in=ids)} if ids else {}


def view(order: models.Order, department: str | None = None, event: models.OrderEvent | None = None,
         primary: models.Order | None = None) -> OrderView:
    told = ("progress", "resolve", "invalidate")
    note = event.reason if event is not None and event.action in told else None
    if note and event.action == "invalidate":  # 不予受理: why, then what to do instead
        note = f"{(event.data or {}).get('code_label') or '不予受理'}。{note}"
    return OrderView(
        number=order.number, text=order.text, state=order.state, category=order.category,
        department=department, submitted_at=order.submitted_at,
        deadline=(primary or order).resolve_deadline,
        last_action=event.action if event else None, last_at=event.at if event else None, last_note=note,
        primary=primary.number if primary is not None else None,
    )


async def status(orders: OrderService, number: str | None, actor: Actor) -> Outcome:
    try:
        order = await orders.get(number, actor)
    except NotFound:
        return Outcome(replies.not_found_reply(number))
    # 合并工单: a merged order shows its primary's handling (department, deadline, latest step)
    primary = (await primaries([order])).get(order.merged_into_id)
    handled = primary or order
    department = await models.Department.get_or_none(id=handled.department_id) if handled.department_id else None
    # The last step of the order's handling the resident may read (lifecycle actions only: photo, location and
    # reminder notes are not news to the resident; a department's internal progress notes are not for them).
    steps = await models.OrderEvent.filter(order_id=handled.id, action__in=list(ACTION_LABELS)).order_by("-id")
    event = next((step for step in steps if told_resident(step.action, step.data)), None)
    shown = view(order, department.name if department else None, event, primary=primary)
    return Outcome(replies.status_reply(shown), order.id)
