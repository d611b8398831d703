"""The Schedules pages in real headless Chromium against a real uvicorn server: sign in
in São Paulo's time zone, build a schedule with the cron builder while the preview
explains it, find it on the month and week calendar beside past runs coloured by
outcome, edit it, delete it after the confirmation. Saves the screenshots
(``CONVEYOR_SCREENSHOTS=docs/images`` writes the docs' ones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.dashboard.test_dashboard_browser import (  # noqa: F401  (fixtures)
    IMAGES,
    VIEWPORT,
    WAIT_MS,
    Site,
    site,
    store_kind,
)

pytestmark = pytest.mark.anyio

ZONE = "America/Sao_Paulo"


def _movable_clock(served: Site) -> Callable[[timedelta], None]:
    """Let the server's clock run ahead of the real one; the function returned moves it."""
    store = served.api.server.store
    real = store.clock
    ahead = [timedelta(0)]
    store.clock = lambda: real() + ahead[0]

    def move(by: timedelta) -> None:
        ahead[0] += by

    return move


async def _past_runs(served: Site) -> None:
    """An inventory sync every 15 minutes that already ran four times: two jobs
    completed, one failed, one still waiting."""
    body = {"name": "inventory-sync", "task": "sync_inventory", "interval": "15m"}
    body |= {"queue": "inventory"}
    response = await served.api.call("POST", "/api/v1/schedules", "alice", json=body)
    assert response.status_code == 201, response.text
    move = _movable_clock(served)
    scheduler = served.api.server.scheduler
    assert scheduler is not None
    first = datetime.fromisoformat(response.json()["next_runs"][0]["utc"])
    move(first - served.api.server.now() + timedelta(seconds=5))
    await scheduler.run_once()
    for _ in range(3):
        move(timedelta(minutes=15))
        await scheduler.run_once()
    for failed in (False, True, False):
        await served.end("inventory", failed=failed)


async def test_a_schedule_is_built_found_on_the_calendar_edited_and_deleted(
    site: Site,  # noqa: F811
) -> None:
    await _past_runs(site)
    page = await site.page_for("alice@acme.test", ZONE)
    await page.goto(f"{site.url}/schedules")
    # The page learns the browser's zone (a cookie) and shows its times there.
    await page.locator(f'[data-zone-shown="{ZONE}"]').wait_for(timeout=WAIT_MS)
    await page.click("text=New schedule")
    await page.wait_for_url("**/schedules/new")
    assert await page.input_value("#field-timezone") == ZONE
    await page.locator("#cron-builder").wait_for(state="visible")

    await page.fill("#field-name", "nightly-report")
    await page.fill("#field-task", "reports.build")
    await page.fill("#field-payload", '{"customer": 42}')
    await page.select_option("#cb-mode", "weekly")
    await page.fill("#cb-time", "19:00")
    await page.check('[data-cb-day][value="3"]')
    assert await page.input_value("#field-cron") == "0 19 * * 1,3"
    preview = page.locator("#cron-preview .preview-text")
    await preview.filter(has_text="Monday").filter(has_text="Wednesday").wait_for(timeout=WAIT_MS)
    assert ZONE in await preview.inner_text()

    await page.fill("#field-cron", "61 19 * * *")  # typed by hand: checked as it is typed
    problem = page.locator('#cron-preview [data-valid=false][data-field="cron"]')
    await problem.filter(has_text="61 is out of range 0-59").wait_for(timeout=WAIT_MS)
    assert await page.get_attribute("#field-cron", "aria-invalid") == "true"
    assert await page.input_value("#cb-mode") == "custom"

    await page.select_option("#cb-mode", "daily")
    assert await page.input_value("#field-cron") == "0 19 * * *"
    await preview.filter(has_text=f"At 19:00 every day ({ZONE})").wait_for(timeout=WAIT_MS)
    assert await page.locator("#cron-preview .next-runs li").count() == 5
    assert await page.get_attribute("#field-cron", "aria-invalid") is None
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(IMAGES / "dashboard-schedule-form.png"), full_page=True)

    await page.click("#save-schedule")
    await page.wait_for_url("**/schedules/*?done=created")
    await page.locator(".alert-ok", has_text="The schedule was created.").wait_for()
    schedule_url = page.url.split("?")[0]
    next_date = await page.locator(".next-runs time").first.inner_text()
    assert "19:00" in next_date  # shown in the viewer's zone, the schedule's too

    await page.goto(f"{site.url}/schedules")
    await page.locator("tr[data-schedule=nightly-report] .state-active").wait_for()
    await page.screenshot(path=str(IMAGES / "dashboard-schedules.png"))

    await _see_it_on_the_calendar(site, page)
    await _edit_it(page, schedule_url)
    await _delete_it(page, schedule_url)


async def _see_it_on_the_calendar(served: Site, page: Any) -> None:
    await page.goto(f"{served.url}/schedules/calendar")
    await page.locator(f'[data-zone-shown="{ZONE}"]').wait_for()
    month = page.locator(".cal-month")
    nightly = month.locator('a[data-look="planned"]', has_text="nightly-report")
    await nightly.first.wait_for(state="attached")  # perhaps behind "+N more"
    assert "19:00" in (await nightly.first.get_attribute("title") or "")
    for look in ("completed", "discarded", "available"):
        assert await month.locator(f'a[data-look="{look}"]', has_text="inventory-sync").count()
    await page.screenshot(path=str(IMAGES / "dashboard-calendar.png"), full_page=True)

    await page.click(".actions >> text=Week")
    await page.wait_for_url("**view=week**")
    week = page.locator(".cal-week")
    at_seven = week.locator('td[data-hour="19"] a[data-look="planned"]', has_text="nightly-report")
    if not await at_seven.count():  # late on a Sunday: the next run is in the next week
        await page.click("a[rel=next]")
        await page.wait_for_url("**view=week**date=**")
    assert await at_seven.count() >= 1
    href = await at_seven.first.get_attribute("href")
    assert href is not None and href.startswith("/schedules/")


async def _edit_it(page: Any, schedule_url: str) -> None:
    await page.goto(schedule_url)
    await page.click(".actions >> text=Edit")
    await page.wait_for_url("**/edit")
    assert await page.input_value("#cb-mode") == "daily"  # read back from the expression
    await page.select_option("#cb-mode", "weekly")
    for day in ("2", "3", "4", "5"):
        await page.check(f'[data-cb-day][value="{day}"]')
    await page.fill("#cb-time", "07:30")
    assert await page.input_value("#field-cron") == "30 7 * * 1,2,3,4,5"
    preview = page.locator("#cron-preview .preview-text", has_text="07:30")
    await preview.wait_for(timeout=WAIT_MS)
    await page.click("#save-schedule")
    await page.wait_for_url("**?done=saved")
    timing = await page.locator("#schedule-timing").inner_text()
    assert "07:30" in timing and ZONE in timing


async def _delete_it(page: Any, schedule_url: str) -> None:
    await page.click(".actions >> text=Delete")
    await page.wait_for_url("**/delete")
    await page.locator("h1", has_text="Delete schedule “nightly-report”?").wait_for()
    await page.click("#confirm-delete")
    await page.wait_for_url("**/schedules?done=deleted")
    await page.locator(".alert-ok", has_text="were deleted").wait_for()
    assert await page.locator("tr[data-schedule=nightly-report]").count() == 0
    response = await page.goto(schedule_url)
    assert response is not None and response.status == 404
