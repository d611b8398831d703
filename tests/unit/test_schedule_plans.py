"""Schedule specs and ``plan_firing``: what a schedule does after downtime (misfire
policy), while its previous run goes on (overlap policy), within its start and end
dates; and the firing's idempotency key. Pure functions, fixed instants."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.domain.errors import InvalidInput
from conveyor.domain.schedules import (
    DEFAULT_CATCHUP_LIMIT,
    DEFAULT_MISFIRE_GRACE,
    Firing,
    FiringPlan,
    JobTemplate,
    MisfirePolicy,
    OverlapPolicy,
    RunOutcome,
    Schedule,
    ScheduleSource,
    ScheduleSpec,
    change_spec,
    jitter_delay,
    message_id,
    plan_firing,
    schedule_spec,
)
from conveyor.domain.timing import Timing, cron, every, once

NOON = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
HOURLY = cron("0 * * * *")

SKIPPED_MISFIRE = {
    "skip": "missed (misfire policy skip)",
    "run_once": "missed (misfire policy run_once)",
    "run_all": "missed (misfire policy run_all)",
}
STILL_RUNNING = "the previous run was still running"
TOO_MANY = "too many runs waiting"


def make_schedule(
    timing: Timing,
    next_fire_at: datetime | None,
    *,
    pending: tuple[datetime, ...] = (),
    **options: Any,
) -> Schedule:
    """A stored schedule as the scheduler loop reads it."""
    spec = schedule_spec("nightly-report", timing, "reports.build", {"kind": "daily"}, **options)
    return Schedule(
        id=7,
        tenant_id="default",
        spec=spec,
        source=ScheduleSource.API,
        owner="alice",
        revision=1,
        next_fire_at=next_fire_at,
        last_fire_at=None,
        last_job_id=None,
        pending=pending,
        created_at=NOON - timedelta(days=30),
        updated_at=NOON - timedelta(days=30),
    )


def advanced(schedule: Schedule, plan: FiringPlan) -> Schedule:
    """The schedule after the loop carried out ``plan``."""
    return Schedule(
        id=schedule.id,
        tenant_id=schedule.tenant_id,
        spec=schedule.spec,
        source=schedule.source,
        owner=schedule.owner,
        revision=schedule.revision + 1,
        next_fire_at=plan.next_fire_at,
        last_fire_at=schedule.last_fire_at,
        last_job_id=schedule.last_job_id,
        pending=plan.pending,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


def outcomes(plan: FiringPlan) -> list[tuple[datetime, RunOutcome, str]]:
    return [(f.fire_at, f.outcome, f.reason) for f in plan.firings]


ENQUEUED = RunOutcome.ENQUEUED
SKIPPED = RunOutcome.SKIPPED


# -- On time ------------------------------------------------------------------------------


def test_a_fire_time_on_time_creates_one_job_and_moves_on() -> None:
    schedule = make_schedule(HOURLY, NOON)
    plan = plan_firing(schedule, NOON + timedelta(seconds=2), previous_running=False)
    assert plan.firings == (Firing(NOON, ENQUEUED),)
    assert plan.to_start() == [NOON]
    assert plan.next_fire_at == NOON + HOUR
    assert plan.pending == ()


def test_a_fire_time_exactly_now_is_due() -> None:
    plan = plan_firing(make_schedule(HOURLY, NOON), NOON, previous_running=False)
    assert plan.to_start() == [NOON]
    assert plan.next_fire_at == NOON + HOUR


def test_before_the_next_fire_time_nothing_happens() -> None:
    plan = plan_firing(make_schedule(HOURLY, NOON), NOON - MINUTE, previous_running=False)
    assert plan == FiringPlan((), NOON, ())


def test_a_schedule_with_no_next_fire_time_does_nothing() -> None:
    plan = plan_firing(make_schedule(HOURLY, None), NOON, previous_running=False)
    assert plan == FiringPlan((), None, ())


def test_fire_times_in_a_zone_come_out_in_utc() -> None:
    timing = cron("0 19 * * *", "America/Sao_Paulo")
    first = timing.next_after(NOON)
    assert first == datetime(2026, 6, 1, 22, tzinfo=UTC)
    plan = plan_firing(make_schedule(timing, first), first, previous_running=False)
    assert plan.to_start() == [first]
    assert plan.next_fire_at == datetime(2026, 6, 2, 22, tzinfo=UTC)


# -- Misfire policy ------------------------------------------------------------------------

# Down from 07:30 to 11:30: the 08:00, 09:00, 10:00 and 11:00 fire times were missed.
DOWN_FROM = NOON - 4 * HOUR
BACK_AT = NOON - timedelta(minutes=30)
MISSED = [NOON - 4 * HOUR, NOON - 3 * HOUR, NOON - 2 * HOUR, NOON - HOUR]


def test_misfire_skip_records_every_missed_fire_time_as_skipped() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="skip")
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert outcomes(plan) == [(t, SKIPPED, SKIPPED_MISFIRE["skip"]) for t in MISSED]
    assert all("misfire" in f.reason for f in plan.firings)
    assert plan.to_start() == []
    assert plan.next_fire_at == NOON


def test_misfire_skip_still_runs_the_fire_time_that_is_on_time() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="skip")
    plan = plan_firing(schedule, NOON + timedelta(seconds=10), previous_running=False)
    assert outcomes(plan) == [
        *((t, SKIPPED, SKIPPED_MISFIRE["skip"]) for t in MISSED),
        (NOON, ENQUEUED, ""),
    ]
    assert plan.next_fire_at == NOON + HOUR


def test_misfire_run_once_runs_only_the_latest_missed_fire_time() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_once")
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert plan.to_start() == [MISSED[-1]]
    assert outcomes(plan)[:3] == [(t, SKIPPED, SKIPPED_MISFIRE["run_once"]) for t in MISSED[:3]]
    assert plan.firings[3].fire_at == MISSED[-1]
    assert plan.firings[3].outcome is ENQUEUED
    assert plan.next_fire_at == NOON


def test_misfire_run_once_is_the_default() -> None:
    assert make_schedule(HOURLY, NOON).spec.misfire is MisfirePolicy.RUN_ONCE
    plan = plan_firing(make_schedule(HOURLY, DOWN_FROM), BACK_AT, previous_running=False)
    assert plan.to_start() == [MISSED[-1]]


def test_misfire_run_once_prefers_the_on_time_fire_time_over_a_missed_one() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_once")
    plan = plan_firing(schedule, NOON + timedelta(seconds=10), previous_running=False)
    assert plan.to_start() == [NOON]
    assert [f.outcome for f in plan.firings] == [SKIPPED] * 4 + [ENQUEUED]


def test_misfire_run_all_runs_every_missed_fire_time_oldest_first() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all")
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert plan.to_start() == MISSED
    assert [f.outcome for f in plan.firings] == [ENQUEUED] * 4
    assert plan.next_fire_at == NOON


def test_misfire_run_all_keeps_the_latest_fire_times_up_to_the_catchup_limit() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all", catchup_limit=2)
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert plan.to_start() == MISSED[-2:]
    assert plan.next_fire_at == NOON


def test_far_behind_an_interval_jumps_so_the_next_fire_time_is_after_now() -> None:
    # Every minute, down for 200 days: more fire times than the planner walks.
    now = NOON + timedelta(days=200, seconds=30)
    schedule = make_schedule(every(60), NOON, misfire="run_all", catchup_limit=3)
    plan = plan_firing(schedule, now, previous_running=False)
    latest = NOON + timedelta(days=200)
    assert plan.to_start() == [latest - 2 * MINUTE, latest - MINUTE, latest]
    assert plan.next_fire_at == latest + MINUTE
    assert plan.next_fire_at > now


def test_far_behind_run_once_runs_the_latest_missed_fire_time() -> None:
    # Every minute, down for 200 days; with a 10-second grace even the latest fire
    # time (30 s ago) was missed.
    latest = NOON + timedelta(days=200)
    schedule = make_schedule(every(60), NOON, misfire="run_once", catchup_limit=5)
    plan = plan_firing(schedule, latest + timedelta(seconds=30), False, grace=timedelta(seconds=10))
    assert plan.to_start() == [latest]
    assert outcomes(plan)[:-1] == [
        (latest - n * MINUTE, SKIPPED, SKIPPED_MISFIRE["run_once"]) for n in (4, 3, 2, 1)
    ]
    assert plan.next_fire_at == latest + MINUTE


def test_far_behind_with_a_catchup_limit_of_one_still_runs_the_due_fire_time() -> None:
    # Every second, two days down (172,800 fire times): the fire time due right now
    # is on time and must run.
    now = NOON + timedelta(days=2)
    schedule = make_schedule(every(1), NOON, misfire="run_once", catchup_limit=1)
    plan = plan_firing(schedule, now, previous_running=False)
    assert plan.to_start() == [now]
    assert plan.next_fire_at == now + timedelta(seconds=1)


def test_far_behind_an_irregular_cron_still_finds_its_latest_fire_times() -> None:
    # Every minute from 09:00 to 09:59, down for two days: the walk gives up after two
    # catch-up limits of fire times and looks back from now, across the idle hours.
    # At 15:00 the latest fire times are 09:57-09:59 today.
    start = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    now = datetime(2026, 6, 3, 15, 0, tzinfo=UTC)
    schedule = make_schedule(cron("* 9 * * *"), start, misfire="run_all", catchup_limit=3)
    plan = plan_firing(schedule, now, previous_running=False)
    nine_fifty_nine = datetime(2026, 6, 3, 9, 59, tzinfo=UTC)
    assert plan.to_start() == [
        nine_fifty_nine - 2 * MINUTE,
        nine_fifty_nine - MINUTE,
        nine_fifty_nine,
    ]
    assert plan.next_fire_at == datetime(2026, 6, 4, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("misfire", ["skip", "run_once", "run_all"])
def test_a_fire_time_exactly_grace_late_is_on_time(misfire: str) -> None:
    schedule = make_schedule(HOURLY, NOON, misfire=misfire)
    plan = plan_firing(schedule, NOON + DEFAULT_MISFIRE_GRACE, previous_running=False)
    assert outcomes(plan) == [(NOON, ENQUEUED, "")]


def test_a_fire_time_a_microsecond_past_grace_is_missed() -> None:
    schedule = make_schedule(HOURLY, NOON, misfire="skip")
    now = NOON + DEFAULT_MISFIRE_GRACE + timedelta(microseconds=1)
    plan = plan_firing(schedule, now, previous_running=False)
    assert outcomes(plan) == [(NOON, SKIPPED, SKIPPED_MISFIRE["skip"])]


def test_a_missed_fire_time_that_runs_is_an_ordinary_start() -> None:
    schedule = make_schedule(HOURLY, NOON, misfire="run_once")
    plan = plan_firing(schedule, NOON + 2 * MINUTE, previous_running=False)
    assert outcomes(plan) == [(NOON, ENQUEUED, "")]


def test_the_grace_can_be_chosen() -> None:
    schedule = make_schedule(HOURLY, NOON, misfire="skip")
    late = NOON + 5 * MINUTE
    assert plan_firing(schedule, late, False, grace=5 * MINUTE).to_start() == [NOON]
    assert plan_firing(schedule, late, False, grace=4 * MINUTE).to_start() == []


# -- Overlap policy ------------------------------------------------------------------------


def test_overlap_allow_starts_a_run_while_the_previous_one_runs() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="allow")
    plan = plan_firing(schedule, NOON, previous_running=True)
    assert plan.to_start() == [NOON]
    assert plan.pending == ()


def test_overlap_allow_is_the_default_and_starts_every_caught_up_run() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all")
    assert schedule.spec.overlap is OverlapPolicy.ALLOW
    assert plan_firing(schedule, BACK_AT, previous_running=True).to_start() == MISSED


def test_overlap_skip_records_the_fire_time_while_the_previous_run_goes_on() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="skip")
    plan = plan_firing(schedule, NOON, previous_running=True)
    assert outcomes(plan) == [(NOON, SKIPPED, STILL_RUNNING)]
    assert plan.next_fire_at == NOON + HOUR
    assert plan.pending == ()


def test_overlap_skip_starts_the_run_when_nothing_runs() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="skip")
    assert plan_firing(schedule, NOON, previous_running=False).to_start() == [NOON]


def test_overlap_skip_starts_only_the_oldest_of_several_due_fire_times() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all", overlap="skip")
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert outcomes(plan) == [
        (MISSED[0], ENQUEUED, ""),
        *((t, SKIPPED, STILL_RUNNING) for t in MISSED[1:]),
    ]
    assert plan.pending == ()


def test_overlap_queue_holds_the_fire_time_while_the_previous_run_goes_on() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="queue")
    plan = plan_firing(schedule, NOON, previous_running=True)
    assert plan.firings == ()
    assert plan.pending == (NOON,)
    assert plan.next_fire_at == NOON + HOUR


def test_overlap_queue_releases_held_fire_times_oldest_first_one_at_a_time() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="queue")
    plan = plan_firing(schedule, NOON, previous_running=True)
    schedule = advanced(schedule, plan)
    plan = plan_firing(schedule, NOON + HOUR, previous_running=True)
    assert plan.pending == (NOON, NOON + HOUR)
    schedule = advanced(schedule, plan)

    # The previous run finished: the oldest held fire time starts, the other waits.
    plan = plan_firing(schedule, NOON + HOUR + MINUTE, previous_running=False)
    assert outcomes(plan) == [(NOON, ENQUEUED, "")]
    assert plan.pending == (NOON + HOUR,)
    assert plan.next_fire_at == NOON + 2 * HOUR
    schedule = advanced(schedule, plan)

    # That run is going: the next one keeps waiting.
    plan = plan_firing(schedule, NOON + HOUR + 2 * MINUTE, previous_running=True)
    assert plan.firings == ()
    assert plan.pending == (NOON + HOUR,)
    schedule = advanced(schedule, plan)

    plan = plan_firing(schedule, NOON + HOUR + 3 * MINUTE, previous_running=False)
    assert plan.to_start() == [NOON + HOUR]
    assert plan.pending == ()


def test_overlap_queue_starts_at_once_when_nothing_runs() -> None:
    schedule = make_schedule(HOURLY, NOON, overlap="queue")
    plan = plan_firing(schedule, NOON, previous_running=False)
    assert plan.to_start() == [NOON]
    assert plan.pending == ()


def test_overlap_queue_with_several_due_starts_the_oldest_and_holds_the_rest() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all", overlap="queue")
    plan = plan_firing(schedule, BACK_AT, previous_running=False)
    assert plan.to_start() == [MISSED[0]]
    assert plan.pending == tuple(MISSED[1:])


def test_overlap_queue_holds_at_most_the_catchup_limit_and_records_the_dropped() -> None:
    held = (NOON - 3 * HOUR, NOON - 2 * HOUR, NOON - HOUR)
    schedule = make_schedule(HOURLY, NOON, pending=held, overlap="queue", catchup_limit=3)
    plan = plan_firing(schedule, NOON, previous_running=True)
    assert plan.pending == (NOON - 2 * HOUR, NOON - HOUR, NOON)
    assert outcomes(plan) == [(NOON - 3 * HOUR, SKIPPED, TOO_MANY)]
    assert plan.to_start() == []


def test_overlap_queue_caps_the_held_after_downtime_too() -> None:
    schedule = make_schedule(HOURLY, DOWN_FROM, misfire="run_all", overlap="queue", catchup_limit=2)
    plan = plan_firing(schedule, BACK_AT, previous_running=True)
    assert plan.pending == tuple(MISSED[-2:])
    assert plan.to_start() == []


# -- Start and end dates ---------------------------------------------------------------------


def test_the_first_fire_time_waits_for_the_start_date() -> None:
    start = NOON + timedelta(days=3, minutes=30)
    spec = schedule_spec("s", HOURLY, "t", start_at=start)
    assert spec.first_fire_after(NOON) == NOON + timedelta(days=3, hours=1)


def test_a_fire_time_exactly_at_the_start_date_counts() -> None:
    start = NOON + timedelta(days=3)
    spec = schedule_spec("s", HOURLY, "t", start_at=start)
    assert spec.first_fire_after(NOON) == start
    assert spec.upcoming(NOON, 2) == [start, start + HOUR]


def test_no_fire_time_comes_after_the_end_date() -> None:
    spec = schedule_spec("s", HOURLY, "t", end_at=NOON + timedelta(hours=2, minutes=30))
    assert spec.upcoming(NOON - MINUTE, 10) == [NOON, NOON + HOUR, NOON + 2 * HOUR]
    assert spec.within_dates(NOON + 3 * HOUR) is None
    assert spec.first_fire_after(NOON + 2 * HOUR) is None


def test_a_fire_time_exactly_at_the_end_date_counts() -> None:
    spec = schedule_spec("s", HOURLY, "t", end_at=NOON + HOUR)
    assert spec.within_dates(NOON + HOUR) == NOON + HOUR
    assert spec.upcoming(NOON - MINUTE, 10) == [NOON, NOON + HOUR]


def test_upcoming_stops_at_the_earlier_of_until_and_the_end_date() -> None:
    spec = schedule_spec("s", HOURLY, "t", end_at=NOON + 5 * HOUR)
    assert spec.upcoming(NOON - MINUTE, 10, until=NOON + HOUR) == [NOON, NOON + HOUR]
    assert len(spec.upcoming(NOON - MINUTE, 10, until=NOON + 9 * HOUR)) == 6


def test_the_last_fire_time_before_the_end_date_leaves_no_next_one() -> None:
    schedule = make_schedule(HOURLY, NOON, end_at=NOON + timedelta(minutes=30))
    plan = plan_firing(schedule, NOON + timedelta(seconds=1), previous_running=False)
    assert plan.to_start() == [NOON]
    assert plan.next_fire_at is None


def test_catching_up_stops_at_the_end_date() -> None:
    schedule = make_schedule(
        HOURLY, DOWN_FROM, misfire="run_all", end_at=NOON - timedelta(minutes=90)
    )
    plan = plan_firing(schedule, NOON + 3 * HOUR, previous_running=False)
    assert plan.to_start() == MISSED[:3]
    assert plan.next_fire_at is None


# -- One-offs ---------------------------------------------------------------------------------


def test_a_one_off_fires_once_then_has_no_next_fire_time() -> None:
    at = NOON + timedelta(days=1)
    spec = schedule_spec("s", once(at), "t")
    first = spec.first_fire_after(NOON)
    assert first == at
    schedule = make_schedule(once(at), first)
    plan = plan_firing(schedule, at + timedelta(seconds=1), previous_running=False)
    assert plan.to_start() == [at]
    assert plan.next_fire_at is None
    again = plan_firing(advanced(schedule, plan), at + HOUR, previous_running=False)
    assert again == FiringPlan((), None, ())


def test_a_one_off_in_the_past_never_fires() -> None:
    spec = schedule_spec("s", once(NOON - HOUR), "t")
    assert spec.first_fire_after(NOON) is None
    assert spec.upcoming(NOON, 5) == []


def test_a_missed_one_off_follows_the_misfire_policy() -> None:
    at = NOON - HOUR
    skipped = plan_firing(make_schedule(once(at), at, misfire="skip"), NOON, False)
    assert outcomes(skipped) == [(at, SKIPPED, SKIPPED_MISFIRE["skip"])]
    ran = plan_firing(make_schedule(once(at), at, misfire="run_once"), NOON, False)
    assert ran.to_start() == [at]
    assert ran.next_fire_at is None


# -- Property: every fire time is accounted for once ------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    misfire=st.sampled_from(list(MisfirePolicy)),
    overlap=st.sampled_from(list(OverlapPolicy)),
    steps=st.lists(st.tuples(st.integers(1, 6 * 3600), st.booleans()), min_size=1, max_size=25),
)
def test_no_fire_time_is_started_or_recorded_twice(
    misfire: MisfirePolicy, overlap: OverlapPolicy, steps: list[tuple[int, bool]]
) -> None:
    schedule = make_schedule(
        every(900), NOON, misfire=misfire, overlap=overlap, catchup_limit=DEFAULT_CATCHUP_LIMIT
    )
    now = NOON
    seen: list[datetime] = []
    for seconds, running in steps:
        now += timedelta(seconds=seconds)
        plan = plan_firing(schedule, now, previous_running=running)
        times = [f.fire_at for f in plan.firings]
        assert times == sorted(times)
        assert all(t <= now for t in times)
        assert plan.next_fire_at is not None
        assert plan.next_fire_at > now
        assert list(plan.pending) == sorted(plan.pending)
        assert len(plan.pending) <= schedule.spec.catchup_limit
        if overlap is not OverlapPolicy.QUEUE:
            assert plan.pending == ()
        if overlap is not OverlapPolicy.ALLOW:
            assert len(plan.to_start()) <= 1
            if running:
                assert plan.to_start() == []
        seen += times
        schedule = advanced(schedule, plan)
    assert len(seen) == len(set(seen))
    # Nothing is lost: each fire time up to now was started, recorded or is waiting.
    due = {
        NOON + n * timedelta(minutes=15) for n in range((now - NOON) // timedelta(minutes=15) + 1)
    }
    assert due == set(seen) | set(schedule.pending)


@settings(max_examples=100, deadline=None)
@given(steps=st.lists(st.integers(1, 3 * 3600), min_size=1, max_size=25))
def test_run_all_with_overlap_allowed_starts_every_fire_time_exactly_once(
    steps: list[int],
) -> None:
    schedule = make_schedule(every(600), NOON, misfire="run_all", overlap="allow")
    now = NOON
    started: list[datetime] = []
    for seconds in steps:
        now += timedelta(seconds=seconds)
        plan = plan_firing(schedule, now, previous_running=True)
        started += plan.to_start()
        schedule = advanced(schedule, plan)
    expected = []
    current = NOON
    while current <= now:
        expected.append(current)
        current += timedelta(minutes=10)
    assert started == expected


# -- Idempotency key --------------------------------------------------------------------------


def test_the_message_id_is_the_same_whatever_zone_the_fire_time_is_in() -> None:
    in_utc = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    in_berlin = in_utc.astimezone(ZoneInfo("Europe/Berlin"))
    in_sao_paulo = in_utc.astimezone(ZoneInfo("America/Sao_Paulo"))
    assert message_id(7, in_utc) == "schedule:7:2026-03-29T01:00:00+00:00"
    assert message_id(7, in_berlin) == message_id(7, in_utc)
    assert message_id(7, in_sao_paulo) == message_id(7, in_utc)
    assert message_id(7, in_utc.astimezone(ZoneInfo("UTC"))) == message_id(7, in_utc)


def test_the_message_id_differs_by_schedule_and_by_fire_time() -> None:
    assert message_id(7, NOON) != message_id(8, NOON)
    assert message_id(7, NOON) != message_id(7, NOON + timedelta(seconds=1))


def test_a_recomputed_fire_time_gives_the_same_message_id() -> None:
    # Two schedulers computing the same fire time from different starting points.
    timing = cron("30 2 * * *", "Europe/Berlin")
    one = timing.next_after(datetime(2026, 3, 28, 12, tzinfo=UTC))
    other = timing.next_after(datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC))
    assert one is not None
    assert other is not None
    assert message_id(7, one) == message_id(7, other) == "schedule:7:2026-03-29T01:00:00+00:00"


# -- Jitter -----------------------------------------------------------------------------------


def test_no_jitter_means_no_delay() -> None:
    assert jitter_delay(schedule_spec("s", HOURLY, "t")) == 0.0


def test_jitter_is_drawn_between_zero_and_the_limit() -> None:
    spec = schedule_spec("s", HOURLY, "t", jitter=30)
    rng = random.Random(1)
    delays = [jitter_delay(spec, rng) for _ in range(200)]
    assert all(0.0 <= d <= 30.0 for d in delays)
    assert max(delays) > 20
    assert min(delays) < 10


# -- schedule_spec and change_spec ------------------------------------------------------------


def test_a_spec_keeps_its_fields_with_defaults() -> None:
    spec = schedule_spec("nightly-report", HOURLY, "reports.build", {"kind": "daily"})
    assert spec == ScheduleSpec(
        name="nightly-report",
        timing=HOURLY,
        job=JobTemplate("reports.build", {"kind": "daily"}),
    )
    assert spec.enabled is True
    assert spec.misfire is MisfirePolicy.RUN_ONCE
    assert spec.overlap is OverlapPolicy.ALLOW
    assert spec.catchup_limit == DEFAULT_CATCHUP_LIMIT
    assert spec.job.options() == {}


def test_a_spec_converts_its_dates_to_utc_and_its_policies_to_enums() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    spec = schedule_spec(
        "s",
        HOURLY,
        "t",
        queue="reports",
        priority=3,
        start_at=datetime(2026, 6, 1, 14, tzinfo=berlin),
        end_at=datetime(2026, 7, 1, 14, tzinfo=berlin),
        misfire="run_all",
        overlap="queue",
        jitter=5,
    )
    assert spec.start_at == NOON
    assert spec.start_at.tzinfo is UTC
    assert spec.end_at == NOON + timedelta(days=30)
    assert spec.misfire is MisfirePolicy.RUN_ALL
    assert spec.overlap is OverlapPolicy.QUEUE
    assert spec.jitter == 5.0
    assert spec.job.options() == {"queue": "reports", "priority": 3}


NAME_PROBLEM = "must be 1-128 letters, digits or '_.:-', starting with a letter or digit"


@pytest.mark.parametrize(
    ("options", "field", "problem"),
    [
        ({"name": ""}, "name", NAME_PROBLEM),
        ({"name": "nightly report"}, "name", NAME_PROBLEM),
        ({"task": "reports build"}, "task", NAME_PROBLEM),
        ({"queue": "bad queue"}, "queue", NAME_PROBLEM),
        ({"priority": 10}, "priority", "must be a whole number from 0 to 9"),
        ({"priority": True}, "priority", "must be a whole number from 0 to 9"),
        ({"payload": {"x": float("nan")}}, "payload", None),
        ({"assignee": ""}, "assignee", "must be a non-empty string of at most 255 characters"),
        ({"enabled": "yes"}, "enabled", "must be true or false"),
        ({"jitter": -1}, "jitter", "must be from 0 to 3600 seconds"),
        ({"jitter": 3601}, "jitter", "must be from 0 to 3600 seconds"),
        ({"jitter": float("nan")}, "jitter", "must be from 0 to 3600 seconds"),
        ({"jitter": "5"}, "jitter", "must be a number of seconds"),
        ({"jitter": True}, "jitter", "must be a number of seconds"),
        ({"misfire": "never"}, "misfire", "must be one of skip, run_once, run_all"),
        ({"overlap": "wait"}, "overlap", "must be one of allow, skip, queue"),
        ({"catchup_limit": 0}, "catchup_limit", "must be a whole number from 1 to 10000"),
        ({"catchup_limit": 10_001}, "catchup_limit", "must be a whole number from 1 to 10000"),
        ({"catchup_limit": 2.0}, "catchup_limit", "must be a whole number from 1 to 10000"),
        ({"catchup_limit": True}, "catchup_limit", "must be a whole number from 1 to 10000"),
        (
            {"start_at": datetime(2026, 6, 1)},
            "start_at",
            "must be a date-time with a time zone",
        ),
        ({"end_at": "2026-06-01"}, "end_at", "must be a date-time with a time zone"),
        ({"start_at": NOON, "end_at": NOON - HOUR}, "end_at", "must be after start_at"),
        ({"start_at": NOON, "end_at": NOON}, "end_at", "must be after start_at"),
        (
            {"description": "x" * 1001},
            "description",
            "must be text of at most 1000 characters",
        ),
        ({"description": None}, "description", "must be text of at most 1000 characters"),
        ({"description": "a\x00b"}, "description", "must not contain NUL characters"),
    ],
)
def test_a_bad_spec_field_is_refused_by_name(
    options: dict[str, Any], field: str, problem: str | None
) -> None:
    arguments: dict[str, Any] = {"name": "s", "timing": HOURLY, "task": "t", **options}
    with pytest.raises(InvalidInput) as caught:
        schedule_spec(**arguments)
    assert caught.value.field == field
    if problem is not None:
        assert caught.value.problem == problem


def test_end_before_start_is_refused_even_across_zones() -> None:
    # 13:30 in Berlin is 11:30 UTC: before a noon-UTC start.
    with pytest.raises(InvalidInput, match=r"^end_at: must be after start_at$"):
        schedule_spec(
            "s",
            HOURLY,
            "t",
            start_at=NOON,
            end_at=datetime(2026, 6, 1, 13, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        )


def test_a_description_of_the_maximum_length_is_accepted() -> None:
    assert schedule_spec("s", HOURLY, "t", description="x" * 1000).description == "x" * 1000


def test_change_spec_applies_changes_and_keeps_the_rest() -> None:
    spec = schedule_spec("nightly-report", HOURLY, "reports.build", queue="reports", jitter=5)
    changed = change_spec(spec, {"misfire": "skip", "timing": every(60), "priority": 2})
    assert changed.misfire is MisfirePolicy.SKIP
    assert changed.timing == every(60)
    assert changed.job == JobTemplate("reports.build", {}, "reports", 2)
    assert changed.name == "nightly-report"
    assert changed.jitter == 5.0
    assert change_spec(spec, {}) == spec


def test_change_spec_refuses_an_unknown_field_by_name() -> None:
    spec = schedule_spec("s", HOURLY, "t")
    with pytest.raises(InvalidInput) as caught:
        change_spec(spec, {"cron_expression": "0 * * * *", "zzz": 1})
    assert (caught.value.field, caught.value.problem) == (
        "cron_expression",
        "is not a schedule field",
    )


def test_change_spec_revalidates_the_result() -> None:
    spec = schedule_spec("s", HOURLY, "t", start_at=NOON)
    with pytest.raises(InvalidInput) as caught:
        change_spec(spec, {"end_at": NOON - HOUR})
    assert caught.value.field == "end_at"
    with pytest.raises(InvalidInput) as caught:
        change_spec(spec, {"catchup_limit": 0})
    assert caught.value.field == "catchup_limit"
