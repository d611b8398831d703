"""The order a worker claims its queues in: rotation, drained queues left out."""

from __future__ import annotations

from conveyor.runtime.turns import QueueTurns


def _claimed(turns: QueueTurns, queue: str, got: int, at: float, urgent: bool = False) -> None:
    """A claim of 10 jobs sent and answered at ``at``."""
    turns.claimed(queue, asked=10, got=got, sent=at, now=at, urgent=urgent)


def test_queues_with_jobs_take_turns_first() -> None:
    turns = QueueTurns(("a", "b", "c"))
    assert turns.order(0.0) == ["a", "b", "c"]
    assert turns.order(0.0) == ["b", "c", "a"]
    assert turns.order(0.0) == ["c", "a", "b"]
    assert turns.order(0.0) == ["a", "b", "c"]


def test_a_queue_that_came_back_short_is_skipped_until_the_recheck() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    _claimed(turns, "b", got=3, at=1.0)
    assert "b" not in turns.order(1.01)
    assert "b" not in turns.order(1.04)
    assert turns.order(1.06)[0] == "b"  # first, while slots are free to take its jobs


def test_a_full_claim_puts_a_drained_queue_back_in_rotation() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    _claimed(turns, "a", got=0, at=1.0)
    _claimed(turns, "a", got=10, at=1.1)
    assert sorted(turns.order(1.1)) == ["a", "b"]


def test_a_wake_up_makes_every_drained_queue_due_at_once() -> None:
    turns = QueueTurns(("a", "b"), recheck=60.0)
    _claimed(turns, "a", got=0, at=1.0)
    _claimed(turns, "b", got=0, at=1.0)
    assert turns.order(2.0) == []
    turns.woken(2.0)
    assert sorted(turns.order(2.0)) == ["a", "b"]
    # looked at again after the wake-up and still empty: skipped again
    _claimed(turns, "a", got=0, at=2.1)
    _claimed(turns, "b", got=0, at=2.1)
    assert turns.order(2.2) == []


def test_drained_queues_due_come_first_the_last_to_give_a_job_first() -> None:
    turns = QueueTurns(("a", "b", "c"), recheck=60.0)
    _claimed(turns, "a", got=2, at=1.0)  # gave jobs, then ran dry
    _claimed(turns, "b", got=5, at=2.0)  # gave jobs most recently
    assert turns.order(2.5) == ["c"]  # a and b not due yet
    turns.woken(3.0)
    for _ in range(3):  # whatever the rotation: b, then a, then c (with jobs)
        assert turns.order(3.0) == ["b", "a", "c"]


def test_a_short_urgent_claim_drains_nothing_and_leaves_a_due_queue_due() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    _claimed(turns, "a", got=0, at=1.0, urgent=True)  # no urgent jobs in a
    assert sorted(turns.order(1.0)) == ["a", "b"]  # a may still hold other jobs
    _claimed(turns, "b", got=0, at=1.0)
    assert "b" not in turns.order(1.01)
    _claimed(turns, "b", got=0, at=1.07, urgent=True)  # slots were full at its look
    # still due: the next round with free slots must ask it for all its jobs
    assert turns.order(1.08)[0] == "b"


def test_a_queue_freed_while_a_claim_was_on_its_way_is_not_drained_by_it() -> None:
    turns = QueueTurns(("capped",), recheck=60.0)
    # the claim counted a job that finished and was written while it ran
    turns.freed("capped", now=1.5)
    turns.claimed("capped", asked=10, got=0, sent=1.0, now=2.0, urgent=False)
    assert turns.order(2.0) == ["capped"]
    # a claim sent after the write that comes back short drains it
    turns.claimed("capped", asked=10, got=0, sent=2.1, now=2.2, urgent=False)
    assert turns.order(2.3) == []
