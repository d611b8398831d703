"""``plan_runs``: the runs a calendar shows, merged in time order from every schedule,
lazily, with per-bucket caps (a day keeps a few runs, a busy schedule cannot crowd
the others out)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from conveyor.domain.calendar_plan import plan_runs
from conveyor.domain.schedules import Schedule
from conveyor.domain.timing import cron, every
from conveyor.web.dashboard.calendar import Cells
from tests.unit.test_schedule_plans import make_schedule

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


class Days:
    """Buckets of one UTC day."""

    def __init__(self, keep: int, keep_each: int) -> None:
        self.keep = keep
        self.keep_each = keep_each

    def key(self, at: datetime) -> Hashable:
        """The day."""
        return at.date()

    def end(self, at: datetime) -> datetime:
        """The next midnight."""
        return datetime.combine(at.date() + DAY, datetime.min.time(), tzinfo=UTC)


def _schedules() -> list[Schedule]:
    hourly = replace(make_schedule(cron("30 * * * *"), NOON + timedelta(minutes=30)), id=1)
    minutely = replace(make_schedule(every(60), NOON), id=2)
    return [hourly, minutely]


def test_runs_of_every_schedule_come_out_in_time_order_up_to_the_limit() -> None:
    plan = plan_runs(_schedules(), NOON, NOON + timedelta(hours=2), limit=40)
    times = [run.at for run in plan.runs]
    assert times == sorted(times) and len(times) == 40
    assert plan.truncated
    assert {run.schedule_id for run in plan.runs} == {1, 2}  # 12:30 is among the first 40
    whole = plan_runs(_schedules(), NOON, NOON + timedelta(hours=1), limit=1000)
    assert len(whole.runs) == 60 + 1 and not whole.truncated


def test_a_bucket_keeps_a_few_runs_and_each_schedule_its_share() -> None:
    plan = plan_runs(_schedules(), NOON, NOON + 30 * DAY, limit=1000, buckets=Days(3, 1))
    by_day: dict[Hashable, list[int]] = {}
    for run in plan.runs:
        by_day.setdefault(run.at.date(), []).append(run.schedule_id)
    assert len(by_day) == 31  # noon to noon: two part days
    assert all(sorted(ids) == [1, 2] for ids in by_day.values())  # the busy one keeps 1 a day
    assert plan.full == set(by_day) and not plan.truncated


def test_a_paused_schedule_or_one_past_its_end_plans_nothing() -> None:
    hourly, minutely = _schedules()
    paused = replace(minutely, spec=replace(minutely.spec, enabled=False))
    plan = plan_runs([hourly, paused], NOON, NOON + timedelta(hours=3), limit=100)
    assert [run.at.minute for run in plan.runs] == [30, 30, 30]
    assert plan_runs([hourly], NOON + DAY, NOON + DAY, limit=100).runs == []


def test_a_next_fire_time_behind_the_start_plans_from_the_start() -> None:
    late = replace(make_schedule(cron("0 * * * *"), NOON - timedelta(hours=5)), id=3)
    plan = plan_runs([late], NOON, NOON + timedelta(hours=2), limit=10)
    assert [run.at for run in plan.runs] == [NOON, NOON + timedelta(hours=1)]


def test_a_week_across_a_half_hour_clock_change_is_planned_to_its_end() -> None:
    """Lord Howe turns its clocks back 30 minutes on 2026-04-05: the repeated half hour
    must not trap the planner in one hour."""
    zone = ZoneInfo("Australia/Lord_Howe")
    minutely = replace(make_schedule(every(60), datetime(2026, 4, 3, 13, tzinfo=UTC)), id=5)
    start = datetime(2026, 4, 3, 13, tzinfo=UTC)
    end = start + 7 * DAY
    plan = plan_runs([minutely], start, end, limit=5000, buckets=Cells.of("week", zone))
    assert not plan.truncated and plan.until is None
    assert plan.runs[-1].at > end - timedelta(hours=1)
    hours = {(r.at.astimezone(zone).date(), r.at.astimezone(zone).hour) for r in plan.runs}
    assert len(hours) == 7 * 24  # every local hour of the week, one of them 90 minutes long


def test_a_plan_cut_by_its_limit_says_how_far_it_got() -> None:
    plan = plan_runs(_schedules(), NOON, NOON + DAY, limit=10)
    assert plan.truncated and plan.until is not None
    assert all(run.at < plan.until for run in plan.runs)
