"""Incoming hook use cases: manage a tenant's hooks and read what they received
(:class:`HookService`), and receive a request at a hook's secret URL
(:class:`HookReceiver`).

Owners (and ``admin`` API keys) create, change, rotate and delete hooks; members (and
keys that may read jobs) may read hooks and receipts; agents see nothing here. A
hook's URL token is returned by :meth:`HookService.create` and
:meth:`HookService.rotate_token` only (shown once); its verification secret by
:meth:`HookService.create` and by a change that makes a new one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor.domain.accounts import Principal, Scope
from conveyor.domain.errors import ConveyorError, InvalidInput, NotFound, PermissionDenied
from conveyor.domain.hooks import (
    SHELL_TASK,
    HookSpec,
    IncomingHook,
    IpNetwork,
    NewReceipt,
    Receipt,
    ReceiptFilter,
    VerifyScheme,
    check_secret,
    checked_spec,
    delivery_id_of,
    first_values,
    job_message_id,
    kept_headers,
    new_hook_secret,
    new_receipt_id,
    new_token,
    payload_of,
    received_data,
    sender_ip,
    token_hash,
    verify,
)
from conveyor.services.jobs import JobService
from conveyor.store.hooks_protocol import HookStore

log = logging.getLogger("conveyor.hooks")

Clock = Callable[[], datetime]
CHANGEABLE = frozenset(
    {
        "name",
        "description",
        "enabled",
        "verify",
        "signature_header",
        "delivery_header",
        "task",
        "queue",
        "priority",
        "secret",
    }
)


@dataclass(frozen=True, slots=True)
class Revealed:
    """A hook with what is shown once: its URL token and/or a new secret."""

    hook: IncomingHook
    token: str | None = None
    secret: str | None = None


class HookService:
    """One tenant's incoming hooks and their receipts, as its principal may use them."""

    def __init__(
        self,
        store: HookStore,
        principal: Principal,
        clock: Clock,
        jobs: JobService | None = None,
    ) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock
        self.jobs = jobs
        """The principal's job service: checks a hook's task options as an enqueue would."""

    @property
    def tenant_id(self) -> str:
        """The tenant whose hooks these are: the principal's."""
        return self.principal.tenant_id

    def _may_read(self) -> None:
        if self.principal.assigned_only:
            raise PermissionDenied("agents cannot see incoming hooks")
        self.principal.require(Scope.JOBS_READ)

    def _may_manage(self) -> None:
        self.principal.require(Scope.ADMIN)

    def _check_task(self, spec: HookSpec) -> None:
        if spec.task is not None and self.jobs is not None:
            options = {"queue": spec.queue, "priority": spec.priority}
            self.jobs.build(spec.task, None, options)

    async def create(self, spec: HookSpec, secret: str | None = None) -> Revealed:
        """Store a hook; the answer holds its URL token and secret (shown once)."""
        self._may_manage()
        spec = checked_spec(spec)
        self._check_task(spec)
        if secret is None:
            secret = new_hook_secret(spec.verify)
        token = new_token()
        hook = await self.store.add(
            self.tenant_id, spec, check_secret(spec.verify, secret), token_hash(token), self.clock()
        )
        return Revealed(hook, token=token, secret=secret or None)

    async def list_hooks(self) -> list[IncomingHook]:
        """The tenant's hooks, oldest first."""
        self._may_read()
        return await self.store.list_hooks(self.tenant_id)

    async def get(self, hook_id: int) -> IncomingHook:
        """One hook."""
        self._may_read()
        return await self.store.get(self.tenant_id, hook_id)

    async def update(self, hook_id: int, changes: Mapping[str, Any]) -> Revealed:
        """Change the fields given. A new scheme without a ``secret`` gets a fresh one
        (in the answer) unless the current secret suits it."""
        self._may_manage()
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "cannot be changed")
        current = await self.store.get(self.tenant_id, hook_id)
        fields = {k: v for k, v in changes.items() if k != "secret"}
        spec = checked_spec(dataclasses.replace(current.spec, **fields))
        self._check_task(spec)
        secret, revealed = _next_secret(current, spec.verify, changes.get("secret"))
        hook = await self.store.update(
            self.tenant_id, hook_id, spec, check_secret(spec.verify, secret), self.clock()
        )
        return Revealed(hook, secret=revealed)

    async def delete(self, hook_id: int) -> None:
        """Delete a hook and every request it received."""
        self._may_manage()
        await self.store.delete(self.tenant_id, hook_id)

    async def rotate_token(self, hook_id: int) -> Revealed:
        """Give the hook a new URL (shown once); the old one answers 404 from now on."""
        self._may_manage()
        token = new_token()
        hook = await self.store.set_token(self.tenant_id, hook_id, token_hash(token), self.clock())
        return Revealed(hook, token=token)

    async def receipts(self, hook_id: int, filters: ReceiptFilter) -> list[Receipt]:
        """A hook's received requests, newest first."""
        await self.get(hook_id)
        if filters.before is not None:
            try:
                await self.store.get_receipt(self.tenant_id, hook_id, filters.before)
            except NotFound:
                raise InvalidInput("before", "is not a cursor this API returned") from None
        return await self.store.list_receipts(self.tenant_id, hook_id, filters)

    async def receipt(self, hook_id: int, receipt_id: str) -> Receipt:
        """One received request, without its body."""
        self._may_read()
        return await self.store.get_receipt(self.tenant_id, hook_id, receipt_id)

    async def body(self, hook_id: int, receipt_id: str) -> bytes:
        """A received request's body, byte for byte."""
        self._may_read()
        return await self.store.receipt_body(self.tenant_id, hook_id, receipt_id)


def _next_secret(
    current: IncomingHook, scheme: VerifyScheme, given: object
) -> tuple[str, str | None]:
    """The secret to keep and the one to reveal (a generated one only)."""
    if given is not None:
        if not isinstance(given, str):
            raise InvalidInput("secret", "must be a string")
        return given, None
    if scheme is current.spec.verify:
        return current.secret, None
    fresh = new_hook_secret(scheme)
    return fresh, fresh or None


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """What arrived at a hook's URL."""

    method: str
    headers: Sequence[tuple[str, str]]
    body: bytes
    peer: str | None
    """The socket peer's address."""


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to a sender: the receipt, its job, and whether it was a redelivery."""

    receipt: Receipt
    job_id: int | None
    duplicate: bool


class HookReceiver:
    """Receives requests at hooks' secret URLs, for every tenant."""

    def __init__(
        self,
        store: HookStore,
        jobs_for: Callable[[str], JobService],
        clock: Clock,
        trusted_proxies: Sequence[IpNetwork] = (),
    ) -> None:
        self.store = store
        self.jobs_for = jobs_for
        """A tenant's job service, as the server itself uses it."""
        self.clock = clock
        self.trusted_proxies = trusted_proxies

    async def find(self, token: str) -> IncomingHook:
        """The enabled hook a URL token names; ``NotFound`` if none (looked up before
        the body is read, so an unknown URL costs no buffering)."""
        hook = await self.store.by_token(token_hash(token))
        if hook is None:
            raise NotFound("no such hook (the URL is wrong, or the hook is disabled)")
        return hook

    async def receive(self, token: str, request: IncomingRequest) -> Received:
        """:meth:`find` the hook, then :meth:`accept` the request."""
        return await self.accept(await self.find(token), request)

    async def accept(self, hook: IncomingHook, request: IncomingRequest) -> Received:
        """Verify, store (once per delivery id) and, if the hook says so, enqueue.

        ``BadSignature`` for a failed check, ``InvalidInput``/``UnsupportedBody`` for a
        body its task cannot take: then nothing is stored."""
        now = self.clock()
        headers = first_values(request.headers)
        verify(hook, headers, request.body, now)
        new = NewReceipt(
            id=new_receipt_id(),
            tenant_id=hook.tenant_id,
            hook_id=hook.id,
            delivery_id=delivery_id_of(hook, headers),
            method=request.method,
            content_type=headers.get("content-type", ""),
            headers=kept_headers(request.headers),
            body=request.body,
            ip=sender_ip(
                request.peer, _all(request.headers, "x-forwarded-for"), self.trusted_proxies
            ),
            received_at=now,
            verified=hook.spec.verify is not VerifyScheme.NONE,
            task=hook.spec.task,
        )
        jobs = self.jobs_for(hook.tenant_id)
        if new.task is not None:
            jobs.build(*_job_request(hook, new.task, new.id, new.delivery_id, headers, new.body))
        receipt, duplicate = await self.store.record(hook, new, received_data(hook, new))
        if receipt.task is not None and receipt.job_id is None:
            body = request.body if not duplicate else None
            receipt = await self._enqueue(hook, receipt, receipt.task, jobs, body)
        return Received(receipt, receipt.job_id, duplicate)

    async def enqueue_lost(self, since: datetime, before: datetime, limit: int = 100) -> int:
        """Enqueue the jobs of receipts received in ``[since, before)`` whose enqueue
        failed (a task, no job): the job's message id is the first attempt's, so a job
        that was made after all is found, not made twice. How many were enqueued."""
        done = 0
        for receipt in await self.store.unenqueued(since, before, limit):
            if receipt.task is None:
                continue
            try:
                hook = await self.store.get(receipt.tenant_id, receipt.hook_id)
                jobs = self.jobs_for(receipt.tenant_id)
                await self._enqueue(hook, receipt, receipt.task, jobs, None)
            except ConveyorError as exc:
                log.warning("hook receipt %s: enqueue failed again: %s", receipt.id, exc.message)
                continue
            done += 1
        return done

    async def _enqueue(
        self,
        hook: IncomingHook,
        receipt: Receipt,
        task: str,
        jobs: JobService,
        body: bytes | None,
    ) -> Receipt:
        """Enqueue a stored receipt's job (idempotent by its message id) and record it;
        ``body`` is read back from the store when not given (a redelivery's is not the
        stored one)."""
        if body is None:
            body = await self.store.receipt_body(receipt.tenant_id, receipt.hook_id, receipt.id)
        headers = first_values(receipt.headers)
        request = _job_request(hook, task, receipt.id, receipt.delivery_id, headers, body)
        job = await jobs.enqueue(*request)
        return await self.store.set_job(receipt.tenant_id, receipt.id, job.id)


def _all(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _job_request(
    hook: IncomingHook,
    task: str,
    receipt_id: str,
    delivery_id: str | None,
    headers: Mapping[str, str],
    body: bytes,
) -> tuple[str, Any, dict[str, Any]]:
    """The enqueue request for a received body: task, payload, options."""
    if task == SHELL_TASK:
        raise InvalidInput("task", "a hook cannot enqueue shell jobs")
    content_type = headers.get("content-type", "")
    payload = payload_of(body, content_type)
    options = {
        "queue": hook.spec.queue,
        "priority": hook.spec.priority,
        "message_id": job_message_id(hook.id, delivery_id, receipt_id),
        "content_type": content_type[:255] or "text/plain",
        "content_encoding": headers.get("content-encoding") or None,
    }
    return task, payload, options
