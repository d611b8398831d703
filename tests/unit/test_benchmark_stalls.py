"""The benchmark notices a processing run that stalled and leaves it out of the median."""

from __future__ import annotations

from benchmarks import report
from benchmarks.config import SYSTEMS
from benchmarks.scenarios import longest_stall


def _timeline(done_per_poll: list[int], poll: float = 0.25) -> list[tuple[float, int]]:
    return [(index * poll, done) for index, done in enumerate(done_per_poll)]


def test_a_steady_run_has_no_stall() -> None:
    steady = _timeline([0, 0, 0, 800, 1600, 2400, 3200, 4000])
    assert longest_stall(steady) == 0.0


def test_a_trickle_after_a_fast_start_is_a_stall() -> None:
    # 100 jobs in the first poll, then 1-2 per poll for 5 s: the first pace is the best.
    trickle = _timeline([0, 0, 100] + [100 + n for n in range(1, 21)])
    assert longest_stall(trickle) == 5.0


def test_the_longest_of_two_stalls_counts_and_start_up_does_not() -> None:
    done = [0] * 8 + [1000, 2000, 2000, 2000, 3000, 3000, 3000, 3000, 3000, 3000, 4000]
    assert longest_stall(_timeline(done)) == 1.25


def test_a_run_that_never_finished_a_job_has_no_stall() -> None:
    assert longest_stall(_timeline([0, 0, 0])) == 0.0
    assert longest_stall([]) == 0.0


def _runs(processed: list[float], stalls: list[float]) -> dict[str, dict[str, list[object]]]:
    return {
        "celery-rabbitmq": {
            "processed": processed,
            "processed_done": [50_000] * len(processed),
            "processed_stall_s": stalls,
            "worker_cpu_ms_per_1000": [300.0] * len(processed),
            "enqueue_single": [700.0, 710.0, 720.0],
        }
    }


def test_the_median_leaves_out_stalled_runs_only() -> None:
    runs = _runs([3353.0, 6.5, 3100.0, 1612.0], [0.0, 19.8, 0.5, 2.0])
    summary = report.summarize(runs)["celery-rabbitmq"]
    assert summary["processed"] == (3353.0 + 3100.0) / 2
    assert summary["enqueue_single"] == 710.0  # other scenarios are not touched


def test_a_run_slow_from_its_first_poll_is_judged_against_the_systems_best() -> None:
    # An even trickle has no pace to fall from: its rate against the other runs tells.
    trickle = _timeline([0, 0] + [2 * n for n in range(1, 81)])
    assert longest_stall(trickle) == 0.0
    runs = _runs([3353.0, 6.5, 1612.0], [0.0, longest_stall(trickle), 0.0])
    assert report.stall_flags(runs["celery-rabbitmq"]) == [False, True, False]
    assert report.summarize(runs)["celery-rabbitmq"]["processed"] == (3353.0 + 1612.0) / 2


def test_when_every_run_stalled_their_median_is_reported_and_said() -> None:
    runs = _runs([6.5, 12.0, 9.0], [19.8, 10.0, 3.0])
    assert report.summarize(runs)["celery-rabbitmq"]["processed"] == 9.0
    assert all("every run stalled" in note for note in report.stall_notes(runs))


def test_runs_recorded_before_stalls_were_measured_are_judged_by_rate() -> None:
    runs = {"pgqueuer": {"processed": [1.0, 2.0, 30.0], "processed_done": [5, 10, 150]}}
    assert report.summarize(runs)["pgqueuer"]["processed"] == 30.0
    notes = report.stall_notes(runs)
    assert notes[0] == "pgqueuer run 1 of 3: 1.0/s, 5 jobs done, longest stall not recorded"
    assert len(notes) == 2


def test_a_stall_is_named_in_the_report() -> None:
    runs = _runs([3353.0, 6.5, 3100.0, 3200.0], [0.0, 19.8, 0.0, 0.0])
    assert report.stall_notes(runs) == [
        "celery-rabbitmq run 2 of 4: 6.5/s, 50,000 jobs done, longest stall 19.8 s"
    ]
    assert report.stall_flags({"processed": [3000.0], "processed_stall_s": [1.9]}) == [False]
    assert report.stall_flags({}) == []


def test_only_a_complete_full_run_may_stand_in_the_doc() -> None:
    full = {
        "plan": {"mode": "full", "analyze_after_preload": True},
        "runs": {system: {} for system in SYSTEMS},
        "meta": {"errors": []},
    }
    assert report.complete(full)
    assert not report.complete({**full, "plan": {"mode": "quick", "analyze_after_preload": True}})
    assert not report.complete({**full, "runs": {"pgqueuer": {}}})
    assert not report.complete({**full, "meta": {"errors": ["pgqueuer process #1: boom"]}})
    assert not report.complete({**full, "plan": {"mode": "full", "analyze_after_preload": False}})
