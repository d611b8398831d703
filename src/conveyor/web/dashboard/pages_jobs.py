"""``/jobs``: the filtered, paginated, live job list, and one job's page with its
attempts, notes, events and files, and the retry and cancel buttons."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from conveyor.domain.digits import whole_number
from conveyor.domain.errors import InvalidInput, NotFound
from conveyor.domain.events import EventType
from conveyor.domain.jobs import Job, JobFilter
from conveyor.domain.lifecycle import JobState
from conveyor.web.dashboard.access import CheckedForm, SignedIn, Writer, jobs_of
from conveyor.web.dashboard.forms import checked_id, done_message
from conveyor.web.dashboard.render import page
from conveyor.web.dashboard.routing import dashboard_router
from conveyor.web.dashboard.session import Viewer
from conveyor.web.dashboard.zone import local_moment, viewer_zone
from conveyor.web.responses import artifact_download
from conveyor.web.routes.params import MAX_ID

router = dashboard_router()

PAGE_SIZE = 50
MAX_TEXT = 255
TEXT_FILTERS = ("queue", "task", "key", "tag", "assignee", "q")
TIME_FILTERS = ("from", "to")
"""Created from (inclusive) and to (exclusive), in the viewer's zone."""
DONE_MESSAGES = {"retried": "The job will run again.", "cancelled": "The job was cancelled."}
BULK_LIMIT = 1000
"""The most jobs one bulk action from the dashboard changes (the API's default)."""
BULK_VERBS = {"retry": ("Retry", "retried"), "cancel": ("Cancel", "cancelled")}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The job list's filters and page, as read from the query string."""

    values: dict[str, str]
    state: JobState | None
    cursor: int | None
    created: tuple[datetime | None, datetime | None] = (None, None)
    """Created from and to (``from`` and ``to``, read in the viewer's zone)."""

    @classmethod
    def parse(cls, params: Any, zone: str = "UTC") -> ListQuery:
        """Read and check the filters; ``InvalidInput`` names a bad one."""
        names = (*TEXT_FILTERS, *TIME_FILTERS, "state")
        values = {name: str(params.get(name, "")).strip() for name in names}
        values = {name: value for name, value in values.items() if value}
        for name, value in values.items():
            if len(value) > MAX_TEXT:
                raise InvalidInput(name, f"must be at most {MAX_TEXT} characters")
        state = values.get("state")
        if state is not None and state not in {s.value for s in JobState}:
            raise InvalidInput("state", "is not a job state")
        start, end = (
            local_moment(name, values[name], zone) if name in values else None
            for name in TIME_FILTERS
        )
        cursor = _cursor(params.get("cursor"))
        return cls(values, JobState(state) if state else None, cursor, (start, end))

    def job_filter(self) -> JobFilter:
        """The service's filter for one page."""
        get = self.values.get
        return JobFilter(
            state=self.state,
            queue=get("queue"),
            task=get("task"),
            key=get("key"),
            tag=get("tag"),
            assignee=get("assignee"),
            text=get("q"),
            created_after=self.created[0],
            created_before=self.created[1],
            after_id=self.cursor,
            limit=PAGE_SIZE,
        )

    def bulk_filter(self) -> JobFilter:
        """The filter a bulk action applies to: this list's, every page."""
        return replace(self.job_filter(), after_id=None, limit=BULK_LIMIT)

    def query_string(self, **changes: str | None) -> str:
        """This list's query string with some values changed (``None`` drops one)."""
        merged: dict[str, str | None] = {**self.values, **changes}
        return urlencode({k: v for k, v in merged.items() if v})


def _cursor(raw: object) -> int | None:
    if raw in (None, ""):
        return None
    return whole_number("cursor", raw, 1, MAX_ID, "must be a job id")


async def list_context(request: Request, viewer: Viewer) -> dict[str, Any]:
    """One page of the job list and its paging links."""
    zone, _ = viewer_zone(request)
    query = ListQuery.parse(request.query_params, zone)
    found: list[Job] = await jobs_of(request, viewer).list_jobs(query.job_filter())
    next_cursor = str(found[-1].id) if len(found) == PAGE_SIZE else None
    return {
        "jobs": found,
        "query": query,
        "bulk_done": _bulk_done(request.query_params),
        "zone": zone,
        "filters": query.values,
        "next_link": f"/jobs?{query.query_string(cursor=next_cursor)}" if next_cursor else None,
        "first_link": f"/jobs?{query.query_string()}" if query.cursor else None,
        "fragment_query": query.query_string(cursor=str(query.cursor) if query.cursor else None),
    }


@router.get("/jobs")
async def job_list(request: Request, viewer: SignedIn) -> Response:
    """Jobs matching the filters, newest first, a page at a time."""
    context = await list_context(request, viewer)
    return page(request, "jobs.html", viewer, section="jobs", **context)


@router.get("/fragments/jobs")
async def job_rows(request: Request, viewer: SignedIn) -> Response:
    """The rows of the job list, fetched again by the page when events arrive."""
    context = await list_context(request, viewer)
    return page(request, "_job_rows.html", viewer, **context)


def _bulk_done(params: Any) -> str | None:
    """The message after a bulk action, read back from the redirect's query string."""
    verb = BULK_VERBS.get(str(params.get("bulk", "")))
    try:
        changed = whole_number("changed", params.get("changed"), 0, BULK_LIMIT)
        skipped = whole_number("skipped", params.get("skipped"), 0, BULK_LIMIT)
    except InvalidInput:
        return None
    if verb is None:
        return None
    left = f"; {skipped} skipped (their state does not allow it)" if skipped else ""
    full = changed + skipped == BULK_LIMIT
    more = " More may match: run it again for the next ones." if full else ""
    return f"{verb[1].capitalize()} {changed} jobs{left}.{more}"


def _bulk_action(action: str) -> tuple[str, str]:
    verb = BULK_VERBS.get(action)
    if verb is None:
        raise NotFound("there is no such bulk action")
    return verb


def _bulk_query(request: Request, params: Any) -> ListQuery:
    query = ListQuery.parse(params, viewer_zone(request)[0])
    if not query.values:
        raise InvalidInput("filters", "choose at least one: a bulk action never means every job")
    return query


@router.get("/jobs/bulk/{action}")
async def confirm_bulk(request: Request, viewer: Writer, action: str) -> Response:
    """What a bulk action will apply to, with the button that does it."""
    verb = _bulk_action(action)
    query = _bulk_query(request, request.query_params)
    return page(
        request,
        "jobs_bulk.html",
        viewer,
        section="jobs",
        action=action,
        verb=verb[0],
        query=query,
        filters=query.values,
        limit=BULK_LIMIT,
        back=f"/jobs?{query.query_string()}",
    )


@router.post("/jobs/bulk/{action}")
async def run_bulk(request: Request, viewer: Writer, form: CheckedForm, action: str) -> Response:
    """Retry or cancel every job matching the list's filters (up to ``BULK_LIMIT``)."""
    _bulk_action(action)
    query = _bulk_query(request, form)
    result = await jobs_of(request, viewer).bulk(action, query.bulk_filter(), BULK_LIMIT)
    done = {"bulk": action, "changed": str(len(result.changed))}
    done["skipped"] = str(len(result.skipped))
    return RedirectResponse(f"/jobs?{query.query_string(**done)}", status_code=303)


async def job_context(request: Request, viewer: Viewer, job_id: int) -> dict[str, Any]:
    """Everything one job's page shows."""
    detail = await jobs_of(request, viewer).detail(checked_id("job", job_id))
    notes = [e for e in detail.events if e.type == EventType.JOB_NOTE]
    return {
        "job": detail.job,
        "attempts": sorted(detail.attempts, key=lambda a: a.attempt, reverse=True),
        "events": list(reversed(detail.events)),
        "notes": notes,
        "artifacts": detail.artifacts,
        "may_retry": viewer.may_write and detail.job.state in RETRYABLE_STATES,
        "may_cancel": viewer.may_write and detail.job.state in CANCELLABLE_STATES,
    }


RETRYABLE_STATES = frozenset({JobState.COMPLETED, JobState.DISCARDED, JobState.CANCELLED})
CANCELLABLE_STATES = frozenset(
    {JobState.SCHEDULED, JobState.AVAILABLE, JobState.RUNNING, JobState.RETRYABLE}
)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, viewer: SignedIn, job_id: int) -> Response:
    """One job with its payload, attempts, notes, events and files."""
    context = await job_context(request, viewer, job_id)
    done = done_message(request, DONE_MESSAGES)
    return page(request, "job.html", viewer, section="jobs", done=done, **context)


@router.get("/fragments/jobs/{job_id}")
async def job_fragment(request: Request, viewer: SignedIn, job_id: int) -> Response:
    """The changing part of a job's page, fetched again when its events arrive."""
    context = await job_context(request, viewer, job_id)
    part = "_job_history.html" if request.query_params.get("part") == "history" else None
    return page(request, part or "_job_live.html", viewer, **context)


@router.post("/jobs/{job_id}/retry")
async def retry_job(request: Request, viewer: Writer, form: CheckedForm, job_id: int) -> Response:
    """Run a finished job again (as the API's retry, with the viewer's permissions)."""
    await jobs_of(request, viewer).retry(checked_id("job", job_id))
    return RedirectResponse(f"/jobs/{job_id}?done=retried", status_code=303)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, viewer: Writer, form: CheckedForm, job_id: int) -> Response:
    """Cancel a job that has not finished."""
    await jobs_of(request, viewer).cancel(checked_id("job", job_id), "cancelled from the dashboard")
    return RedirectResponse(f"/jobs/{job_id}?done=cancelled", status_code=303)


@router.get("/jobs/{job_id}/artifacts/{artifact_id}")
async def download_artifact(
    request: Request, viewer: SignedIn, job_id: int, artifact_id: int
) -> Response:
    """A job's file, by the same rules as the API's download."""
    jobs = jobs_of(request, viewer)
    return artifact_download(await jobs.artifact_file(checked_id("job", job_id), artifact_id))
