"""``/api/v1/jobs``: create, list, read, edit, retry, cancel, bulk actions, artifacts, results."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import AwareDatetime

from conveyor.domain.jobs import JobFilter
from conveyor.domain.lifecycle import JobState, NotEditable
from conveyor.services.jobs import JobService
from conveyor.web.auth import ReadJobs, WriteJobs, job_writer
from conveyor.web.problems import problem
from conveyor.web.quick import json_body, quick_route
from conveyor.web.responses import artifact_download, json_response
from conveyor.web.routes.params import MAX_ID, Cursor, JobId, Limit, parse_cursor
from conveyor.web.schemas import (
    ArtifactOut,
    AttemptOut,
    BulkIn,
    BulkOut,
    EventOut,
    JobBatchIn,
    JobDetailOut,
    JobIn,
    JobList,
    JobOut,
    JobPage,
    JobPatchIn,
    ResultOut,
    ResultPage,
)

router = APIRouter(tags=["jobs"])

Text = Annotated[str | None, Query(max_length=255)]


MAX_IDEMPOTENCY_KEY = 255


async def enqueue_one(jobs: JobService, body: JobIn, idempotency_key: str | None) -> Response:
    """Create the job ``body`` asks for and answer with it (201)."""
    options = body.options()
    if idempotency_key and "message_id" not in options:
        options["message_id"] = idempotency_key
    return json_response(JobOut.of(await jobs.enqueue(body.task, body.payload, options)), 201)


async def enqueue_batch(jobs: JobService, body: JobBatchIn) -> Response:
    """Create the jobs ``body`` asks for in one transaction and answer with them (201)."""
    requests = [(job.task, job.payload, job.options()) for job in body.jobs]
    return json_response(JobList.of(await jobs.enqueue_many(requests)), 201)


async def create_job(
    body: JobIn,
    jobs: WriteJobs,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_IDEMPOTENCY_KEY)] = None,
) -> Response:
    """Create one job; answered only after it is committed. A repeated
    ``message_id`` (or ``Idempotency-Key`` header) returns the first job."""
    return await enqueue_one(jobs, body, idempotency_key)


async def create_job_quickly(request: Request) -> Response | None:
    """:func:`create_job` for a well-formed request; ``None`` for any other."""
    body = await json_body(request, JobIn)
    idempotency_key = request.headers.get("idempotency-key")
    if body is None or (idempotency_key and len(idempotency_key) > MAX_IDEMPOTENCY_KEY):
        return None
    return await enqueue_one(await job_writer(request), body, idempotency_key)


router.add_api_route(
    "/jobs",
    create_job,
    methods=["POST"],
    status_code=201,
    summary="Create a job",
    response_model=JobOut,
    route_class_override=quick_route(create_job_quickly),
)


async def create_jobs(body: JobBatchIn, jobs: WriteJobs) -> Response:
    """Create up to 1,000 jobs at once: all are committed, or none (the error names
    the job, as ``jobs[3].priority``)."""
    return await enqueue_batch(jobs, body)


async def create_jobs_quickly(request: Request) -> Response | None:
    """:func:`create_jobs` for a well-formed request; ``None`` for any other."""
    body = await json_body(request, JobBatchIn)
    return None if body is None else await enqueue_batch(await job_writer(request), body)


router.add_api_route(
    "/jobs/batch",
    create_jobs,
    methods=["POST"],
    status_code=201,
    summary="Create jobs in one transaction",
    response_model=JobList,
    route_class_override=quick_route(create_jobs_quickly),
)


@router.get("/jobs", summary="List jobs", response_model=JobPage)
async def list_jobs(
    jobs: ReadJobs,
    state: JobState | None = None,
    queue: Text = None,
    task: Text = None,
    key: Text = None,
    tag: Text = None,
    assignee: Text = None,
    created_after: AwareDatetime | None = None,
    created_before: AwareDatetime | None = None,
    q: Annotated[str | None, Query(max_length=255, description="Text in task/key/payload")] = None,
    order: Literal["newest", "oldest"] = "newest",
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """Jobs matching every filter given, newest first by default, a page at a time."""
    filters = JobFilter(
        state=state,
        queue=queue,
        task=task,
        key=key,
        tag=tag,
        assignee=assignee,
        created_after=created_after,
        created_before=created_before,
        text=q,
        after_id=parse_cursor(cursor),
        limit=limit,
        newest_first=order == "newest",
    )
    found = await jobs.list_jobs(filters)
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return json_response(JobPage(items=[JobOut.of(job) for job in found], next_cursor=next_cursor))


# Declared before /jobs/{job_id}/...: routes match in order, and "bulk" is not an id.
@router.post("/jobs/bulk/{action}", summary="Retry or cancel many jobs")
async def bulk_action(action: Literal["retry", "cancel"], body: BulkIn, jobs: WriteJobs) -> BulkOut:
    """Apply ``retry`` or ``cancel`` to every job matching the filter (up to ``limit``);
    jobs whose state forbids it are listed as skipped."""
    filters = JobFilter(
        state=body.state,
        queue=body.queue,
        task=body.task,
        key=body.key,
        tag=body.tag,
        assignee=body.assignee,
        text=body.q,
    )
    result = await jobs.bulk(action, filters, body.limit)
    return BulkOut(matched=result.matched, changed=result.changed, skipped=result.skipped)


@router.get("/jobs/{job_id}", summary="Get a job with its history")
async def get_job(job_id: JobId, jobs: ReadJobs) -> JobDetailOut:
    """A job with every attempt (errors and tracebacks), its events and artifacts."""
    detail = await jobs.detail(job_id)
    return JobDetailOut(
        job=JobOut.of(detail.job),
        attempts=[AttemptOut.of(a) for a in detail.attempts],
        events=[EventOut.of(e) for e in detail.events],
        artifacts=[ArtifactOut.of(a) for a in detail.artifacts],
    )


@router.patch("/jobs/{job_id}", summary="Edit a job that has not started", response_model=JobOut)
async def edit_job(job_id: JobId, body: JobPatchIn, jobs: WriteJobs) -> Response:
    """Change the fields sent (a JSON merge: payload, run_at or delay, priority, queue,
    assignee, key, tags, max_attempts, timeout) of a ``scheduled`` or ``available`` job,
    with a ``job.edited`` event. Once the job is running, retryable or finished: 409,
    with its current ``state`` in the problem."""
    try:
        job = await jobs.edit(job_id, body.changes())
    except NotEditable as exc:
        return problem(409, exc.message, state=str(exc.state))
    return json_response(JobOut.of(job))


@router.post("/jobs/{job_id}/retry", summary="Run a finished job again")
async def retry_job(job_id: JobId, jobs: WriteJobs) -> JobOut:
    """Make a completed, discarded or cancelled job available again; 409 otherwise."""
    return JobOut.of(await jobs.retry(job_id))


@router.post("/jobs/{job_id}/cancel", summary="Cancel a job")
async def cancel_job(job_id: JobId, jobs: WriteJobs) -> JobOut:
    """Cancel a job that has not finished; 409 once it has."""
    return JobOut.of(await jobs.cancel(job_id, "cancelled through the API"))


@router.get("/jobs/{job_id}/artifacts", summary="List a job's files")
async def list_artifacts(job_id: JobId, jobs: ReadJobs) -> list[ArtifactOut]:
    """The files a job produced, with size and SHA-256."""
    return [ArtifactOut.of(a) for a in await jobs.artifacts(job_id)]


@router.get(
    "/jobs/{job_id}/artifacts/{artifact_id}",
    summary="Download a job's file",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_artifact(
    job_id: JobId,
    artifact_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    jobs: ReadJobs,
) -> FileResponse:
    """The exact bytes of an artifact; ``X-Checksum-SHA256`` carries its checksum."""
    return artifact_download(await jobs.artifact_file(job_id, artifact_id))


@router.get("/results", tags=["results"], summary="Query results")
async def list_results(
    jobs: ReadJobs,
    key: Text = None,
    task: Text = None,
    tag: Text = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> ResultPage:
    """Completed jobs' results, by business key, task, tag and creation time."""
    filters = JobFilter(
        state=JobState.COMPLETED,
        key=key,
        task=task,
        tag=tag,
        created_after=since,
        created_before=until,
        after_id=parse_cursor(cursor),
        limit=limit,
    )
    found = await jobs.list_jobs(filters)
    items = [
        ResultOut(
            job_id=job.id,
            task=job.task,
            key=job.key,
            tags=list(job.tags),
            result=job.result,
            finished_at=job.finished_at,
        )
        for job in found
    ]
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return ResultPage(items=items, next_cursor=next_cursor)
