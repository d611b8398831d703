"""The benchmark notices a processing run that stalled and leaves it out of the median."""

from __future__ import annotations

from benchmarks import report
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


def test_when_every_run_stalled_their_median_is_reported_and_said() -> None:
    runs = _runs([6.5, 12.0, 9.0], [19.8, 10.0, 3.0])
    result = {"runs": runs, "summary": report.summarize(runs)}
    assert result["summary"]["celery-rabbitmq"]["processed"] == 9.0
    assert "every run stalled" in "\n".join(report._stall_lines(result))


def test_runs_recorded_before_stalls_were_measured_count_as_clean() -> None:
    runs = {"pgqueuer": {"processed": [1.0, 2.0, 30.0]}}
    assert report.summarize(runs)["pgqueuer"]["processed"] == 2.0
    assert report._stall_lines({"runs": runs}) == []


def test_a_stall_is_named_in_the_report() -> None:
    runs = _runs([3353.0, 6.5, 3100.0, 3200.0], [0.0, 19.8, 0.0, 0.0])
    lines = "\n".join(report._stall_lines({"runs": runs}))
    assert "celery-rabbitmq run 2 of 4: 6.5/s, 50,000 jobs done, a stall of 19.8 s" in lines
    assert report.stalled({"processed_stall_s": 19.8})
    assert not report.stalled({"processed_stall_s": 1.9})
    assert not report.stalled({"enqueue_single": 700.0})
