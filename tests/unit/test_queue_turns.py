"""The order a worker claims its queues in: rotation, drained queues left out."""

from __future__ import annotations

from conveyor.runtime.turns import QueueTurns


def test_queues_with_jobs_take_turns_first() -> None:
    turns = QueueTurns(("a", "b", "c"))
    assert turns.order(0.0) == ["a", "b", "c"]
    assert turns.order(0.0) == ["b", "c", "a"]
    assert turns.order(0.0) == ["c", "a", "b"]
    assert turns.order(0.0) == ["a", "b", "c"]


def test_a_queue_that_came_back_short_is_skipped_until_the_recheck() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    turns.claimed("b", asked=10, got=3, now=1.0, urgent=False)
    assert "b" not in turns.order(1.01)
    assert "b" not in turns.order(1.049)
    assert turns.order(1.05)[0] == "b"  # first, while slots are free to take its jobs


def test_a_full_claim_puts_a_drained_queue_back_in_rotation() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    turns.claimed("a", asked=10, got=0, now=1.0, urgent=False)
    turns.claimed("a", asked=10, got=10, now=1.1, urgent=False)
    assert sorted(turns.order(1.1)) == ["a", "b"]


def test_a_wake_up_makes_every_drained_queue_due_at_once() -> None:
    turns = QueueTurns(("a", "b"), recheck=60.0)
    turns.claimed("a", asked=10, got=0, now=1.0, urgent=False)
    turns.claimed("b", asked=10, got=0, now=1.0, urgent=False)
    assert turns.order(2.0) == []
    turns.woken(2.0)
    assert sorted(turns.order(2.0)) == ["a", "b"]
    # looked at again after the wake-up and still empty: skipped again
    turns.claimed("a", asked=10, got=0, now=2.1, urgent=False)
    turns.claimed("b", asked=10, got=0, now=2.1, urgent=False)
    assert turns.order(2.2) == []


def test_drained_queues_due_come_first_the_last_to_give_a_job_first() -> None:
    turns = QueueTurns(("a", "b", "c"), recheck=60.0)
    turns.claimed("a", asked=10, got=2, now=1.0, urgent=False)  # gave jobs, then ran dry
    turns.claimed("b", asked=10, got=5, now=2.0, urgent=False)  # gave jobs most recently
    assert turns.order(2.5) == ["c"]  # a and b not due yet
    turns.woken(3.0)
    for _ in range(3):  # whatever the rotation: b, then a, then c (with jobs)
        assert turns.order(3.0) == ["b", "a", "c"]


def test_a_short_urgent_claim_drains_nothing_but_counts_as_a_look() -> None:
    turns = QueueTurns(("a", "b"), recheck=0.05)
    turns.claimed("a", asked=2, got=0, now=1.0, urgent=True)  # no urgent jobs in a
    assert sorted(turns.order(1.0)) == ["a", "b"]  # a may still hold other jobs
    turns.claimed("b", asked=10, got=0, now=1.0, urgent=False)
    turns.claimed("b", asked=2, got=0, now=1.06, urgent=True)  # the recheck, as urgent
    assert "b" not in turns.order(1.07)
    assert "b" in turns.order(1.11)
