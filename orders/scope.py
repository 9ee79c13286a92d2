"""Who may see which orders, written once: the use cases check one order with `can_see`, the read side filters a
query with `visible`, and both read the same rule from `_ways_to_see`.

- a resident: their own orders;
- department staff: their department's (staff without a department: none);
- a grid worker: their grid's, in any state, and of the orders without a grid only those waiting for a person to
  route them (the dispatch queue: submitted or returned), not the township's others once a department has them;
- supervisors, admins and the system: all.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from orders import models
from orders.lifecycle import Role, State

if TYPE_CHECKING:
    from orders.unit_of_work import Actor

DISPATCH_QUEUE_STATES = (State.SUBMITTED, State.RETURNED)  # waiting for a person to route them (派单)

_EVERYTHING = None


def _ways_to_see(actor: Actor) -> list[dict[str, Any]] | None:
    """Each dict is one way an order is visible (every field equal; a tuple: one of its values); None: all."""
    match actor.role:
        case Role.RESIDENT:
            return [{"resident_id": actor.id}]
        case Role.DEPT_STAFF:
            return [] if actor.department_id is None else [{"department_id": actor.department_id}]
        case Role.GRID_WORKER:
            queue = {"grid_id": None, "state": tuple(str(state) for state in DISPATCH_QUEUE_STATES)}
            return [queue] if actor.grid_id is None else [{"grid_id": actor.grid_id}, queue]
        case _:
            return _EVERYTHING


def can_see(actor: Actor, order: models.Order) -> bool:
    ways = _ways_to_see(actor)
    if ways is _EVERYTHING:
        return True
    return any(all(_matches(getattr(order, name), value) for name, value in way.items()) for way in ways)


def visible(actor: Actor, query: QuerySet[models.Order] | None = None) -> QuerySet[models.Order]:
    """`query` (all orders by default) narrowed to those `actor` may see."""
    query = models.Order.all() if query is None else query
    ways = _ways_to_see(actor)
    if ways is _EVERYTHING:
        return query
    if not ways:
        return query.filter(id__lt=0)
    return query.filter(Q(*(_condition(way) for way in ways), join_type=Q.OR))


def _matches(field: Any, value: Any) -> bool:
    return field in value if isinstance(value, tuple) else field == value


def _condition(way: dict[str, Any]) -> Q:
    lookups: dict[str, Any] = {}
    for name, value in way.items():
        if value is None:
            lookups[f"{name}__isnull"] = True
        elif isinstance(value, tuple):
            lookups[f"{name}__in"] = list(value)
        else:
            lookups[name] = value
    return Q(**lookups)
