"""Domain errors. Each carries a stable code for programs and a Chinese message for people."""
from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"
    status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotPermitted(DomainError):
    code = "forbidden"
    status = 403

    def __init__(self, role: str, action: str) -> None:
        from orders.lifecycle import ACTION_LABELS, public_action

        label, action = ACTION_LABELS.get(action, action), public_action(action)
        super().__init__(f"角色 {role} 无权执行“{label}”({action})", role=role, action=action)


class Conflict(DomainError):
    """Someone else changed the order first (e.g. two staff accepting at once)."""

    code = "conflict"
    status = 409


class IllegalTransition(Conflict):
    """The action does not apply to the order's current state (a conflict with that state: 409)."""

    code = "illegal_transition"

    def __init__(self, state: str, action: str) -> None:
        from orders.lifecycle import ACTION_LABELS, STATE_LABELS, public_action

        label, name = ACTION_LABELS.get(action, action), public_action(action)
        DomainError.__init__(
            self,
            f"工单当前状态为“{STATE_LABELS.get(state, state)}”({state}),不能执行“{label}”({name})",
            state=state,
            action=name,
        )
        self.state = state
        self.action = action


class NotFound(DomainError):
    code = "not_found"
    status = 404


class InvalidInput(DomainError):
    code = "invalid_input"
    status = 422
