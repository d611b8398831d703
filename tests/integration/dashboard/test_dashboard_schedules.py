"""The Schedules pages in-process: the list, the form and its preview, pause and resume,
delete with a confirmation, the calendar, and who may do what.

Time is stopped at a known instant (the store's clock, which every service reads)
before anyone signs in, so the calendar's "today" and the next runs are exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.domain import calendar_plan
from conveyor.domain.schedules import ScheduleSource, schedule_spec
from conveyor.domain.timing import cron
from tests.integration.api.conftest import PASSWORD
from tests.integration.dashboard.conftest import Browser, Dashboard

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
"""A Saturday; 09:00 in Sao Paulo."""
NIGHTLY = {
    "name": "nightly-report",
    "task": "reports.build",
    "cron": "0 19 * * *",
    "timezone": "America/Sao_Paulo",
    "payload": '{"customer": 42}',
    "queue": "",
    "priority": "",
    "assignee": "",
    "description": "The daily report",
    "misfire": "run_once",
    "overlap": "allow",
    "enabled": "on",
}
NIGHTLY_API = {
    "name": "nightly-report",
    "task": "reports.build",
    "cron": "0 19 * * *",
    "timezone": "America/Sao_Paulo",
    "queue": "reports",
}


def _freeze(dash: Dashboard, at: datetime = NOW) -> Callable[[timedelta], None]:
    """Stop the server's clock at ``at``; the function returned moves it on."""
    now = [at]
    dash.server.store.clock = lambda: now[0]

    def move(by: timedelta) -> None:
        now[0] += by

    return move


async def _stored(dash: Dashboard, who: str = "alice") -> list[Any]:
    response = await dash.api.call("GET", "/api/v1/schedules", who)
    assert response.status_code == 200, response.text
    stored: list[Any] = response.json()
    return stored


async def _create(alice: Browser, **changes: str) -> int:
    response = await alice.post("/schedules/new", NIGHTLY | changes)
    assert response.status_code == 303, response.text
    found = re.fullmatch(r"/schedules/(\d+)\?done=created", response.headers["location"])
    assert found, response.headers["location"]
    return int(found.group(1))


async def _api_schedule(dash: Dashboard, body: dict[str, Any], who: str = "alice") -> int:
    response = await dash.api.call("POST", "/api/v1/schedules", who, json=body)
    assert response.status_code == 201, response.text
    schedule_id: int = response.json()["id"]
    return schedule_id


async def test_a_schedule_made_with_the_form_is_listed_and_shown(dash: Dashboard) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    form = await alice.client.get("/schedules/new")
    assert form.status_code == 200
    assert 'id="cron-builder"' in form.text and 'name="cron"' in form.text
    assert "At 09:00 every day (UTC)" in form.text  # the starting expression, previewed
    assert 'data-default-zone="UTC"' in form.text  # the script may use the browser's

    schedule_id = await _create(alice)
    (stored,) = await _stored(dash)
    assert (stored["id"], stored["cron"], stored["timezone"]) == (
        schedule_id,
        "0 19 * * *",
        "America/Sao_Paulo",
    )
    assert (stored["payload"], stored["description"], stored["enabled"]) == (
        {"customer": 42},
        "The daily report",
        True,
    )
    assert (stored["queue"], stored["priority"]) == (None, None)

    detail = await alice.client.get(f"/schedules/{schedule_id}?done=created")
    assert "The schedule was created." in detail.text
    assert "At 19:00 every day (America/Sao_Paulo)" in detail.text
    assert "Sat 01 Jun 2030, 22:00" in detail.text  # 19:00 in Sao Paulo, shown in UTC
    assert "No runs yet." in detail.text

    listing = await alice.client.get("/schedules")
    row = _row(listing.text, schedule_id)
    assert "nightly-report" in row and "reports.build" in row and "state-active" in row
    assert f'action="/schedules/{schedule_id}/disable"' in row


def _row(html: str, schedule_id: int) -> str:
    found = re.search(rf'<tr id="schedule-{schedule_id}".*?</tr>', html, re.S)
    assert found, f"no row for schedule {schedule_id}"
    return found.group(0)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cron": "61 * * * *"}, "cron", "minute field: 61 is out of range 0-59"),
        ({"cron": ""}, "cron", "give one of cron, interval or at"),
        ({"timezone": "Mars/Olympus"}, "timezone", "is not a known IANA time zone"),
        ({"name": "no spaces here"}, "name", "must be 1-128 letters"),
        ({"payload": "{not json"}, "payload", "is not valid JSON"),
        ({"payload": "[" * 5000}, "payload", "is nested too deeply"),
        ({"priority": "high"}, "priority", "valid integer"),
        ({"misfire": "sometimes"}, "misfire", "input should be"),
    ],
)
async def test_bad_input_shows_the_form_again_with_the_problem_and_stores_nothing(
    dash: Dashboard, changes: dict[str, str], field: str, message: str
) -> None:
    alice = await dash.browser("alice")
    response = await alice.post("/schedules/new", NIGHTLY | changes)
    assert response.status_code == 400, response.text
    problem = re.search(rf'data-error-for="{field}">([^<]*)<', response.text)
    assert problem, response.text
    assert problem.group(1).startswith(f"{field}: ") and message in problem.group(1)
    assert f'id="field-{field}"' in response.text
    assert 'value="nightly-report"' in response.text or field == "name"  # kept as typed
    if field != "payload":
        assert "{&#34;customer&#34;: 42}" in response.text
    assert "data-default-zone" not in response.text  # the zone typed is kept as it is
    assert await _stored(dash) == []


async def test_a_taken_name_is_a_problem_of_the_form(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    await _create(alice)
    again = await alice.post("/schedules/new", NIGHTLY)
    assert again.status_code == 409
    assert "already exists" in again.text and 'id="error-form"' in again.text
    assert len(await _stored(dash)) == 1


async def test_the_preview_explains_the_expression_as_the_api_does(dash: Dashboard) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    query = {"cron": "*/15 9-17 * * 1-5", "timezone": "Europe/Berlin"}
    fragment = await alice.client.get(
        "/fragments/schedules/preview", params=query, headers={"X-Dashboard-Fragment": "1"}
    )
    assert fragment.status_code == 200
    api = await dash.api.call("POST", "/api/v1/schedules/preview", "alice", json=query)
    assert api.status_code == 200, api.text
    assert api.json()["description"] in fragment.text
    assert 'data-valid="true"' in fragment.text
    # Monday 3 June, 09:00 in Berlin is 07:00 UTC: the next runs are shown in Berlin.
    shown = re.findall(r'<time datetime="([^"]+)"', fragment.text)
    expected = [run["utc"].replace("Z", "+00:00") for run in api.json()["next_runs"]]
    assert shown == expected and len(shown) == 5
    assert "Mon 03 Jun 2030, 09:00" in fragment.text

    bad = await alice.client.get(
        "/fragments/schedules/preview", params={"cron": "0 25 * * *", "timezone": "UTC"}
    )
    assert 'data-field="cron"' in bad.text
    assert "cron: hour field: 25 is out of range 0-23" in bad.text
    zone = await alice.client.get(
        "/fragments/schedules/preview", params={"cron": "0 9 * * *", "timezone": "Berlin"}
    )
    assert 'data-field="timezone"' in zone.text and "did you mean Europe/Berlin?" in zone.text
    empty = await alice.client.get("/fragments/schedules/preview", params={"cron": " "})
    assert 'data-valid="empty"' in empty.text


async def test_editing_changes_the_schedule_and_keeps_the_form_on_a_problem(
    dash: Dashboard,
) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    schedule_id = await _create(alice)
    form = await alice.client.get(f"/schedules/{schedule_id}/edit")
    assert form.status_code == 200
    assert 'value="0 19 * * *"' in form.text and 'value="America/Sao_Paulo"' in form.text
    assert 'name="revision" value="1"' in form.text

    edit = NIGHTLY | {"cron": "30 6 * * 1-5", "queue": "reports", "revision": "1"}
    saved = await alice.post(f"/schedules/{schedule_id}/edit", edit)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/schedules/{schedule_id}?done=saved"
    (stored,) = await _stored(dash)
    assert (stored["cron"], stored["queue"], stored["revision"]) == ("30 6 * * 1-5", "reports", 2)
    detail = await alice.client.get(saved.headers["location"])
    assert "The schedule was saved." in detail.text
    assert "At 06:30 on Monday through Friday (America/Sao_Paulo)" in detail.text

    stale = await alice.post(f"/schedules/{schedule_id}/edit", edit | {"cron": "0 7 * * *"})
    assert stale.status_code == 409 and "revision 2, not 1" in stale.text
    assert 'value="0 7 * * *"' in stale.text  # what was typed stays
    bad = await alice.post(f"/schedules/{schedule_id}/edit", edit | {"cron": "0 7 * *"})
    assert bad.status_code == 400 and "cron: has 4 fields" in bad.text
    emptied = NIGHTLY | {"revision": "2", "payload": ""}
    cleared = await alice.post(f"/schedules/{schedule_id}/edit", emptied)
    assert cleared.status_code == 303
    (stored,) = await _stored(dash)
    assert (stored["cron"], stored["queue"], stored["payload"]) == ("0 19 * * *", None, {})
    assert stored["revision"] == 3
    bad_revision = await alice.post(f"/schedules/{schedule_id}/edit", emptied | {"revision": "x"})
    assert bad_revision.status_code == 400 and 'id="error-form"' in bad_revision.text
    assert "revision: input should be a valid integer" in bad_revision.text


async def test_an_interval_schedule_keeps_its_timing_when_the_cron_is_left_empty(
    dash: Dashboard,
) -> None:
    schedule_id = await _api_schedule(dash, {"name": "poll", "task": "feeds.poll", "interval": 600})
    alice = await dash.browser("alice")
    form = await alice.client.get(f"/schedules/{schedule_id}/edit")
    assert "Now: Every 10 minutes." in form.text
    body = NIGHTLY | {"name": "poll", "task": "feeds.poll", "cron": "", "revision": "1"}
    saved = await alice.post(f"/schedules/{schedule_id}/edit", body)
    assert saved.status_code == 303, saved.text
    (stored,) = await _stored(dash)
    assert (stored["kind"], stored["interval"], stored["description"]) == (
        "interval",
        600.0,
        "The daily report",
    )


async def test_pause_and_resume_with_the_buttons(dash: Dashboard) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    schedule_id = await _create(alice)
    paused = await alice.post(f"/schedules/{schedule_id}/disable", {"back": "list"})
    assert paused.status_code == 303 and paused.headers["location"] == "/schedules?done=paused"
    assert [s["enabled"] for s in await _stored(dash)] == [False]
    listing = await alice.client.get("/schedules?done=paused")
    row = _row(listing.text, schedule_id)
    assert "state-paused" in row and f'action="/schedules/{schedule_id}/enable"' in row
    detail = await alice.client.get(f"/schedules/{schedule_id}")
    assert "None: the schedule is paused." in detail.text

    resumed = await alice.post(f"/schedules/{schedule_id}/enable")
    assert resumed.headers["location"] == f"/schedules/{schedule_id}?done=resumed"
    assert [s["enabled"] for s in await _stored(dash)] == [True]


async def test_delete_asks_first_then_removes_the_schedule(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    schedule_id = await _create(alice)
    confirm = await alice.client.get(f"/schedules/{schedule_id}/delete")
    assert confirm.status_code == 200
    assert "Delete schedule “nightly-report”?" in confirm.text
    assert "0 recorded runs" in confirm.text and "The jobs it already made stay" in confirm.text
    assert f'action="/schedules/{schedule_id}/delete"' in confirm.text
    assert await _stored(dash) != []  # looking at the question deletes nothing

    deleted = await alice.post(f"/schedules/{schedule_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/schedules?done=deleted"
    assert await _stored(dash) == []
    assert (await alice.client.get(f"/schedules/{schedule_id}")).status_code == 404
    listing = await alice.client.get("/schedules?done=deleted")
    assert "were deleted" in listing.text and "nightly-report" not in listing.text


async def test_a_schedule_declared_in_code_is_paused_here_but_not_edited(dash: Dashboard) -> None:
    principal = await dash.server.auth.principal_from_token(
        dash.api.headers["alice"]["Authorization"].removeprefix("Bearer ")
    )
    spec = schedule_spec("from-code", cron("0 3 * * *"), "cleanup")
    await dash.server.schedules_for(principal).sync_code([spec])
    (stored,) = await _stored(dash)
    assert stored["source"] == ScheduleSource.CODE
    alice = await dash.browser("alice")
    detail = await alice.client.get(f"/schedules/{stored['id']}")
    assert f'href="/schedules/{stored["id"]}/edit"' not in detail.text
    body = NIGHTLY | {"name": "from-code", "revision": "1"}
    refused = await alice.post(f"/schedules/{stored['id']}/edit", body)
    assert refused.status_code == 409 and "@app.periodic" in refused.text
    assert (await alice.post(f"/schedules/{stored['id']}/disable")).status_code == 303


async def test_the_calendar_shows_past_runs_by_outcome_and_planned_runs(dash: Dashboard) -> None:
    move = _freeze(dash)
    scheduler = dash.server.scheduler
    assert scheduler is not None
    hourly = await _api_schedule(dash, {"name": "hourly", "task": "feeds.poll", "interval": "1h"})
    nightly = await _api_schedule(dash, NIGHTLY_API)
    for _ in range(3):  # 13:00, 14:00 and 15:00 UTC fire on time
        move(timedelta(hours=1, seconds=30 if _ == 0 else 0))
        await scheduler.run_once()
    completed = await dash.finish("acme", "default")
    failed = await dash.finish("acme", "default", failed=True)
    alice = await dash.browser("alice")

    month = await alice.client.get("/schedules/calendar?tz=America/Sao_Paulo")
    assert month.status_code == 200
    assert "June 2030" in month.text and "Times in <strong>America/Sao_Paulo</strong>" in month.text
    day = _cell(month.text, 'data-date="2030-06-01"')
    assert f'href="/jobs/{completed.id}" data-look="completed"' in day
    assert f'href="/jobs/{failed.id}" data-look="discarded"' in day
    assert re.search(r'data-look="available"[^>]*title="hourly · available · 2030-06-01 12:00', day)
    assert f'href="/schedules/{nightly}" data-look="planned"' in day  # 19:00 in Sao Paulo
    assert "more" in day  # three past runs and the day's planned ones: more than four
    sunday = _cell(month.text, 'data-date="2030-06-02"')
    assert sunday.count('data-look="planned"') == 2  # each schedule once a day, at its first
    assert '00:00</span> <span class="cal-name">hourly' in sunday
    assert 'title="More runs in the week view">more…' in sunday and "view=week" in sunday
    assert "data-look" not in _cell(month.text, 'data-date="2030-05-31"')  # before any run

    week = await alice.client.get("/schedules/calendar?view=week&date=2030-06-01&tz=UTC")
    assert week.status_code == 200 and "27 May to 02 Jun 2030" in week.text
    at_13 = _cell(week.text, 'data-date="2030-06-01" data-hour="13"')
    assert f'href="/jobs/{completed.id}"' in at_13 and "completed" in at_13
    at_22 = _cell(week.text, 'data-date="2030-06-01" data-hour="22"')
    assert "nightly-report" in at_22 and "hourly" in at_22 and 'data-look="planned"' in at_22
    assert "view=week&amp;tz=UTC&amp;date=2030-06-08" in week.text  # the zone asked stays

    detail = await alice.client.get(f"/schedules/{hourly}?tz=UTC")
    runs = re.findall(r'<tr data-run-look="(\w+)">\s*<td><time[^>]*>([^<]+)<', detail.text)
    assert runs == [
        ("available", "Sat 01 Jun 2030, 15:00"),
        ("discarded", "Sat 01 Jun 2030, 14:00"),
        ("completed", "Sat 01 Jun 2030, 13:00"),
    ]
    assert (
        f'href="/jobs/{failed.id}"' in detail.text and f'href="/jobs/{completed.id}"' in detail.text
    )


def _cell(html: str, marker: str) -> str:
    """The calendar cell (month day or week hour) whose attributes include ``marker``."""
    found = re.search(rf"<(div|td)[^>]*{re.escape(marker)}[^>]*>(.*?)</\1>", html, re.S)
    assert found, marker
    return found.group(2)


async def test_the_calendar_uses_the_zone_cookie_and_refuses_an_unknown_zone(
    dash: Dashboard,
) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    default = await alice.client.get("/schedules/calendar")
    assert 'data-zone-shown="UTC"' in default.text
    alice.client.cookies.set("conveyor_tz", "Asia/Tokyo")
    tokyo = await alice.client.get("/schedules/calendar")
    assert 'data-zone-shown="Asia/Tokyo"' in tokyo.text and "data-zone-explicit" not in tokyo.text
    assert 'data-zone-shown="Asia/Tokyo"' in (await alice.client.get("/schedules")).text
    alice.client.cookies.set("conveyor_tz", "Nowhere/Atlantis")
    assert 'data-zone-shown="UTC"' in (await alice.client.get("/schedules/calendar")).text
    asked = await alice.client.get("/schedules/calendar?tz=Europe/Lisbon")
    assert 'data-zone-shown="Europe/Lisbon"' in asked.text and "data-zone-explicit" in asked.text
    for query, field in (
        ("tz=Mars/Olympus", "tz"),
        ("date=yesterday", "date"),
        ("view=day", "view"),
    ):
        bad = await alice.client.get(f"/schedules/calendar?{query}")
        assert bad.status_code == 400, query
        assert f"<p>{field.capitalize()}: " in bad.text  # the error page names the parameter


async def test_a_frequent_schedule_neither_crowds_out_others_nor_costs_a_step_per_run(
    dash: Dashboard,
) -> None:
    _freeze(dash)
    for name, expression in (("every-minute", "* * * * *"), ("evening", "0 20 * * *")):
        await _api_schedule(dash, {"name": name, "task": "tick", "cron": expression})
    alice = await dash.browser("alice")
    month = await alice.client.get("/schedules/calendar?date=2030-06-20")
    assert month.status_code == 200 and "too many runs" not in month.text
    last = _cell(month.text, 'data-date="2030-06-30"')
    assert re.findall(r'<span class="cal-name">([^<]+)<', last) == ["every-minute", "evening"]
    assert 'title="More runs in the week view">more…' in last
    week = await alice.client.get("/schedules/calendar?view=week&date=2030-06-20")
    hour = _cell(week.text, 'data-date="2030-06-20" data-hour="20"')
    assert re.findall(r'<span class="cal-time">([^<]+)<', hour) == [
        *("20:00", "20:00", "20:01", "20:02"),  # the first four runs, each schedule's first
        "20:03",  # behind "+1 more…"
    ]
    assert "+1 more…" in hour and 'title="More runs this hour">more…' in hour
    quiet = _cell(week.text, 'data-date="2030-06-20" data-hour="21"')
    assert quiet.count('data-look="planned"') == 4 and "+" not in quiet


async def test_bob_cannot_see_or_change_alices_schedule(dash: Dashboard) -> None:
    _freeze(dash)
    alice = await dash.browser("alice")
    schedule_id = await _create(alice)
    bob = await dash.browser("bob")
    for path in ("", "/edit", "/delete"):
        response = await bob.client.get(f"/schedules/{schedule_id}{path}")
        assert response.status_code == 404, path
    for action in ("disable", "enable", "delete", "edit"):
        response = await bob.post(f"/schedules/{schedule_id}/{action}", NIGHTLY)
        assert response.status_code == 404, action
    assert "nightly-report" not in (await bob.client.get("/schedules")).text
    assert "nightly-report" not in (await bob.client.get("/schedules/calendar")).text
    (stored,) = await _stored(dash)
    assert (stored["enabled"], stored["revision"]) == (True, 1)


async def test_an_agent_sees_no_schedules(dash: Dashboard) -> None:
    alice = await dash.browser("alice")
    schedule_id = await _create(alice)
    carl = await dash.browser("carl")
    for path in (
        "/schedules",
        "/schedules/calendar",
        "/schedules/new",
        f"/schedules/{schedule_id}",
        f"/schedules/{schedule_id}/edit",
        "/fragments/schedules/preview?cron=0+9+*+*+*",
    ):
        assert (await carl.client.get(path)).status_code == 403, path
    for path in ("/schedules/new", f"/schedules/{schedule_id}/disable"):
        assert (await carl.post(path, NIGHTLY | {"name": "carls"})).status_code == 403, path
    assert (await carl.post(f"/schedules/{schedule_id}/delete")).status_code == 403
    assert [s["name"] for s in await _stored(dash)] == ["nightly-report"]


async def test_a_member_may_schedule_jobs_but_no_shell_commands(dash: Dashboard) -> None:
    body = {"email": "mia@acme.test", "role": "member", "password": PASSWORD}
    response = await dash.api.call("POST", "/api/v1/users", "alice", json=body)
    assert response.status_code == 201, response.text
    mia = dash.anonymous()
    assert (await mia.sign_in("mia@acme.test")).status_code == 303
    shell = NIGHTLY | {"name": "wipe", "task": "shell", "payload": '{"command": "true"}'}
    refused = await mia.post("/schedules/new", shell)  # shell tasks are off here
    assert refused.status_code == 400 and 'data-error-for="task"' in refused.text
    assert 'value="wipe"' in refused.text
    assert await _stored(dash) == []
    assert (await mia.post("/schedules/new", NIGHTLY)).status_code == 303
    listing = await mia.client.get("/schedules")
    assert "New schedule" in listing.text and ">Edit<" in listing.text


async def test_a_calendar_too_big_to_plan_says_how_far_its_runs_go(
    dash: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    _freeze(dash)
    await _api_schedule(dash, {"name": "every-minute", "task": "tick", "cron": "* * * * *"})
    monkeypatch.setattr(calendar_plan, "MAX_PLANNING_STEPS", 40)
    alice = await dash.browser("alice")
    week = await alice.client.get("/schedules/calendar?view=week&date=2030-06-20")
    assert week.status_code == 200
    found = re.search(r"planned runs up to (\w{3} \d\d \w{3} \d\d:\d\d)", week.text)
    assert found, "the page does not say where the planned runs stop"
    monkeypatch.setattr(calendar_plan, "MAX_PLANNING_STEPS", 10_000)
    whole = await alice.client.get("/schedules/calendar?view=week&date=2030-06-20")
    assert "too many runs" not in whole.text
