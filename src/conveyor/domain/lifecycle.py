"""The job lifecycle: the only place that says which state changes are legal.

::

    scheduled --(run_at reached)--> available --(claimed)--> running
    running --ok--> completed
    running --error, attempts left--> retryable --(backoff elapsed)--> available
    running --error, none left / discard--> discarded   (the dead-letter set)
    scheduled|available|retryable|running --cancel--> cancelled
    discarded|completed|cancelled --retry/reprocess--> available (history kept)
    running --lease expired (worker died)--> available or discarded
    scheduled <--edit (new run_at)--> available   (a job that has not started)

Every other module asks this one: stores derive the ``state IN (...)`` guards of
their compare-and-set updates from :data:`TRANSITIONS`, and single-job operations
call :func:`transition` (an edit: :func:`after_edit`) before they write.
"""

from __future__ import annotations

from enum import StrEnum

from conveyor.domain.errors import Conflict, IllegalTransition


class JobState(StrEnum):
    """Where a job is in its life."""

    SCHEDULED = "scheduled"
    AVAILABLE = "available"
    RUNNING = "running"
    RETRYABLE = "retryable"
    COMPLETED = "completed"
    DISCARDED = "discarded"
    CANCELLED = "cancelled"


class Action(StrEnum):
    """A named reason for a state change; each one is a set of legal (from, to) pairs."""

    PROMOTE = "promote"
    CLAIM = "claim"
    COMPLETE = "complete"
    FAIL = "fail"
    DISCARD = "discard"
    CANCEL = "cancel"
    RETRY = "retry"
    RESCUE = "rescue"
    EDIT = "edit"


S = JobState

TRANSITIONS: dict[Action, frozenset[tuple[JobState, JobState]]] = {
    Action.PROMOTE: frozenset({(S.SCHEDULED, S.AVAILABLE), (S.RETRYABLE, S.AVAILABLE)}),
    Action.CLAIM: frozenset({(S.AVAILABLE, S.RUNNING)}),
    Action.COMPLETE: frozenset({(S.RUNNING, S.COMPLETED)}),
    Action.FAIL: frozenset({(S.RUNNING, S.RETRYABLE)}),
    Action.DISCARD: frozenset({(S.RUNNING, S.DISCARDED)}),
    Action.CANCEL: frozenset(
        {(s, S.CANCELLED) for s in (S.SCHEDULED, S.AVAILABLE, S.RETRYABLE, S.RUNNING)}
    ),
    Action.RETRY: frozenset({(s, S.AVAILABLE) for s in (S.COMPLETED, S.DISCARDED, S.CANCELLED)}),
    Action.RESCUE: frozenset({(S.RUNNING, S.AVAILABLE), (S.RUNNING, S.DISCARDED)}),
    # An edit giving a new run_at: due now (available) or later (scheduled). An edit
    # that leaves run_at alone keeps the state: see after_edit() and EDITABLE.
    Action.EDIT: frozenset({(S.SCHEDULED, S.AVAILABLE), (S.AVAILABLE, S.SCHEDULED)}),
}

CLAIMABLE: frozenset[JobState] = frozenset({S.AVAILABLE})
WAITING: frozenset[JobState] = frozenset({S.SCHEDULED, S.RETRYABLE})
ACTIVE: frozenset[JobState] = frozenset({S.SCHEDULED, S.AVAILABLE, S.RUNNING, S.RETRYABLE})
TERMINAL: frozenset[JobState] = frozenset({S.COMPLETED, S.DISCARDED, S.CANCELLED})
EDITABLE: frozenset[JobState] = frozenset({S.SCHEDULED, S.AVAILABLE})
"""A job that has not started: its fields may still change. A ``retryable`` job has
run (its attempts would disagree with its new fields), so it is not editable."""


class NotEditable(Conflict):
    """Only a job that has not started (scheduled or available) can be edited."""

    def __init__(self, state: JobState, job_id: int | None = None) -> None:
        self.state = state
        self.job_id = job_id
        who = f"job {job_id}" if job_id is not None else "a job"
        allowed = " or ".join(sorted(EDITABLE, reverse=True))
        super().__init__(f"{who} is {state}: only {allowed} jobs can be edited")


def is_legal(action: Action, from_state: JobState, to_state: JobState) -> bool:
    """Whether ``action`` may move a job from ``from_state`` to ``to_state``."""
    return (from_state, to_state) in TRANSITIONS[action]


def sources(action: Action) -> frozenset[JobState]:
    """The states a job may be in for ``action`` to apply to it."""
    return frozenset(f for f, _ in TRANSITIONS[action])


def targets(action: Action) -> frozenset[JobState]:
    """The states ``action`` may leave a job in."""
    return frozenset(t for _, t in TRANSITIONS[action])


def all_edges() -> frozenset[tuple[JobState, JobState]]:
    """Every legal (from, to) pair, whatever the action."""
    return frozenset().union(*TRANSITIONS.values())


def transition(
    action: Action, from_state: JobState, to_state: JobState, job_id: int | None = None
) -> JobState:
    """Check one state change and return the new state, or raise ``IllegalTransition``."""
    if not is_legal(action, from_state, to_state):
        raise IllegalTransition(from_state, to_state, job_id)
    return to_state


def after_edit(state: JobState, due: bool | None, job_id: int | None = None) -> JobState:
    """The state of a job in ``state`` once edited, or ``NotEditable``.

    ``due`` says whether the edit gives the job a ``run_at`` that has come (``None``:
    the edit leaves ``run_at`` alone, and so the state).
    """
    if state not in EDITABLE:
        raise NotEditable(state, job_id)
    to_state = state if due is None else (S.AVAILABLE if due else S.SCHEDULED)
    return state if to_state is state else transition(Action.EDIT, state, to_state, job_id)


def mermaid_diagram() -> str:
    """The state diagram, generated from :data:`TRANSITIONS` (for the docs)."""
    lines = ["stateDiagram-v2"]
    for action in Action:
        for from_state, to_state in sorted(TRANSITIONS[action]):
            lines.append(f"    {from_state} --> {to_state}: {action}")
    return "\n".join(lines)
