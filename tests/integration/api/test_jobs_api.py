"""The job endpoints: filters and cursor pages, details, bulk actions, results, artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.domain.events import EventType
from conveyor.domain.lifecycle import JobState
from conveyor.domain.outcomes import Finish
from tests.integration.api.conftest import Api

pytestmark = pytest.mark.anyio


async def _batch(api: Api, jobs: list[dict]) -> list[dict]:
    response = await api.call("POST", "/api/v1/jobs/batch", "alice", json={"jobs": jobs})
    assert response.status_code == 201, response.text
    return list(response.json()["items"])


async def _ids(api: Api, query: str) -> list[int]:
    response = await api.call("GET", f"/api/v1/jobs?{query}", "alice")
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["items"]]


async def test_filters_narrow_the_list(personas: Api) -> None:
    jobs = await _batch(
        personas,
        [
            {
                "task": "cnpj.lookup",
                "key": "12.345",
                "tags": ["vip"],
                "payload": {"city": "Recife"},
            },
            {"task": "cnpj.lookup", "queue": "slow", "assignee": "carl@acme.test"},
            {"task": "crm.update", "payload": {"name": "Ana"}},
        ],
    )
    first, second, third = (job["id"] for job in jobs)
    assert await _ids(personas, "task=cnpj.lookup") == [second, first]
    assert await _ids(personas, "queue=slow") == [second]
    assert await _ids(personas, "key=12.345") == [first]
    assert await _ids(personas, "tag=vip") == [first]
    assert await _ids(personas, "assignee=carl@acme.test") == [second]
    assert await _ids(personas, "q=recife") == [first]
    assert await _ids(personas, "q=CRM") == [third]
    assert await _ids(personas, "q=100%25") == []
    assert await _ids(personas, "state=available&order=oldest") == [first, second, third]
    [later] = await _batch(personas, [{"task": "late"}])
    since = later["created_at"].replace("+00:00", "Z")
    assert await _ids(personas, f"created_after={since}") == [later["id"]]
    assert later["id"] not in await _ids(personas, f"created_before={since}")
    naive = await personas.call("GET", "/api/v1/jobs?created_after=2026-01-01T00:00:00", "alice")
    assert naive.status_code == 422


async def test_cursor_pages_cover_every_job_once(personas: Api) -> None:
    made = await _batch(personas, [{"task": "t", "payload": {"n": n}} for n in range(7)])
    seen: list[int] = []
    cursor = ""
    while True:
        response = await personas.call("GET", f"/api/v1/jobs?limit=3&cursor={cursor}", "alice")
        page = response.json()
        seen.extend(job["id"] for job in page["items"])
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == sorted((job["id"] for job in made), reverse=True)
    bad = await personas.call("GET", "/api/v1/jobs?cursor=abc", "alice")
    assert bad.status_code == 422
    assert bad.json()["field"] == "cursor"


async def test_bulk_cancel_changes_what_it_can_and_lists_the_rest(personas: Api) -> None:
    jobs = await _batch(personas, [{"task": "t", "queue": "bulk"} for _ in range(3)])
    await personas.call("POST", f"/api/v1/jobs/{jobs[0]['id']}/cancel", "alice")
    response = await personas.call(
        "POST", "/api/v1/jobs/bulk/cancel", "alice", json={"queue": "bulk"}
    )
    body = response.json()
    assert body["matched"] == 3
    assert sorted(body["changed"]) == sorted(j["id"] for j in jobs[1:])
    assert body["skipped"] == [jobs[0]["id"]]
    retried = await personas.call(
        "POST", "/api/v1/jobs/bulk/retry", "alice", json={"queue": "bulk"}
    )
    assert len(retried.json()["changed"]) == 3
    assert await _ids(personas, "queue=bulk&state=available") != []
    by_text = await personas.call(
        "POST", "/api/v1/jobs/bulk/cancel", "alice", json={"q": "no such text anywhere"}
    )
    assert by_text.json()["matched"] == 0
    mine = await personas.call(
        "POST", "/api/v1/jobs/bulk/cancel", "alice", json={"queue": "bulk", "assignee": "x@y.z"}
    )
    assert mine.json()["matched"] == 0


async def test_details_results_and_artifact_bytes(personas: Api, tmp_path: Path) -> None:
    [job] = await _batch(personas, [{"task": "insight.run", "key": "client-9", "queue": "q1"}])
    store = personas.server.store
    [claimed] = await store.claim("acme", "q1", "w1", 1, 60.0)
    data = b"PK\x03\x04 a zip, byte for byte"
    path = tmp_path / "backup.zip"
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    artifact = await store.add_artifact(
        claimed.id, claimed.attempt, "backup.zip", len(data), digest, str(path)
    )
    done = Finish(
        claimed.id,
        claimed.attempt,
        JobState.COMPLETED,
        EventType.JOB_SUCCEEDED,
        result={"score": 7},
    )
    assert await store.finish([done]) == [True]

    detail = (await personas.call("GET", f"/api/v1/jobs/{job['id']}", "alice")).json()
    assert detail["job"]["state"] == "completed"
    assert [a["outcome"] for a in detail["attempts"]] == ["completed"]
    assert [e["type"] for e in detail["events"]][:2] == ["job.enqueued", "job.started"]
    assert detail["artifacts"][0]["sha256"] == digest
    assert "path" not in detail["artifacts"][0]

    results = (await personas.call("GET", "/api/v1/results?key=client-9", "alice")).json()
    assert [(r["job_id"], r["result"]) for r in results["items"]] == [(job["id"], {"score": 7})]

    url = f"/api/v1/jobs/{job['id']}/artifacts/{artifact.id}"
    download = await personas.call("GET", url, "alice")
    assert download.content == data
    assert download.headers["x-checksum-sha256"] == digest
    assert hashlib.sha256(download.content).hexdigest() == digest
    assert (await personas.call("GET", url, "bob")).status_code == 404
    assert (await personas.call("GET", url, "carl")).status_code == 404
