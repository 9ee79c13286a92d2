"""The order lifecycle as an explicit transition table: (state, action) -> (next state, who may do it).

Pure Python, no I/O: every use case asks `transition()` before it changes an order.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orders.errors import IllegalTransition, NotPermitted


class State(StrEnum):
    SUBMITTED = "submitted"
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    VERIFIED = "verified"
    RETURNED = "returned"
    REOPENED = "reopened"
    CANCELLED = "cancelled"
    CLOSED_UNRATED = "closed_unrated"
    INVALID = "invalid"
    MERGED = "merged"


class Action(StrEnum):
    SUBMIT = "submit"
    DISPATCH = "dispatch"
    RETURN = "return_"
    ACCEPT = "accept"
    PROGRESS = "progress"
    REQUEST_EXTENSION = "request_extension"
    EXTEND = "extend"
    DENY_EXTENSION = "deny_extension"
    RESOLVE = "resolve"
    RATE = "rate"
    REOPEN = "reopen"
    CANCEL = "cancel"
    CLOSE_UNRATED = "close_unrated"
    ESCALATE = "escalate"
    INVALIDATE = "invalidate"
    MERGE = "merge"
    FOLLOW = "follow"


class Role(StrEnum):
    RESIDENT = "resident"
    GRID_WORKER = "grid_worker"
    DEPT_STAFF = "dept_staff"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    SYSTEM = "system"


STATE_LABELS = {
    "submitted": "已受理",
    "dispatched": "已派单",
    "accepted": "办理中",
    "resolved": "已办结,待评价",
    "verified": "已评价",
    "returned": "已退单,待重新派单",
    "reopened": "重办中",
    "cancelled": "已取消",
    "closed_unrated": "已关闭(未评价)",
    "invalid": "不予受理",
    "merged": "已合并,随主工单办理",
}

ACTION_LABELS = {
    "submit": "点单",
    "dispatch": "派单",
    "return_": "退单",
    "accept": "接单",
    "progress": "办理进展",
    "request_extension": "申请延期",
    "extend": "批准延期",
    "deny_extension": "驳回延期",
    "resolve": "办结",
    "rate": "评价",
    "reopen": "重办",
    "cancel": "取消",
    "close_unrated": "逾期未评价关闭",
    "escalate": "升级督办",
    "invalidate": "不予受理",
    "merge": "合并工单",
    "follow": "随主工单重办",
}

# The names the API speaks: the stored value `return_` (named after the method, `return` being a Python keyword)
# is `return` to everyone outside.
PUBLIC_ACTION_NAMES = {"return_": "return"}


def public_action(action: Action | str) -> str:
    return PUBLIC_ACTION_NAMES.get(str(action), str(action))


# 不予受理: why an order is closed without being worked (code -> the words staff and residents read).
INVALID_REASONS = {
    "out_of_remit": "不属于本镇受理范围",
    "spam": "无效信息",
    "duplicate": "重复反映",
    "insufficient_info": "信息不足,无法办理",
}

# Open states: the order still needs someone's work. Terminal states never change again.
OPEN_STATES = frozenset({State.SUBMITTED, State.DISPATCHED, State.ACCEPTED, State.RETURNED, State.REOPENED})
TERMINAL_STATES = frozenset({State.VERIFIED, State.CANCELLED, State.CLOSED_UNRATED, State.INVALID})
# Not yet accepted by any department: the resident may still cancel, a dispatcher may still close it as invalid.
UNACCEPTED_STATES = (State.SUBMITTED, State.DISPATCHED, State.RETURNED)
# Closed without being worked (not the township's to do): terminal, stamped closed_at, counted apart and kept out of
# every rate (orders/stats/definitions.py). A duplicate merged into another order (合并工单) is set aside while it
# follows its primary (not terminal: it is resolved, surveyed and rated with the primary, orders/merging.py).
SET_ASIDE_STATES = frozenset({State.INVALID, State.MERGED})
# 合并工单: the primary's end reaches its followers (resolved with it; back to following when it is reopened).
FOLLOWER_END_STATES = (State.RESOLVED, State.VERIFIED, State.CLOSED_UNRATED)

_R, _G, _D, _S, _A, _SYS = Role.RESIDENT, Role.GRID_WORKER, Role.DEPT_STAFF, Role.SUPERVISOR, Role.ADMIN, Role.SYSTEM
_DISPATCHERS = frozenset({_SYS, _G, _S, _A})


@dataclass(frozen=True)
class Rule:
    to: State | None  # None: the state does not change (progress notes, extensions, escalation)
    roles: frozenset[Role]


def _rule(to: State | None, *roles: Role) -> Rule:
    return Rule(to, frozenset(roles))


# state × action → rule. Submission creates an order, so it starts from no state (None).
TRANSITIONS: dict[tuple[State | None, Action], Rule] = {
    (None, Action.SUBMIT): _rule(State.SUBMITTED, _R, _G, _S, _A),
    # 派单: automatic (system) or by hand; a grid worker may re-route before anyone accepts.
    (State.SUBMITTED, Action.DISPATCH): Rule(State.DISPATCHED, _DISPATCHERS),
    (State.RETURNED, Action.DISPATCH): Rule(State.DISPATCHED, _DISPATCHERS),
    (State.DISPATCHED, Action.DISPATCH): Rule(State.DISPATCHED, _DISPATCHERS),
    (State.REOPENED, Action.DISPATCH): _rule(State.DISPATCHED, _S, _A),
    # 接单 by the responsible department, also after a reopen (重办 goes back to the same department).
    (State.DISPATCHED, Action.ACCEPT): _rule(State.ACCEPTED, _D),
    (State.REOPENED, Action.ACCEPT): _rule(State.ACCEPTED, _D),
    # 退单: wrongly routed; back to the dispatcher with a reason.
    (State.DISPATCHED, Action.RETURN): _rule(State.RETURNED, _D),
    (State.ACCEPTED, Action.RETURN): _rule(State.RETURNED, _D),
    (State.REOPENED, Action.RETURN): _rule(State.RETURNED, _D),
    # 办单.
    (State.ACCEPTED, Action.PROGRESS): _rule(None, _D),
    (State.ACCEPTED, Action.REQUEST_EXTENSION): _rule(None, _D),
    (State.ACCEPTED, Action.EXTEND): _rule(None, _S, _A),
    (State.ACCEPTED, Action.DENY_EXTENSION): _rule(None, _S, _A),
    (State.ACCEPTED, Action.RESOLVE): _rule(State.RESOLVED, _D),
    # 验单.
    (State.RESOLVED, Action.RATE): _rule(State.VERIFIED, _R),
    (State.RESOLVED, Action.CLOSE_UNRATED): _rule(State.CLOSED_UNRATED, _SYS),
    # 重办: an unsatisfied rating (system) or a supervisor's decision.
    (State.VERIFIED, Action.REOPEN): _rule(State.REOPENED, _SYS, _S, _A),
    # (the system too: a merged order's reporter unsatisfied reopens the primary, whatever its own survey's state)
    (State.RESOLVED, Action.REOPEN): _rule(State.REOPENED, _SYS, _S, _A),
    (State.CLOSED_UNRATED, Action.REOPEN): _rule(State.REOPENED, _SYS, _S, _A),
    # 取消: by the resident before anyone accepted it.
    **{(state, Action.CANCEL): _rule(State.CANCELLED, _R) for state in UNACCEPTED_STATES},
    # 不予受理: spam, a duplicate, a matter outside the township's remit, closed by a dispatcher before anyone accepted
    # it. A department that thinks an order invalid returns it (退单), saying so.
    **{(state, Action.INVALIDATE): _rule(State.INVALID, _G, _S, _A) for state in UNACCEPTED_STATES},
    # 合并工单: one matter reported twice; the duplicate follows the primary (a dispatcher or the department handling
    # it merges it). When the primary is resolved its followers are resolved too (each surveyed on its own number);
    # when it is reopened they follow it again.
    **{(state, Action.MERGE): _rule(State.MERGED, _G, _D, _S, _A) for state in OPEN_STATES},
    (State.MERGED, Action.RESOLVE): _rule(State.RESOLVED, _SYS),
    **{(state, Action.FOLLOW): _rule(State.MERGED, _SYS) for state in FOLLOWER_END_STATES},
    # 督单: escalation raises the level of any open order.
    **{(state, Action.ESCALATE): _rule(None, _SYS, _S, _A) for state in OPEN_STATES},
    # An order still unsatisfied after the last 重办 goes to the supervisor (乡镇) without reopening again.
    (State.VERIFIED, Action.ESCALATE): _rule(None, _SYS, _S, _A),
}


def allowed(state: State | str | None, action: Action | str) -> Rule | None:
    key = (State(state) if state is not None else None, Action(action))
    return TRANSITIONS.get(key)


def transition(state: State | str | None, action: Action | str, role: Role | str) -> State:
    """The state after `action` by `role`, or a domain error naming the state and the action."""
    rule = allowed(state, action)
    if rule is None:
        raise IllegalTransition(str(state), str(Action(action)))
    if Role(role) not in rule.roles:
        raise NotPermitted(str(Role(role)), str(Action(action)))
    return rule.to if rule.to is not None else State(state)


def actions_for(state: State | str, role: Role | str) -> list[Action]:
    """What the table lets `role` do to an order in `state`."""
    state, role = State(state), Role(role)
    return [action for (from_state, action), rule in TRANSITIONS.items() if from_state == state and role in rule.roles]


def offered_actions(state: State | str, role: Role | str, *, extension_pending: bool) -> list[Action]:
    """What to offer `role` on an order (UIs and the API): the table's actions, but a supervisor answers an extension
    only when a department asked for one."""
    answers = (Action.EXTEND, Action.DENY_EXTENSION)
    return [action for action in actions_for(state, role) if extension_pending or action not in answers]


# Timestamps each state implies (the property test checks they agree).
STATE_TIMESTAMP = {
    State.SUBMITTED: "submitted_at",
    State.DISPATCHED: "dispatched_at",
    State.ACCEPTED: "accepted_at",
    State.RESOLVED: "resolved_at",
    State.VERIFIED: "rated_at",
    State.CANCELLED: "closed_at",
    State.CLOSED_UNRATED: "closed_at",
    State.INVALID: "closed_at",
    State.MERGED: "merged_at",
    State.RETURNED: "returned_at",
    State.REOPENED: "reopened_at",
}

# 三级调解 / escalation levels.
ESCALATION_LEVELS = ("村(网格)", "村委", "乡镇")
