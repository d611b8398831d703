"""The schedule endpoints: create, preview, read, change, pause, resume, delete, runs and
the calendar, with the personas' permissions and the domain's exact error messages.

Time is moved by replacing the store's clock (every service reads it), after the
personas signed in; the scheduler is driven with ``run_once``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.domain.schedules import ScheduleSource, schedule_spec
from conveyor.domain.timing import cron
from tests.integration.api.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

URL = "/api/v1/schedules"
NIGHTLY = {
    "name": "nightly-report",
    "cron": "0 19 * * *",
    "timezone": "America/Sao_Paulo",
    "task": "reports.build",
    "payload": {"customer": 42},
}


async def _create(api: Api, body: dict[str, Any], who: str = "alice") -> Any:
    response = await api.call("POST", URL, who, json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def _ok(api: Api, method: str, path: str, who: str = "alice", **kwargs: Any) -> Any:
    response = await api.call(method, path, who, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


async def _member(api: Api) -> None:
    """Mia, a member of acme."""
    body = {"email": "mia@acme.test", "role": "member", "password": PASSWORD}
    response = await api.call("POST", "/api/v1/users", "alice", json=body)
    assert response.status_code == 201, response.text
    api.headers["mia"] = await api.login("mia@acme.test")


def _freeze(api: Api, at: datetime) -> Callable[[timedelta], None]:
    """Stop the server's clock at ``at``; the function returned moves it on."""
    now = [at]
    api.server.store.clock = lambda: now[0]

    def move(by: timedelta) -> None:
        now[0] += by

    return move


def _times(runs: list[dict[str, str]], key: str = "local") -> list[str]:
    return [run[key] for run in runs]


async def test_a_schedule_is_created_listed_read_changed_and_deleted(personas: Api) -> None:
    created = await _create(personas, NIGHTLY)
    assert created | {"id": 0, "created_at": "", "updated_at": "", "next_runs": []} == {
        "id": 0,
        "name": "nightly-report",
        "kind": "cron",
        "cron": "0 19 * * *",
        "interval": None,
        "at": None,
        "timezone": "America/Sao_Paulo",
        "timing_description": "At 19:00 every day (America/Sao_Paulo)",
        "task": "reports.build",
        "payload": {"customer": 42},
        "queue": None,
        "priority": None,
        "assignee": None,
        "enabled": True,
        "start_at": None,
        "end_at": None,
        "jitter": 0.0,
        "description": "",
        "misfire": "run_once",
        "overlap": "allow",
        "catchup_limit": 100,
        "source": "api",
        "owner": "user:alice@acme.test",
        "revision": created["revision"],
        "next_fire_at": created["next_fire_at"],
        "last_fire_at": None,
        "last_job_id": None,
        "pending": [],
        "created_at": "",
        "updated_at": "",
        "next_runs": [],
    }
    runs = created["next_runs"]
    assert len(runs) == 5
    assert all(run["local"].endswith("T19:00:00-03:00") for run in runs)
    assert all(run["utc"].endswith("T22:00:00Z") for run in runs)
    assert created["next_fire_at"] == runs[0]["utc"]

    schedule_id = created["id"]
    listed = await _ok(personas, "GET", URL)
    assert [s["id"] for s in listed] == [schedule_id]
    read = await _ok(personas, "GET", f"{URL}/{schedule_id}", params={"count": 2})
    assert _times(read["next_runs"]) == _times(runs[:2])

    body = {"description": "for the board", "priority": 1, "revision": created["revision"]}
    changed = await _ok(personas, "PATCH", f"{URL}/{schedule_id}", json=body)
    assert (changed["description"], changed["priority"]) == ("for the board", 1)
    assert changed["revision"] > created["revision"]
    assert changed["cron"] == "0 19 * * *"

    deleted = await personas.call("DELETE", f"{URL}/{schedule_id}", "alice")
    assert deleted.status_code == 204
    gone = await personas.call("GET", f"{URL}/{schedule_id}", "alice")
    assert gone.status_code == 404
    assert await _ok(personas, "GET", URL) == []


async def test_preview_stores_nothing_and_follows_daylight_saving(personas: Api) -> None:
    # New York springs forward on 2027-03-14: 02:30 does not exist that day, so the run
    # is at the first instant after the gap, 03:00 EDT.
    body = {
        "cron": "30 2 * * *",
        "timezone": "America/New_York",
        "start_at": "2027-03-12T00:00:00-05:00",
    }
    preview = await _ok(personas, "POST", f"{URL}/preview", json=body, params={"count": 4})
    assert preview == {
        "description": "At 02:30 every day (America/New_York)",
        "timezone": "America/New_York",
        "next_runs": [
            {"local": "2027-03-12T02:30:00-05:00", "utc": "2027-03-12T07:30:00Z"},
            {"local": "2027-03-13T02:30:00-05:00", "utc": "2027-03-13T07:30:00Z"},
            {"local": "2027-03-14T03:00:00-04:00", "utc": "2027-03-14T07:00:00Z"},
            {"local": "2027-03-15T02:30:00-04:00", "utc": "2027-03-15T06:30:00Z"},
        ],
    }
    assert await _ok(personas, "GET", URL) == []


async def test_preview_counts_from_the_server_clock(personas: Api) -> None:
    _freeze(personas, datetime(2030, 6, 1, 12, 7, tzinfo=UTC))
    body = {"interval": "15m", "end_at": "2030-06-01T13:00:00Z"}
    preview = await _ok(personas, "POST", f"{URL}/preview", json=body, params={"count": 10})
    assert preview["description"] == "Every 15 minutes"
    assert _times(preview["next_runs"], "utc") == [
        "2030-06-01T12:15:00Z",
        "2030-06-01T12:30:00Z",
        "2030-06-01T12:45:00Z",
        "2030-06-01T13:00:00Z",
    ]


async def test_an_interval_counts_from_its_start(personas: Api) -> None:
    _freeze(personas, datetime(2030, 6, 1, 12, 0, tzinfo=UTC))
    body = {
        "name": "poll",
        "task": "feeds.poll",
        "interval": 600,
        "start_at": "2030-06-01T12:07:00Z",
    }
    created = await _create(personas, body)
    assert (created["kind"], created["interval"]) == ("interval", 600.0)
    assert _times(created["next_runs"], "utc")[:2] == [
        "2030-06-01T12:07:00Z",
        "2030-06-01T12:17:00Z",
    ]
    moved = {"start_at": "2030-06-01T12:08:00Z"}
    changed = await _ok(personas, "PATCH", f"{URL}/{created['id']}", json=moved)
    assert _times(changed["next_runs"], "utc")[:2] == [
        "2030-06-01T12:08:00Z",
        "2030-06-01T12:18:00Z",
    ]


async def test_changing_only_the_zone_keeps_the_cron_and_reads_it_there(personas: Api) -> None:
    created = await _create(personas, NIGHTLY)
    body = {"timezone": "Europe/Berlin"}
    changed = await _ok(personas, "PATCH", f"{URL}/{created['id']}", json=body)
    assert (changed["cron"], changed["timezone"]) == ("0 19 * * *", "Europe/Berlin")
    assert changed["timing_description"] == "At 19:00 every day (Europe/Berlin)"
    assert all("T19:00:00+0" in run["local"] for run in changed["next_runs"])

    body = {"interval": "2h"}
    changed = await _ok(personas, "PATCH", f"{URL}/{created['id']}", json=body)
    assert (changed["kind"], changed["cron"], changed["interval"]) == ("interval", None, 7200.0)
    assert changed["timezone"] == "Europe/Berlin"


async def test_a_one_off_runs_once_at_its_time(personas: Api) -> None:
    _freeze(personas, datetime(2030, 6, 1, 12, 0, tzinfo=UTC))
    body = {"name": "launch", "task": "launch.go", "at": "2030-06-02T09:00:00-03:00"}
    created = await _create(personas, body | {"timezone": "America/Sao_Paulo"})
    assert created["at"] == "2030-06-02T09:00:00-03:00"
    assert created["timing_description"] == "Once, at 2030-06-02 09:00:00 (America/Sao_Paulo)"
    assert created["next_runs"] == [
        {"local": "2030-06-02T09:00:00-03:00", "utc": "2030-06-02T12:00:00Z"}
    ]


@pytest.mark.parametrize(
    ("change", "field", "detail"),
    [
        ({"cron": "61 * * * *"}, "cron", "cron: minute field: 61 is out of range 0-59"),
        (
            {"cron": "0 19 * *"},
            "cron",
            "cron: has 4 fields; give 5 (minute hour day-of-month month day-of-week) "
            "or 6 (with seconds first)",
        ),
        ({"cron": None}, "cron", "cron: give one of cron, interval or at"),
        (
            {"interval": 60},
            "interval",
            "interval: give only one of cron, interval and at (cron too)",
        ),
        (
            {"timezone": "America/Sao Paulo"},
            "timezone",
            "timezone: 'America/Sao Paulo' is not a known IANA time zone "
            "(did you mean America/Sao_Paulo?)",
        ),
        (
            {"cron": None, "interval": "soon"},
            "interval",
            "interval: 'soon' is not a duration like 30s, 15m, 2h or 1d",
        ),
        (
            {"cron": None, "interval": True},
            "interval",
            "interval: must be a number of seconds",
        ),
        ({"cron": None, "at": "2020-01-01T00:00:00Z"}, "at", "at: is in the past"),
        (
            {"cron": None, "at": "2099-01-01T00:00:00"},
            "at",
            "at: must be a date-time with a time zone",
        ),
        (
            {"end_at": "2020-01-01T00:00:00Z", "start_at": "2021-01-01T00:00:00Z"},
            "end_at",
            "end_at: must be after start_at",
        ),
        (
            {"catchup_limit": 0},
            "catchup_limit",
            "catchup_limit: must be a whole number from 1 to 10000",
        ),
        ({"jitter": -1}, "jitter", "jitter: must be from 0 to 3600 seconds"),
        (
            {"start_at": "9999-12-31T23:59:59-10:00"},
            "start_at",
            "start_at: must be a date-time from 1970 to 2999",
        ),
        ({"timezone": "America"}, "timezone", "timezone: 'America' is not a known IANA time zone"),
        ({"name": "no spaces"}, "name", None),
        ({"task": ""}, "task", None),
        ({"misfire": "sometimes"}, "misfire", None),
        ({"surprise": 1}, "surprise", None),
    ],
)
async def test_bad_input_is_a_problem_naming_the_field(
    personas: Api, change: dict[str, Any], field: str, detail: str | None
) -> None:
    response = await personas.call("POST", URL, "alice", json=NIGHTLY | change)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["field"] == field
    if detail is not None:
        assert problem["detail"] == detail
    assert await _ok(personas, "GET", URL) == []


async def test_preview_and_change_report_the_same_problems(personas: Api) -> None:
    bad = {"cron": "61 * * * *"}
    preview = await personas.call("POST", f"{URL}/preview", "alice", json=bad)
    assert (preview.status_code, preview.json()["field"]) == (422, "cron")
    assert preview.json()["detail"] == "cron: minute field: 61 is out of range 0-59"
    created = await _create(personas, NIGHTLY)
    change = await personas.call("PATCH", f"{URL}/{created['id']}", "alice", json=bad)
    assert (change.status_code, change.json()["detail"]) == (422, preview.json()["detail"])
    both = await personas.call(
        "PATCH", f"{URL}/{created['id']}", "alice", json={"cron": "* * * * *", "at": 0}
    )
    assert (both.status_code, both.json()["field"]) == (422, "at")


async def test_an_agent_sees_no_schedules(personas: Api) -> None:
    created = await _create(personas, NIGHTLY)
    for method, path, body in [
        ("GET", URL, None),
        ("POST", URL, NIGHTLY | {"name": "carls"}),
        ("POST", f"{URL}/preview", {"cron": "* * * * *"}),
        ("GET", f"{URL}/{created['id']}", None),
        ("POST", f"{URL}/{created['id']}/pause", None),
        ("GET", f"{URL}/occurrences?start=2030-01-01T00:00:00Z&end=2030-01-02T00:00:00Z", None),
    ]:
        response = await personas.call(method, path, "carl", json=body)
        assert response.status_code == 403, f"{method} {path}: {response.text}"


async def test_another_tenants_schedule_is_not_found(personas: Api) -> None:
    created = await _create(personas, NIGHTLY)
    path = f"{URL}/{created['id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"description": "mine now"}),
        ("DELETE", "", None),
        ("POST", "/pause", None),
        ("POST", "/resume", None),
        ("GET", "/runs", None),
    ]:
        response = await personas.call(method, path + suffix, "bob", json=body)
        assert response.status_code == 404, f"{method} {suffix}: {response.text}"
    assert await _ok(personas, "GET", URL, "bob") == []
    assert (await _ok(personas, "GET", path))["revision"] == created["revision"]


async def test_only_owners_schedule_shell_jobs(personas: Api) -> None:
    await _member(personas)
    shell = NIGHTLY | {"name": "cleanup", "task": "shell", "payload": {"command": "true"}}
    switched_off = await personas.call("POST", URL, "alice", json=shell)
    assert switched_off.status_code == 422, switched_off.text
    assert "shell tasks are disabled" in switched_off.json()["detail"]
    personas.server.settings.shell_tasks = True
    refused = await personas.call("POST", URL, "mia", json=shell)
    assert refused.status_code == 403, refused.text
    mine = await _create(personas, NIGHTLY, who="mia")
    to_shell = await personas.call("PATCH", f"{URL}/{mine['id']}", "mia", json={"task": "shell"})
    assert to_shell.status_code == 403, to_shell.text
    assert (await _create(personas, shell))["task"] == "shell"


async def test_a_stale_revision_is_a_conflict(personas: Api) -> None:
    created = await _create(personas, NIGHTLY)
    path = f"{URL}/{created['id']}"
    first = {"description": "first", "revision": created["revision"]}
    await _ok(personas, "PATCH", path, json=first)
    late = {"description": "second", "revision": created["revision"]}
    response = await personas.call("PATCH", path, "alice", json=late)
    assert response.status_code == 409, response.text
    assert "read it again" in response.json()["detail"]
    assert (await _ok(personas, "GET", path))["description"] == "first"


async def test_a_name_is_unique_in_its_tenant(personas: Api) -> None:
    await _create(personas, NIGHTLY)
    again = await personas.call("POST", URL, "alice", json=NIGHTLY)
    assert again.status_code == 409, again.text
    assert (await _create(personas, NIGHTLY, who="bob"))["name"] == NIGHTLY["name"]


async def test_pause_and_resume(personas: Api) -> None:
    _freeze(personas, datetime(2030, 6, 1, 12, 0, tzinfo=UTC))
    created = await _create(personas, NIGHTLY)
    paused = await _ok(personas, "POST", f"{URL}/{created['id']}/pause")
    assert (paused["enabled"], paused["next_runs"]) == (False, [])
    resumed = await _ok(personas, "POST", f"{URL}/{created['id']}/resume")
    assert resumed["enabled"] is True
    assert resumed["next_runs"] == created["next_runs"]


async def test_a_schedule_declared_in_code_is_paused_here_but_changed_in_code(
    personas: Api,
) -> None:
    now = personas.server.now()
    spec = schedule_spec("digest", cron("0 7 * * *"), "mail.digest")
    stored = await personas.server.schedule_store.add(
        "acme", spec, ScheduleSource.CODE, "code", spec.first_fire_after(now), now
    )
    path = f"{URL}/{stored.id}"
    response = await personas.call("PATCH", path, "alice", json={"cron": "0 8 * * *"})
    assert response.status_code == 409, response.text
    assert "@app.periodic" in response.json()["detail"]
    paused = await _ok(personas, "POST", f"{path}/pause")
    assert (paused["source"], paused["enabled"]) == ("code", False)


async def test_the_calendar_shows_past_runs_and_planned_ones_in_the_zone_asked(
    personas: Api,
) -> None:
    scheduler = personas.server.scheduler
    assert scheduler is not None
    start = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    move = _freeze(personas, start)
    hourly = await _create(personas, {"name": "hourly", "task": "feeds.poll", "interval": "1h"})
    await _create(personas, NIGHTLY)
    for step in (timedelta(hours=1, seconds=30), timedelta(hours=1)):
        move(step)  # to 13:00:30, then 14:00:30 UTC: each hour's run fires on time
        await scheduler.run_once()
    move(timedelta(minutes=10))
    await scheduler.run_once()  # nothing new is due: the runs above are not repeated

    query = {
        "start": "2030-06-01T12:00:00Z",
        "end": "2030-06-02T12:00:00Z",
        "tz": "America/Sao_Paulo",
    }
    calendar = await _ok(personas, "GET", f"{URL}/occurrences", params=query)
    assert (calendar["timezone"], calendar["truncated"]) == ("America/Sao_Paulo", False)
    assert calendar["start"] == "2030-06-01T09:00:00-03:00"
    seen = [(o["schedule"], o["at"], o["planned"], o["outcome"]) for o in calendar["items"]]
    past = [("hourly", f"2030-06-01T{h}:00:00-03:00", False, "enqueued") for h in ("10", "11")]
    assert seen[:2] == past
    assert all(o["job_id"] is not None and o["job_state"] for o in calendar["items"][:2])
    planned = [o for o in seen[2:] if o[0] == "hourly"]
    assert planned[0] == ("hourly", "2030-06-01T12:00:00-03:00", True, None)
    assert len(planned) == 21  # 15:00 UTC up to the end, 12:00 UTC the next day
    assert ("nightly-report", "2030-06-01T19:00:00-03:00", True, None) in seen

    runs = await _ok(personas, "GET", f"{URL}/{hourly['id']}/runs", params={"limit": 1})
    assert [r["fire_at"] for r in runs["items"]] == ["2030-06-01T14:00:00Z"]
    older = {"limit": 1, "before": runs["next_cursor"]}
    rest = await _ok(personas, "GET", f"{URL}/{hourly['id']}/runs", params=older)
    assert [r["fire_at"] for r in rest["items"]] == ["2030-06-01T13:00:00Z"]
    assert rest["items"][0]["outcome"] == "enqueued"
    job = await _ok(personas, "GET", f"/api/v1/jobs/{rest['items'][0]['job_id']}")
    assert job["job"]["task"] == "feeds.poll"

    few = await _ok(personas, "GET", f"{URL}/occurrences", params=query | {"limit": 3})
    assert (len(few["items"]), few["truncated"]) == (3, True)
    assert await _ok(personas, "GET", f"{URL}/occurrences", "bob", params=query) == {
        **calendar,
        "items": [],
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"tz": "Mars/Olympus"}, "tz"),
        ({"end": "2030-06-01T00:00:00Z"}, "end"),
        ({"end": "2032-01-01T00:00:00Z"}, "end"),
        ({"start": "2030-06-01T12:00:00"}, "start"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ({"tz": "America"}, "tz"),
    ],
)
async def test_a_bad_calendar_query_names_the_parameter(
    personas: Api, query: dict[str, str], field: str
) -> None:
    params = {"start": "2030-06-01T12:00:00Z", "end": "2030-06-02T12:00:00Z"} | query
    response = await personas.call("GET", f"{URL}/occurrences", "alice", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
