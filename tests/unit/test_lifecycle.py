"""Every transition of the table, allowed and refused, including who may do it.

The expected table below is written out by hand from DESIGN.md, independently of orders.lifecycle, so a change
to either shows up here."""
from __future__ import annotations

import itertools

import pytest

from orders.errors import Conflict, IllegalTransition, NotPermitted
from orders.lifecycle import (INVALID_REASONS, STATE_LABELS, STATE_TIMESTAMP, TERMINAL_STATES, TRANSITIONS, Action,
                              Role, State, actions_for, offered_actions, public_action, transition)

R, G, D, S, A, SYS = "resident", "grid_worker", "dept_staff", "supervisor", "admin", "system"
OPEN = ["submitted", "dispatched", "accepted", "returned", "reopened"]

# (from, action) -> (to or None for "unchanged", roles)
EXPECTED = {
    (None, "submit"): ("submitted", {R, G, S, A}),
    ("submitted", "dispatch"): ("dispatched", {SYS, G, S, A}),
    ("returned", "dispatch"): ("dispatched", {SYS, G, S, A}),
    ("dispatched", "dispatch"): ("dispatched", {SYS, G, S, A}),
    ("reopened", "dispatch"): ("dispatched", {S, A}),
    ("dispatched", "accept"): ("accepted", {D}),
    ("reopened", "accept"): ("accepted", {D}),
    ("dispatched", "return_"): ("returned", {D}),
    ("accepted", "return_"): ("returned", {D}),
    ("reopened", "return_"): ("returned", {D}),
    ("accepted", "progress"): (None, {D}),
    ("accepted", "request_extension"): (None, {D}),
    ("accepted", "extend"): (None, {S, A}),
    ("accepted", "deny_extension"): (None, {S, A}),
    ("accepted", "resolve"): ("resolved", {D}),
    ("resolved", "rate"): ("verified", {R}),
    ("resolved", "close_unrated"): ("closed_unrated", {SYS}),
    ("verified", "reopen"): ("reopened", {SYS, S, A}),
    # the system too: a merged order's unsatisfied reporter reopens the primary whatever the primary's own survey
    ("resolved", "reopen"): ("reopened", {SYS, S, A}),
    ("closed_unrated", "reopen"): ("reopened", {SYS, S, A}),
    ("submitted", "cancel"): ("cancelled", {R}),
    ("dispatched", "cancel"): ("cancelled", {R}),
    ("returned", "cancel"): ("cancelled", {R}),
    # 不予受理: a dispatcher closes spam, duplicates, matters outside the remit, before any department accepted it.
    ("submitted", "invalidate"): ("invalid", {G, S, A}),
    ("dispatched", "invalidate"): ("invalid", {G, S, A}),
    ("returned", "invalidate"): ("invalid", {G, S, A}),
    **{(state, "escalate"): (None, {SYS, S, A}) for state in OPEN},
    ("verified", "escalate"): (None, {SYS, S, A}),
    # 合并工单: an open order merged into another by a dispatcher or the department handling it; it is resolved with
    # its primary and follows it again when the primary is reopened (the system's steps).
    **{(state, "merge"): ("merged", {G, D, S, A}) for state in OPEN},
    ("merged", "resolve"): ("resolved", {SYS}),
    **{(state, "follow"): ("merged", {SYS}) for state in ("resolved", "verified", "closed_unrated")},
}

ALL_STATES = [None, *[s.value for s in State]]
ALL_ACTIONS = [a.value for a in Action]
ALL_ROLES = [r.value for r in Role]


def test_the_table_is_exactly_the_specified_one():
    actual = {
        (None if state is None else state.value, action.value): (None if rule.to is None else rule.to.value,
                                                                  {role.value for role in rule.roles})
        for (state, action), rule in TRANSITIONS.items()
    }
    assert actual == EXPECTED


@pytest.mark.parametrize("state,action,role", list(itertools.product(ALL_STATES, ALL_ACTIONS, ALL_ROLES)))
def test_every_state_action_role(state, action, role):
    expected = EXPECTED.get((state, action))
    if expected is None:
        with pytest.raises(IllegalTransition) as error:
            transition(state, action, role)
        assert error.value.state == str(state) and error.value.action == action
        return
    to, roles = expected
    if role in roles:
        assert transition(state, action, role) == State(to or state)
    else:
        with pytest.raises(NotPermitted):
            transition(state, action, role)


def test_illegal_transition_names_state_and_action_in_its_message():
    with pytest.raises(IllegalTransition) as error:
        transition("verified", "accept", "dept_staff")
    assert "verified" in error.value.message and "accept" in error.value.message
    assert "已评价" in error.value.message and "接单" in error.value.message
    assert isinstance(error.value, Conflict) and error.value.status == 409


def test_terminal_states_admit_nothing_but_supervisor_reopen_or_escalation():
    for state in ("cancelled", "invalid"):
        assert actions_for(state, "supervisor") == []
    assert actions_for("closed_unrated", "supervisor") == [Action.REOPEN]
    assert set(actions_for("verified", "system")) == {Action.REOPEN, Action.ESCALATE, Action.FOLLOW}


def test_unknown_state_or_action_is_an_error_not_a_silent_pass():
    with pytest.raises(ValueError):
        transition("flying", "accept", "dept_staff")
    with pytest.raises(ValueError):
        transition("dispatched", "teleport", "dept_staff")


def test_only_dispatchers_invalidate_and_only_before_a_department_accepted():
    for state in ("submitted", "dispatched", "returned"):
        assert transition(state, "invalidate", "grid_worker") == State.INVALID
        for role in ("dept_staff", "resident", "system"):  # a department returns an order it thinks invalid
            with pytest.raises(NotPermitted):
                transition(state, "invalidate", role)
    for state in ("accepted", "resolved", "verified", "reopened", "cancelled", "closed_unrated", "invalid"):
        with pytest.raises(IllegalTransition) as error:
            transition(state, "invalidate", "supervisor")
        assert "不予受理" in error.value.message
    assert State.INVALID in TERMINAL_STATES and STATE_TIMESTAMP[State.INVALID] == "closed_at"
    assert STATE_LABELS["invalid"] == "不予受理"
    assert set(INVALID_REASONS) == {"out_of_remit", "spam", "duplicate", "insufficient_info"}


def test_a_supervisor_is_offered_an_answer_to_an_extension_only_when_one_was_asked():
    asked = offered_actions("accepted", "supervisor", extension_pending=True)
    assert {Action.EXTEND, Action.DENY_EXTENSION} <= set(asked)
    unasked = offered_actions("accepted", "supervisor", extension_pending=False)
    assert Action.EXTEND not in unasked and Action.DENY_EXTENSION not in unasked and Action.ESCALATE in unasked
    assert offered_actions("accepted", "dept_staff", extension_pending=False) == actions_for("accepted", "dept_staff")


def test_the_public_name_of_return_is_return_and_errors_use_it():
    assert public_action(Action.RETURN) == "return" and public_action("accept") == "accept"
    with pytest.raises(IllegalTransition) as refused:
        transition("verified", "return_", "dept_staff")
    assert "(return)" in refused.value.message and refused.value.details["action"] == "return"
    with pytest.raises(NotPermitted) as forbidden:
        transition("dispatched", "return_", "resident")
    assert "(return)" in forbidden.value.message and forbidden.value.details["action"] == "return"


def test_a_merged_order_follows_its_primary_and_nobody_works_it_by_hand():
    for state in OPEN:
        for role in ("grid_worker", "dept_staff", "supervisor", "admin"):
            assert transition(state, "merge", role) == State.MERGED
        for role in ("resident", "system"):
            with pytest.raises(NotPermitted):
                transition(state, "merge", role)
    for state in ("merged", "resolved", "verified", "cancelled", "closed_unrated", "invalid"):
        with pytest.raises(IllegalTransition):
            transition(state, "merge", "supervisor")
    for role in ("grid_worker", "dept_staff", "supervisor", "admin", "resident"):
        assert actions_for("merged", role) == []
    assert transition("merged", "resolve", "system") == State.RESOLVED
    with pytest.raises(NotPermitted):
        transition("merged", "resolve", "dept_staff")
    assert transition("verified", "follow", "system") == State.MERGED
    assert STATE_TIMESTAMP[State.MERGED] == "merged_at" and State.MERGED not in TERMINAL_STATES
    assert STATE_LABELS["merged"].startswith("已合并")
