"""The lifecycle table against the diagram in DESIGN.md, pair by pair.

The expected edges are written out here by hand from the diagram, not derived
from ``TRANSITIONS``, so a change to the table that the design does not show fails.
"""

from __future__ import annotations

import itertools

import pytest

from conveyor.domain.errors import Conflict, IllegalTransition
from conveyor.domain.lifecycle import (
    ACTIVE,
    CLAIMABLE,
    EDITABLE,
    TERMINAL,
    TRANSITIONS,
    WAITING,
    Action,
    JobState,
    NotEditable,
    after_edit,
    all_edges,
    is_legal,
    mermaid_diagram,
    sources,
    targets,
    transition,
)

S = JobState

# scheduled --(run_at reached)--> available --(claimed)--> running
# running --ok--> completed
# running --error, attempts left--> retryable --(backoff elapsed)--> available
# running --error, none left / discard--> discarded
# scheduled|available|retryable|running --cancel--> cancelled
# discarded|completed|cancelled --retry/reprocess--> available
# running --lease expired--> available or discarded
# scheduled <--edit (new run_at)--> available   (SYSTEMS R1.6: edit while not started)
DESIGN: dict[Action, set[tuple[JobState, JobState]]] = {
    Action.PROMOTE: {(S.SCHEDULED, S.AVAILABLE), (S.RETRYABLE, S.AVAILABLE)},
    Action.CLAIM: {(S.AVAILABLE, S.RUNNING)},
    Action.COMPLETE: {(S.RUNNING, S.COMPLETED)},
    Action.FAIL: {(S.RUNNING, S.RETRYABLE)},
    Action.DISCARD: {(S.RUNNING, S.DISCARDED)},
    Action.CANCEL: {
        (S.SCHEDULED, S.CANCELLED),
        (S.AVAILABLE, S.CANCELLED),
        (S.RETRYABLE, S.CANCELLED),
        (S.RUNNING, S.CANCELLED),
    },
    Action.RETRY: {
        (S.DISCARDED, S.AVAILABLE),
        (S.COMPLETED, S.AVAILABLE),
        (S.CANCELLED, S.AVAILABLE),
    },
    Action.RESCUE: {(S.RUNNING, S.AVAILABLE), (S.RUNNING, S.DISCARDED)},
    Action.EDIT: {(S.SCHEDULED, S.AVAILABLE), (S.AVAILABLE, S.SCHEDULED)},
}

ALL_CASES = list(itertools.product(Action, JobState, JobState))


def _case_id(case: tuple[Action, JobState, JobState]) -> str:
    action, from_state, to_state = case
    return f"{action}:{from_state}->{to_state}"


def test_every_action_in_the_design_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(Action) == set(DESIGN)


@pytest.mark.parametrize("case", ALL_CASES, ids=_case_id)
def test_transition_allows_exactly_the_design_edges(
    case: tuple[Action, JobState, JobState],
) -> None:
    action, from_state, to_state = case
    if (from_state, to_state) in DESIGN[action]:
        assert transition(action, from_state, to_state) is to_state
        assert is_legal(action, from_state, to_state)
    else:
        assert not is_legal(action, from_state, to_state)
        with pytest.raises(IllegalTransition) as caught:
            transition(action, from_state, to_state, job_id=42)
        assert caught.value.from_state == from_state
        assert caught.value.to_state == to_state
        assert caught.value.job_id == 42


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    list(itertools.product(JobState, JobState)),
    ids=lambda s: str(s),
)
def test_a_pair_is_an_edge_iff_some_action_of_the_design_allows_it(
    from_state: JobState, to_state: JobState
) -> None:
    expected = any((from_state, to_state) in edges for edges in DESIGN.values())
    assert ((from_state, to_state) in all_edges()) is expected


@pytest.mark.parametrize("state", list(JobState))
def test_no_action_keeps_a_job_in_the_state_it_is_in(state: JobState) -> None:
    for action in Action:
        with pytest.raises(IllegalTransition):
            transition(action, state, state)


def test_illegal_transition_is_a_conflict_naming_the_job_and_both_states() -> None:
    with pytest.raises(Conflict) as caught:
        transition(Action.CLAIM, S.COMPLETED, S.RUNNING, job_id=7)
    message = str(caught.value)
    assert "job 7" in message
    assert "'completed'" in message
    assert "'running'" in message


def test_illegal_transition_without_a_job_id_still_says_what_was_refused() -> None:
    error = IllegalTransition(S.AVAILABLE, S.COMPLETED)
    assert error.job_id is None
    assert "a job cannot go from 'available' to 'completed'" in error.message


def test_only_available_jobs_are_claimable() -> None:
    assert {S.AVAILABLE} == CLAIMABLE
    assert sources(Action.CLAIM) == CLAIMABLE


def test_terminal_states_are_completed_discarded_and_cancelled() -> None:
    assert {S.COMPLETED, S.DISCARDED, S.CANCELLED} == TERMINAL


def test_terminal_states_are_left_only_by_retry_to_available() -> None:
    leaving = {(f, t, a) for a, edges in TRANSITIONS.items() for f, t in edges if f in TERMINAL}
    assert leaving == {(state, S.AVAILABLE, Action.RETRY) for state in TERMINAL}
    assert sources(Action.RETRY) == TERMINAL


def test_waiting_and_active_groups_split_the_states_with_terminal() -> None:
    assert {S.SCHEDULED, S.RETRYABLE} == WAITING
    assert sources(Action.PROMOTE) == WAITING
    assert {S.SCHEDULED, S.AVAILABLE, S.RUNNING, S.RETRYABLE} == ACTIVE
    assert ACTIVE.isdisjoint(TERMINAL)
    assert set(JobState) == ACTIVE | TERMINAL
    assert sources(Action.CANCEL) == ACTIVE


def test_every_state_is_reachable_from_a_new_job() -> None:
    reached = {S.SCHEDULED, S.AVAILABLE}
    frontier = list(reached)
    while frontier:
        state = frontier.pop()
        for from_state, to_state in all_edges():
            if from_state == state and to_state not in reached:
                reached.add(to_state)
                frontier.append(to_state)
    assert reached == set(JobState)


def test_sources_and_targets_read_the_table() -> None:
    assert sources(Action.RESCUE) == {S.RUNNING}
    assert targets(Action.RESCUE) == {S.AVAILABLE, S.DISCARDED}
    assert targets(Action.CANCEL) == {S.CANCELLED}
    assert sources(Action.COMPLETE) == {S.RUNNING}


@pytest.mark.parametrize(
    ("action", "from_state", "to_state"),
    [(a, f, t) for a, edges in DESIGN.items() for f, t in sorted(edges)],
)
def test_mermaid_diagram_draws_every_edge(
    action: Action, from_state: JobState, to_state: JobState
) -> None:
    assert f"    {from_state} --> {to_state}: {action}" in mermaid_diagram().splitlines()


def test_mermaid_diagram_draws_nothing_but_the_edges() -> None:
    lines = mermaid_diagram().splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert len(lines) - 1 == sum(len(edges) for edges in DESIGN.values())
    assert len(set(lines)) == len(lines)


def test_only_jobs_that_have_not_started_are_editable() -> None:
    assert {S.SCHEDULED, S.AVAILABLE} == EDITABLE
    assert sources(Action.EDIT) == EDITABLE


@pytest.mark.parametrize("state", sorted(EDITABLE))
def test_an_edit_that_leaves_run_at_alone_keeps_the_state(state: JobState) -> None:
    assert after_edit(state, None, job_id=3) is state


@pytest.mark.parametrize("state", sorted(EDITABLE))
@pytest.mark.parametrize(("due", "expected"), [(True, S.AVAILABLE), (False, S.SCHEDULED)])
def test_a_new_run_at_makes_the_job_available_when_due_else_scheduled(
    state: JobState, due: bool, expected: JobState
) -> None:
    assert after_edit(state, due, job_id=3) is expected


@pytest.mark.parametrize("state", sorted(set(JobState) - EDITABLE))
@pytest.mark.parametrize("due", [None, True, False])
def test_a_job_that_has_started_or_finished_is_not_editable(
    state: JobState, due: bool | None
) -> None:
    with pytest.raises(NotEditable) as caught:
        after_edit(state, due, job_id=9)
    assert caught.value.state is state
    assert caught.value.job_id == 9
    assert isinstance(caught.value, Conflict)
    assert caught.value.message == (
        f"job 9 is {state}: only scheduled or available jobs can be edited"
    )
