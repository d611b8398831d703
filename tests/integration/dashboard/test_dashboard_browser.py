"""The dashboard in real headless Chromium against a real uvicorn server: sign in,
watch a job move without reloading, retry with the button, an agent's view. Saves
the screenshots (``CONVEYOR_SCREENSHOTS=docs/images`` writes the docs' ones)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from conveyor.domain.jobs import ErrorInfo
from conveyor.domain.outcomes import Completed, Discarded, decide
from conveyor.domain.retry import Backoff
from conveyor.server import Server
from conveyor.services.live import EndReason
from conveyor.store.protocol import WorkerInfo
from tests.conftest import service_missing
from tests.integration.api.conftest import PASSWORD, Api, make_personas, server_settings
from tests.integration.served import served

pytestmark = pytest.mark.anyio

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
IMAGES = Path(os.environ.get("CONVEYOR_SCREENSHOTS") or tempfile.mkdtemp(prefix="screens-"))
"""Where the screenshots go: ``CONVEYOR_SCREENSHOTS=docs/images`` refreshes the docs'."""
VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 10_000
BACKOFF = Backoff(base=1, factor=2, cap=10, jitter=0)


@dataclass
class Site:
    """A served dashboard, the API client for it, and a browser."""

    url: str
    api: Api
    browser: Any

    async def page_for(self, email: str, zone: str | None = None) -> Any:
        """A new browser page signed in as ``email`` (its clock in ``zone`` if given)."""
        context = await self.browser.new_context(viewport=VIEWPORT, timezone_id=zone)
        page = await context.new_page()
        await page.goto(f"{self.url}/login")
        await page.fill("input[name=email]", email)
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_load_state()
        return page

    async def enqueue(self, task: str = "report", **fields: Any) -> int:
        """A job created by Alice through the API; its id."""
        body = {"task": task, "payload": {"rows": 1200, "format": "csv"}, **fields}
        response = await self.api.call("POST", "/api/v1/jobs", "alice", json=body)
        assert response.status_code == 201, response.text
        job_id: int = response.json()["id"]
        return job_id

    async def end(self, queue: str, failed: bool = False) -> int:
        """Claim the next job of Alice's ``queue`` and finish it; its id."""
        store = self.api.server.store
        (job,) = await store.claim("acme", queue, "worker-1", 1, 300)
        await self.finish(job.id, job.attempt, job.max_attempts, failed)
        return job.id

    async def finish(self, job_id: int, attempt: int, max_attempts: int, failed: bool) -> None:
        """End one attempt: completed, or discarded with a traceback."""
        error = ErrorInfo(
            "TimeoutError",
            "the upstream API did not answer in 30 s",
            'Traceback (most recent call last):\n  File "tasks.py", line 42, in export\n'
            "    rows = client.fetch(page)\nTimeoutError: the upstream API did not answer",
        )
        outcome = Discarded(error) if failed else Completed({"rows": 1200})
        finish = decide(
            outcome,
            job_id=job_id,
            attempt=attempt,
            max_attempts=max_attempts,
            backoff=BACKOFF,
            now=self.api.server.store.clock(),
        )
        assert await self.api.server.store.finish([finish]) == [True]


@pytest.fixture(params=["sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """The browser tests run on SQLite (the pages do not depend on the store)."""
    return str(request.param)


@pytest.fixture
async def site(migrated_url: str) -> AsyncIterator[Site]:
    """A real server on a free port with the personas, and headless Chromium."""
    if not CHROMIUM.exists():
        service_missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    settings = server_settings(migrated_url, live_poll_interval=0.05, live_keepalive_seconds=1)
    server = Server(settings)
    await server.start()
    try:
        async with (
            served(server) as port,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
            async_playwright() as playwright,
        ):
            api = await make_personas(Api(client, server))
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
            )
            try:
                yield Site(f"http://127.0.0.1:{port}", api, browser)
            finally:
                await browser.close()
    finally:
        await server.stop()


async def _seed(site: Site) -> None:
    """A tenant with some history, so the pages have something to show."""
    for queue, count in (("exports", 6), ("mail", 4)):
        for n in range(count):
            await site.enqueue(
                "export_report" if queue == "exports" else "send_email",
                queue=queue,
                key=f"{queue}-{n}",
                tags=["nightly"],
            )
    for _ in range(4):
        await site.end("exports")
    await site.end("mail", failed=True)
    await site.end("mail")
    now = site.api.server.now()
    worker = WorkerInfo("w-1", "acme", "jobs-01", 4242, ("exports", "mail"), 8, now, now)
    await site.api.server.store.register_worker(worker)
    for name, cron in (("nightly-export", "0 2 * * *"), ("hourly-digest", "0 * * * *")):
        body = {"name": name, "task": "export_report", "cron": cron}
        response = await site.api.call("POST", "/api/v1/schedules", "alice", json=body)
        assert response.status_code == 201, response.text


async def test_a_job_moves_from_running_to_completed_without_a_reload(site: Site) -> None:
    await _seed(site)
    page = await site.page_for("alice@acme.test")
    assert page.url.endswith("/")
    await page.wait_for_selector(".counter-completed .counter-value")
    assert "jobs-01" in await page.content() and "nightly-export" in await page.content()
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(IMAGES / "dashboard-overview.png"))

    job_id = await site.enqueue("resize_images", queue="media", payload={"album": 7})
    await page.goto(f"{site.url}/jobs/{job_id}")
    await page.evaluate("window.notReloaded = true")
    await page.wait_for_selector("body[data-live-state=open]")
    store = site.api.server.store
    (job,) = await store.claim("acme", "media", "worker-1", 1, 300)
    state = page.locator("#job-state .state")
    await state.filter(has_text="running").wait_for(timeout=WAIT_MS)
    bar = page.locator(f'[data-progress-for="{job_id}"] progress')
    for fraction in (0.3, 0.75):
        await store.record_progress(job_id, job.attempt, fraction, f"album page {fraction}")
        expected = str(round(fraction * 100))
        await page.locator(f'[data-progress-for="{job_id}"] progress[value="{expected}"]').wait_for(
            timeout=WAIT_MS
        )
    assert await bar.get_attribute("max") == "100"
    await page.screenshot(path=str(IMAGES / "dashboard-job.png"))
    await site.finish(job_id, job.attempt, job.max_attempts, failed=False)
    await state.filter(has_text="completed").wait_for(timeout=WAIT_MS)
    assert await page.evaluate("window.notReloaded") is True

    await page.goto(f"{site.url}/jobs")
    await page.evaluate("window.notReloaded = true")
    await page.wait_for_selector("body[data-live-state=open]")
    new_id = await site.enqueue("send_sms", queue="sms")
    await page.locator(f"#job-{new_id}").wait_for(timeout=WAIT_MS)
    (claimed,) = await store.claim("acme", "sms", "worker-1", 1, 300)
    assert claimed.id == new_id
    await page.locator(f"#job-{new_id}[data-state=running]").wait_for(timeout=WAIT_MS)
    await store.record_progress(new_id, claimed.attempt, 0.5, None)
    await page.locator(f'#job-{new_id} progress[value="50"]').wait_for(timeout=WAIT_MS)
    assert await page.evaluate("window.notReloaded") is True
    await page.screenshot(path=str(IMAGES / "dashboard-jobs.png"))
    await page.set_viewport_size(PHONE)
    await page.goto(f"{site.url}/")
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    await page.screenshot(path=str(IMAGES / "dashboard-phone.png"))


async def test_retrying_a_failed_job_with_the_button(site: Site) -> None:
    job_id = await site.enqueue("export_report", queue="exports", max_attempts=1)
    await site.end("exports", failed=True)
    page = await site.page_for("alice@acme.test")
    await page.goto(f"{site.url}/jobs/{job_id}")
    await page.locator("#job-state .state", has_text="discarded").wait_for()
    assert await page.locator(".traceback").count() == 1
    await page.click("text=Retry")
    await page.wait_for_load_state()
    await page.locator(".alert-ok", has_text="will run again").wait_for()
    await page.locator("#job-state .state", has_text="available").wait_for()


async def test_an_agent_sees_only_its_jobs(site: Site) -> None:
    own = await site.enqueue("call_customer", assignee="carl@acme.test")
    other = await site.enqueue("export_report")
    page = await site.page_for("carl@acme.test")
    assert page.url.endswith("/jobs")
    await page.locator(f"#job-{own}").wait_for()
    assert await page.locator(f"#job-{other}").count() == 0
    assert await page.locator("nav.nav a").all_inner_texts() == ["Jobs"]
    response = await page.goto(f"{site.url}/jobs/{other}")
    assert response is not None and response.status == 404


async def test_a_lost_connection_shows_a_banner_and_catches_up(site: Site) -> None:
    page = await site.page_for("alice@acme.test")
    await page.goto(f"{site.url}/jobs")
    await page.wait_for_selector("body[data-live-state=open]")
    assert await page.locator("#live-banner").is_hidden()
    stream = "**/api/v1/events/stream*"
    await page.route(stream, lambda route: route.abort())
    site.api.server.live.end_all(EndReason.SHUTDOWN)
    await page.locator("#live-banner").wait_for(state="visible", timeout=WAIT_MS)
    missed = await site.enqueue("send_email", queue="mail")
    await page.unroute(stream)
    await page.wait_for_selector("body[data-live-state=open]", timeout=WAIT_MS)
    await page.locator(f"#job-{missed}").wait_for(timeout=WAIT_MS)
    assert await page.locator("#live-banner").is_hidden()
