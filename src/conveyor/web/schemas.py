"""Request and response bodies of the API (pydantic models, shown in the OpenAPI)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from conveyor.domain.accounts import (
    ApiKey,
    AuditEntry,
    Membership,
    Role,
    Scope,
    Tenant,
    TenantUsage,
    User,
)
from conveyor.domain.events import Event
from conveyor.domain.jobs import Artifact, Attempt, Job
from conveyor.domain.lifecycle import JobState
from conveyor.store.protocol import QueueInfo, WorkerInfo

Name = Field(min_length=1, max_length=128)


class Body(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# -- jobs -----------------------------------------------------------------------------


class JobIn(Body):
    """One job to create. Unset options take the task's defaults."""

    task: str = Field(min_length=1, max_length=128, examples=["reports.build"])
    payload: Any = Field(default=None, examples=[{"customer": 42}])
    queue: str | None = Field(default=None, min_length=1, max_length=128)
    priority: int | None = Field(default=None, ge=0, le=9, description="0 highest .. 9 lowest")
    run_at: datetime | None = None
    delay: float | None = Field(default=None, ge=0, description="Seconds from now")
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0)
    message_id: str | None = Field(default=None, min_length=1, max_length=255)
    content_type: str | None = Field(default=None, max_length=255)
    content_encoding: str | None = Field(default=None, max_length=255)
    key: str | None = Field(default=None, max_length=255)
    tags: list[str] | None = Field(default=None, max_length=50)
    assignee: str | None = Field(default=None, max_length=255)
    immediate: bool | None = None

    def options(self) -> dict[str, Any]:
        """The enqueue options that were set."""
        return self.model_dump(exclude={"task", "payload"}, exclude_none=True)


class JobPatchIn(Body):
    """Changes to a job that has not started (``scheduled`` or ``available``): only the
    fields sent change, checked as on create; ``payload`` is replaced whole. ``null``
    gives what a job created without the field gets (payload ``{}``, run now; no key,
    assignee, timeout or tags). A new ``run_at`` (or ``delay``) makes the job
    ``scheduled``, or ``available`` when that time has come."""

    payload: Any = Field(default=None, examples=[{"customer": 42}])
    queue: str | None = Field(default=None, min_length=1, max_length=128)
    priority: int | None = Field(default=None, ge=0, le=9, description="0 highest .. 9 lowest")
    run_at: datetime | None = None
    delay: float | None = Field(default=None, ge=0, description="Seconds from now")
    max_attempts: int | None = Field(default=None, ge=1, le=1000)
    timeout: float | None = Field(default=None, gt=0)
    key: str | None = Field(default=None, max_length=255)
    tags: list[str] | None = Field(default=None, max_length=50)
    assignee: str | None = Field(default=None, max_length=255)

    def changes(self) -> dict[str, Any]:
        """The fields that were sent, ``null`` included."""
        return self.model_dump(exclude_unset=True)


class JobBatchIn(Body):
    """Several jobs, created in one transaction (all or none)."""

    jobs: list[JobIn] = Field(min_length=1, max_length=1000)


class ErrorOut(BaseModel):
    """What went wrong in an attempt."""

    type: str
    message: str
    traceback: str = ""


class JobOut(BaseModel):
    """A job as the API shows it."""

    id: int
    task: str
    queue: str
    state: JobState
    priority: int
    run_at: datetime
    payload: Any
    attempt: int
    max_attempts: int
    timeout: float | None
    message_id: str | None
    content_type: str
    content_encoding: str
    key: str | None
    tags: list[str]
    assignee: str | None
    immediate: bool
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result: Any
    error: ErrorOut | None
    progress: float | None
    progress_message: str | None
    task_version: int | None = None

    @classmethod
    def of(cls, job: Job) -> JobOut:
        """From the domain record (read by pydantic's compiled validator, attribute by
        attribute: ``tags`` become a list, ``error`` an :class:`ErrorOut`)."""
        return cls.model_validate(job, from_attributes=True)


class JobPage(BaseModel):
    """One page of jobs; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[JobOut]
    next_cursor: str | None


class JobList(BaseModel):
    """Jobs created by one request."""

    items: list[JobOut]

    @classmethod
    def of(cls, jobs: Sequence[Job]) -> JobList:
        """From the domain records, validated in one call (see :meth:`JobOut.of`)."""
        return cls.model_validate({"items": jobs}, from_attributes=True)


class AttemptOut(BaseModel):
    """One finished (or running) attempt of a job."""

    attempt: int
    worker_id: str
    started_at: datetime
    finished_at: datetime | None
    outcome: str | None
    error: ErrorOut | None
    task_version: int | None = None

    @classmethod
    def of(cls, attempt: Attempt) -> AttemptOut:
        """From the domain record."""
        error = ErrorOut(**attempt.error.to_dict()) if attempt.error else None
        return cls(
            attempt=attempt.attempt,
            worker_id=attempt.worker_id,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            outcome=attempt.outcome,
            error=error,
            task_version=attempt.task_version,
        )


class EventOut(BaseModel):
    """Something that happened."""

    id: int
    type: str
    job_id: int | None
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: Event) -> EventOut:
        """From the domain record."""
        return cls(
            id=event.id,
            type=event.type,
            job_id=event.job_id,
            data=event.data,
            created_at=event.created_at,
        )


class ArtifactOut(BaseModel):
    """A file a job produced."""

    id: int
    job_id: int
    name: str
    size: int
    sha256: str
    created_at: datetime

    @classmethod
    def of(cls, artifact: Artifact) -> ArtifactOut:
        """From the domain record (its server path stays private)."""
        return cls(
            id=artifact.id,
            job_id=artifact.job_id,
            name=artifact.name,
            size=artifact.size,
            sha256=artifact.sha256,
            created_at=artifact.created_at,
        )


class JobDetailOut(BaseModel):
    """A job with its attempts, events and artifacts."""

    job: JobOut
    attempts: list[AttemptOut]
    events: list[EventOut]
    artifacts: list[ArtifactOut]


class BulkIn(Body):
    """Which jobs a bulk action applies to (at least one filter)."""

    state: JobState | None = None
    queue: str | None = Field(default=None, max_length=128)
    task: str | None = Field(default=None, max_length=128)
    key: str | None = Field(default=None, max_length=255)
    tag: str | None = Field(default=None, max_length=255)
    assignee: str | None = Field(default=None, max_length=320)
    q: str | None = Field(default=None, max_length=255, description="Text in task, key or payload")
    limit: int = Field(default=1000, ge=1, le=10_000)


class BulkOut(BaseModel):
    """What a bulk action did."""

    matched: int
    changed: list[int]
    skipped: list[int]


class ResultOut(BaseModel):
    """A completed job's result."""

    job_id: int
    task: str
    key: str | None
    tags: list[str]
    result: Any
    finished_at: datetime | None


class ResultPage(BaseModel):
    """One page of results."""

    items: list[ResultOut]
    next_cursor: str | None


class EventPage(BaseModel):
    """Events after a cursor; pass ``next_cursor`` as ``after`` for the next."""

    items: list[EventOut]
    next_cursor: int


# -- queues and workers -------------------------------------------------------------


class QueueOut(BaseModel):
    """A queue's settings and counts by state."""

    name: str
    paused: bool
    concurrency: int | None
    counts: dict[str, int]

    @classmethod
    def of(cls, queue: QueueInfo) -> QueueOut:
        """From the store record."""
        counts = {str(state): n for state, n in queue.counts.items()}
        return cls(
            name=queue.name, paused=queue.paused, concurrency=queue.concurrency, counts=counts
        )


class ConcurrencyIn(Body):
    """A queue's cap on running jobs across all workers (``null``: none)."""

    concurrency: int | None = Field(ge=1, le=100_000)


class WorkerOut(BaseModel):
    """A worker process and its last heartbeat."""

    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    started_at: datetime
    last_seen_at: datetime

    @classmethod
    def of(cls, worker: WorkerInfo) -> WorkerOut:
        """From the store record."""
        return cls(
            id=worker.id,
            hostname=worker.hostname,
            pid=worker.pid,
            queues=list(worker.queues),
            concurrency=worker.concurrency,
            started_at=worker.started_at,
            last_seen_at=worker.last_seen_at,
        )


# -- accounts ----------------------------------------------------------------------------


class LoginIn(Body):
    """Email and password; ``tenant`` picks one of the user's tenants."""

    email: str = Field(min_length=3, max_length=320, examples=["admin@localhost"])
    password: str = Field(min_length=1, max_length=1024)
    tenant: str | None = Field(default=None, max_length=63)


class SessionOut(BaseModel):
    """A new session: a short-lived access token and a refresh token (used once)."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_in: int
    tenant: str


class RefreshIn(Body):
    """A refresh token from the last login or refresh."""

    refresh_token: str = Field(min_length=1, max_length=512)


class SignupIn(Body):
    """Join a tenant that allows sign-up."""

    tenant: str = Field(min_length=2, max_length=63)
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(default="", max_length=200)


class PasswordIn(Body):
    """The current password and a new one (at least 10 characters)."""

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A user, with its role in the current tenant when listed there."""

    id: str
    email: str
    name: str
    is_admin: bool
    time_zone: str
    created_at: datetime
    role: Role | None = None

    @classmethod
    def of(cls, user: User, membership: Membership | None = None) -> UserOut:
        """From the domain records (never the password hash)."""
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            is_admin=user.is_admin,
            time_zone=user.time_zone,
            created_at=user.created_at,
            role=membership.role if membership else None,
        )


class MeOut(BaseModel):
    """The signed-in user and its tenants."""

    user: UserOut
    tenant: str
    role: Role | None
    tenants: dict[str, Role]


class UserIn(Body):
    """Invite a user into this tenant. Without a password, one is generated and shown once."""

    email: str = Field(min_length=3, max_length=320)
    role: Role = Role.MEMBER
    name: str = Field(default="", max_length=200)
    password: str | None = Field(default=None, min_length=1, max_length=1024)


class UserCreatedOut(BaseModel):
    """The invited user; ``password`` only when one was generated."""

    user: UserOut
    password: str | None


class RoleIn(Body):
    """A user's new role in this tenant."""

    role: Role


class TenantIn(Body):
    """A new tenant."""

    id: str = Field(min_length=2, max_length=63, examples=["acme"])
    name: str = Field(min_length=1, max_length=200)
    allow_signup: bool = False


class TenantOut(BaseModel):
    """A tenant."""

    id: str
    name: str
    status: str
    allow_signup: bool
    created_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        """From the domain record."""
        return cls(
            id=tenant.id,
            name=tenant.name,
            status=str(tenant.status),
            allow_signup=tenant.allow_signup,
            created_at=tenant.created_at,
        )


class UsageOut(BaseModel):
    """A tenant's usage in a window."""

    tenant: str
    since: datetime
    until: datetime
    jobs_by_state: dict[str, int]
    run_seconds: float
    storage_bytes: int

    @classmethod
    def of(cls, usage: TenantUsage) -> UsageOut:
        """From the domain record."""
        return cls(
            tenant=usage.tenant_id,
            since=usage.since,
            until=usage.until,
            jobs_by_state=dict(usage.jobs_by_state),
            run_seconds=usage.run_seconds,
            storage_bytes=usage.storage_bytes,
        )


class ApiKeyIn(Body):
    """A new API key of this tenant."""

    name: str = Field(min_length=1, max_length=200, examples=["billing worker"])
    scopes: list[Scope] = Field(min_length=1, examples=[["jobs:read", "jobs:write"]])


class ApiKeyOut(BaseModel):
    """An API key, known by its prefix."""

    id: str
    name: str
    prefix: str
    scopes: list[Scope]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        """From the domain record (never the hash)."""
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=sorted(key.scopes),
            created_by=key.created_by,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreatedOut(BaseModel):
    """A new key: ``key`` is shown only now; keep it safe."""

    api_key: ApiKeyOut
    key: str


class AuditOut(BaseModel):
    """One change made through the API."""

    id: int
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    ip: str | None
    created_at: datetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        """From the domain record."""
        return cls(
            id=entry.id,
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            detail=dict(entry.detail),
            ip=entry.ip,
            created_at=entry.created_at,
        )


class AuditPage(BaseModel):
    """Audit entries after a cursor."""

    items: list[AuditOut]
    next_cursor: int
