"""What the dashboard's pages show and what their buttons do."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conveyor.domain.jobs import ErrorInfo, JobFilter
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import WorkerInfo
from tests.integration.dashboard.conftest import Dashboard

pytestmark = pytest.mark.anyio


async def test_the_overview_counts_jobs_and_draws_the_last_hour(dash: Dashboard) -> None:
    for _ in range(3):
        await dash.enqueue("alice", queue="mail")
    await dash.finish("acme", "mail")
    await dash.finish("acme", "mail", failed=True)
    alice = await dash.browser("alice")
    page = (await alice.client.get("/")).text
    assert '<span class="counter-value">1</span>\n    <span class="counter-label">completed' in page
    assert page.count("1 completed, 1 discarded; busiest") == 2  # the last hour and day
    assert page.count('class="bar-completed"') == 2 and page.count('class="bar-discarded"') == 2
    assert "Last 24 hours" in page and "UTC: 1 completed, 1 discarded" in page
    assert 'href="/jobs?queue=mail"' in page
    fragment = await alice.client.get("/fragments/overview")
    assert fragment.status_code == 200 and "<html" not in fragment.text


async def test_the_job_list_filters_and_pages(dash: Dashboard) -> None:
    ids = [await dash.enqueue("alice", task="export", key=f"k{n}") for n in range(55)]
    tagged = await dash.enqueue("alice", task="import", tags=["vip"], payload={"city": "Oslo"})
    alice = await dash.browser("alice")
    first = (await alice.client.get("/jobs?task=export")).text
    assert f'id="job-{ids[-1]}"' in first and f'id="job-{ids[0]}"' not in first
    assert "Older" in first
    older = (await alice.client.get(f"/jobs?task=export&cursor={ids[5]}")).text
    assert f'id="job-{ids[0]}"' in older and f'id="job-{ids[5]}"' not in older
    for query in ("tag=vip", "q=oslo", "task=import", "state=available&task=import"):
        found = (await alice.client.get(f"/jobs?{query}")).text
        assert f'id="job-{tagged}"' in found and f'id="job-{ids[0]}"' not in found, query
    assert "No job matches" in (await alice.client.get("/jobs?state=completed")).text
    bad = await alice.client.get("/jobs?state=nonsense")
    assert bad.status_code == 400 and "State: is not a job state" in bad.text
    rows = await alice.client.get("/fragments/jobs?task=import")
    assert rows.text.strip().startswith("<tr") and f'id="job-{tagged}"' in rows.text


async def test_the_job_list_filters_by_creation_time_in_the_viewers_zone(
    dash: Dashboard,
) -> None:
    job = await dash.enqueue("alice", task="timed")
    alice = await dash.browser("alice")
    alice.client.cookies.set("conveyor_tz", "America/Sao_Paulo")
    local = dash.server.now().astimezone(ZoneInfo("America/Sao_Paulo"))
    before, after = ((local + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M") for m in (-5, 5))
    row = f'id="job-{job}"'
    assert row in (await alice.client.get(f"/jobs?from={before}")).text
    assert row not in (await alice.client.get(f"/jobs?from={after}")).text  # 3 h off in UTC
    assert row in (await alice.client.get(f"/jobs?from={before}&to={after}")).text
    page = (await alice.client.get(f"/jobs?to={before}")).text
    assert row not in page and "America/Sao_Paulo" in page
    bad = await alice.client.get("/jobs?from=yesterday")
    assert bad.status_code == 400 and "From: " in bad.text


async def test_the_job_page_shows_everything_about_a_job(dash: Dashboard, tmp_path: Path) -> None:
    job_id = await dash.enqueue(
        "alice",
        task="resize",
        queue="img",
        payload={"w": 640},
        message_id="msg-77",
        content_type="application/json",
    )
    store = dash.server.store
    (claimed,) = await store.claim("acme", "img", "worker-a", 1, 300)
    await store.record_progress(job_id, claimed.attempt, 0.4, "resizing")
    await store.add_note(job_id, claimed.attempt, "halfway there")
    data = b"pixels"
    path = tmp_path / "out.png"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    artifact = await store.add_artifact(job_id, claimed.attempt, "out.png", 6, digest, str(path))
    alice = await dash.browser("alice")
    page = (await alice.client.get(f"/jobs/{job_id}")).text
    for expected in (
        "resize",
        "msg-77",
        "application/json",
        "&#34;w&#34;: 640",
        'value="40"',
        "resizing",
        "halfway there",
        "out.png",
        "job.started",
        "state-running",
        ">Cancel<",
    ):
        assert expected in page, expected
    download = await alice.client.get(f"/jobs/{job_id}/artifacts/{artifact.id}")
    assert download.content == data and download.headers["x-checksum-sha256"] == digest
    assert (await alice.client.get(f"/jobs/{job_id}/artifacts/999")).status_code == 404
    assert (await alice.client.get("/jobs/999999")).status_code == 404
    assert (await alice.client.get("/jobs/not-a-number")).status_code == 404


async def test_retry_and_cancel_buttons_go_through_the_job_service(dash: Dashboard) -> None:
    failed = await dash.enqueue("alice", queue="q", max_attempts=1)
    await dash.finish("acme", "q", failed=True)
    waiting = await dash.enqueue("alice", queue="other")
    alice = await dash.browser("alice")
    page = (await alice.client.get(f"/jobs/{failed}")).text
    assert "ValueError" in page and "Traceback:" in page and ">Retry<" in page
    response = await alice.post(f"/jobs/{failed}/retry")
    assert response.status_code == 303
    assert "will run again" in (await alice.client.get(response.headers["location"])).text
    assert (await alice.post(f"/jobs/{waiting}/cancel")).status_code == 303
    conflict = await alice.post(f"/jobs/{waiting}/cancel")
    assert conflict.status_code == 409
    states = {j.id: j.state for j in await dash.server.store.list_jobs("acme", _all())}
    assert states[failed] is JobState.AVAILABLE and states[waiting] is JobState.CANCELLED
    audit = await dash.api.call("GET", "/api/v1/audit", "alice")
    assert audit.status_code == 200
    assert f"/jobs/{failed}/retry" in audit.text and "user:alice@acme.test" in audit.text


async def test_bulk_retry_applies_to_every_job_the_filters_match(dash: Dashboard) -> None:
    failed = []
    for _ in range(3):
        failed.append(await dash.enqueue("alice", queue="bulk", max_attempts=1))
        await dash.finish("acme", "bulk", failed=True)
    waiting = await dash.enqueue("alice", queue="bulk")
    elsewhere = await dash.enqueue("bob", queue="bulk", max_attempts=1)
    await dash.finish("globex", "bulk", failed=True)
    alice = await dash.browser("alice")
    listing = (await alice.client.get("/jobs?queue=bulk&state=discarded")).text
    assert 'href="/jobs/bulk/retry?queue=bulk&amp;state=discarded"' in listing
    confirm = await alice.client.get("/jobs/bulk/retry?queue=bulk&state=discarded")
    assert confirm.status_code == 200 and "Retry the matching jobs" in confirm.text
    assert (await _states(dash, "acme"))[failed[0]] is JobState.DISCARDED  # a GET changes nothing
    response = await alice.post("/jobs/bulk/retry", {"queue": "bulk", "state": "discarded"})
    assert response.status_code == 303
    back = await alice.client.get(response.headers["location"])
    assert "Retried 3 jobs." in back.text
    states = await _states(dash, "acme")
    assert all(states[job_id] is JobState.AVAILABLE for job_id in failed)
    assert states[waiting] is JobState.AVAILABLE
    assert (await _states(dash, "globex"))[elsewhere] is JobState.DISCARDED
    cancelled = await alice.post("/jobs/bulk/cancel", {"queue": "bulk"})
    assert "Cancelled 4 jobs." in (await alice.client.get(cancelled.headers["location"])).text
    forged = await alice.client.get("/jobs?bulk=retry&changed=1&skipped=²")
    assert forged.status_code == 200 and "Retried" not in forged.text
    assert (await alice.client.get("/jobs?cursor=²")).status_code == 400


async def test_a_bulk_action_needs_a_filter_and_a_writer(dash: Dashboard) -> None:
    waiting = await dash.enqueue("alice", queue="bulk", assignee="carl@acme.test")
    alice = await dash.browser("alice")
    assert 'href="/jobs/bulk/' not in (await alice.client.get("/jobs")).text
    assert (await alice.client.get("/jobs/bulk/cancel")).status_code == 400
    refused = await alice.post("/jobs/bulk/cancel", {})
    assert refused.status_code == 400 and "at least one" in refused.text
    assert (await alice.post("/jobs/bulk/delete", {"queue": "bulk"})).status_code == 404
    carl = await dash.browser("carl")
    assert (await carl.post("/jobs/bulk/cancel", {"queue": "bulk"})).status_code == 403
    assert (await _states(dash, "acme"))[waiting] is JobState.AVAILABLE
    api = await dash.api.call("POST", "/api/v1/jobs/bulk/cancel", "alice", json={})
    assert api.status_code == 422 and api.json()["field"] == "filters"
    assert (await _states(dash, "acme"))[waiting] is JobState.AVAILABLE


async def _states(dash: Dashboard, tenant: str) -> dict[int, JobState]:
    return {j.id: j.state for j in await dash.server.store.list_jobs(tenant, _all())}


async def test_queues_pause_resume_and_take_a_limit(dash: Dashboard) -> None:
    await dash.enqueue("alice", queue="mail")
    alice = await dash.browser("alice")
    assert "mail" in (await alice.client.get("/queues")).text
    assert (await alice.post("/queues/mail/pause")).status_code == 303
    assert "state-paused" in (await alice.client.get("/queues")).text
    assert (await alice.post("/queues/mail/concurrency", {"concurrency": "3"})).status_code == 303
    (queue,) = await dash.server.store.list_queues("acme")
    assert queue.paused and queue.concurrency == 3
    assert (await alice.post("/queues/mail/resume")).status_code == 303
    assert (await alice.post("/queues/mail/concurrency", {"concurrency": ""})).status_code == 303
    bad = await alice.post("/queues/mail/concurrency", {"concurrency": "-2"})
    assert bad.status_code == 400 and "Concurrency: must be a whole number" in bad.text
    (queue,) = await dash.server.store.list_queues("acme")
    assert not queue.paused and queue.concurrency is None


async def test_workers_show_their_last_heartbeat(dash: Dashboard) -> None:
    store = dash.server.store
    now = dash.server.now()
    await store.register_worker(
        WorkerInfo("w-1", "acme", "build-host", 4242, ("mail",), 8, now, now)
    )
    alice = await dash.browser("alice")
    page = (await alice.client.get("/workers")).text
    assert "build-host" in page and "4242" in page and "online" in page
    assert "build-host" in (await alice.client.get("/")).text
    assert "build-host" not in (await (await dash.browser("bob")).client.get("/workers")).text


def _all() -> JobFilter:
    return JobFilter(limit=1000)


async def test_markup_in_a_jobs_fields_is_shown_as_text(dash: Dashboard) -> None:
    evil = "<script>alert(1)</script>"
    payload = {"note": f"payload{evil}"}
    job_id = await dash.enqueue("alice", queue="mail", key=f"key{evil}", payload=payload)
    await dash.finish("acme", "mail", failed=True, error=ErrorInfo(evil, f"error{evil}", evil))
    rename = "UPDATE jobs SET task = :task WHERE id = :id"  # names are checked: bypass it
    await dash.server.store.run_sql([(rename, {"task": f"task{evil}", "id": job_id})])
    alice = await dash.browser("alice")
    listing = (await alice.client.get("/jobs")).text
    job_page = (await alice.client.get(f"/jobs/{job_id}")).text
    assert "task&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    for part in ("task", "key", "payload", "error"):
        assert f"{part}&lt;script&gt;alert(1)&lt;/script&gt;" in job_page, part
    assert evil not in listing and evil not in job_page
