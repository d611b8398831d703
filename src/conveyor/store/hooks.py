"""The HookStore, once for both databases.

Not a hot path: the portable queries of ``hooks.sql`` run through the store's
``run_sql`` primitive (bodies go in and come back as ``bytes``: a BLOB on SQLite, a
``bytea`` on PostgreSQL), and rows become :class:`IncomingHook` and :class:`Receipt`
records here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from conveyor.domain.errors import Conflict
from conveyor.domain.events import EventType
from conveyor.domain.hooks import (
    HookSpec,
    IncomingHook,
    NewReceipt,
    Receipt,
    ReceiptFilter,
    VerifyScheme,
)
from conveyor.store.portable import PortableStore, Row
from conveyor.store.protocol import SqlSteps

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


class SqlHookStore(PortableStore):
    """The :class:`~conveyor.store.hooks_protocol.HookStore` on a store's database."""

    sql_file = "hooks.sql"

    async def add(
        self, tenant_id: str, spec: HookSpec, secret: str, token_hash: str, now: datetime
    ) -> IncomingHook:
        """Store a hook."""
        params = _spec_params(spec) | {
            "tenant_id": tenant_id,
            "secret": self._sealed(secret),
            "token_hash": token_hash,
            "now": now,
        }
        try:
            [row] = await self._rows("insert_hook", write=True, **params)
        except Conflict:
            raise Conflict(f"a hook named {spec.name!r} exists already") from None
        return self._hook(row)

    async def get(self, tenant_id: str, hook_id: int) -> IncomingHook:
        """One hook, or ``NotFound``."""
        return self._hook(
            await self._one("get_hook", f"hook {hook_id}", tenant_id=tenant_id, id=hook_id)
        )

    async def list_hooks(self, tenant_id: str) -> list[IncomingHook]:
        """The tenant's hooks, oldest first."""
        return [self._hook(r) for r in await self._rows("list_hooks", tenant_id=tenant_id)]

    async def update(
        self, tenant_id: str, hook_id: int, spec: HookSpec, secret: str, now: datetime
    ) -> IncomingHook:
        """Replace a hook's definition and secret."""
        params = _spec_params(spec) | {
            "tenant_id": tenant_id,
            "id": hook_id,
            "secret": self._sealed(secret),
            "now": now,
        }
        try:
            row = await self._one("update_hook", f"hook {hook_id}", write=True, **params)
        except Conflict:
            raise Conflict(f"a hook named {spec.name!r} exists already") from None
        return self._hook(row)

    async def seal_secrets(self) -> int:
        """See :func:`~conveyor.store.sealing.seal_secrets`; how many it sealed."""
        return await self._seal_secrets("secret")

    def _sealed(self, secret: str) -> str:
        return self.box.seal(secret) if secret else ""  # "": the hook verifies nothing

    async def set_token(
        self, tenant_id: str, hook_id: int, token_hash: str, now: datetime
    ) -> IncomingHook:
        """Give a hook a new URL token."""
        row = await self._one(
            "set_token",
            f"hook {hook_id}",
            write=True,
            tenant_id=tenant_id,
            id=hook_id,
            token_hash=token_hash,
            now=now,
        )
        return self._hook(row)

    async def delete(self, tenant_id: str, hook_id: int) -> None:
        """Delete a hook (its receipts go with it)."""
        await self._one(
            "delete_hook", f"hook {hook_id}", write=True, tenant_id=tenant_id, id=hook_id
        )

    async def by_token(self, token_hash: str) -> IncomingHook | None:
        """The enabled hook of an active tenant with this token hash; a hook that must
        verify but whose secret does not open (another key) raises ``UnreadableSecret``
        rather than let every request through."""
        found = await self._rows("hook_by_token", token_hash=token_hash)
        if not found:
            return None
        if found[0]["secret"]:
            self.box.open(found[0]["secret"])
        return self._hook(found[0])

    async def record(
        self, hook: IncomingHook, receipt: NewReceipt, event: dict[str, Any]
    ) -> tuple[Receipt, bool]:
        """Store a receipt and its event in one transaction, or find the first one."""
        event_params = {
            "tenant_id": receipt.tenant_id,
            "id": receipt.id,
            "type": EventType.HOOK_RECEIVED.value,
            "data": json.dumps(event, separators=(",", ":")),
            "now": receipt.received_at,
        }
        steps: SqlSteps = [
            (self._sql["insert_receipt"], _receipt_params(receipt)),
            (self._sql["insert_received_event"], event_params),
        ]
        inserted, _ = await self.store.run_sql(steps, write=True)
        if inserted:
            return self._receipt(inserted[0]), False
        found = await self._rows(
            "receipt_by_delivery",
            tenant_id=hook.tenant_id,
            hook_id=hook.id,
            delivery_id=receipt.delivery_id,
        )
        if not found:
            raise Conflict(f"delivery {receipt.delivery_id!r} changed meanwhile; send it again")
        return self._receipt(found[0]), True

    async def get_receipt(self, tenant_id: str, hook_id: int, receipt_id: str) -> Receipt:
        """One receipt, or ``NotFound``."""
        row = await self._one(
            "get_receipt",
            f"receipt {receipt_id}",
            tenant_id=tenant_id,
            hook_id=hook_id,
            id=receipt_id,
        )
        return self._receipt(row)

    async def receipt_body(self, tenant_id: str, hook_id: int, receipt_id: str) -> bytes:
        """A receipt's body, byte for byte."""
        row = await self._one(
            "receipt_body",
            f"receipt {receipt_id}",
            tenant_id=tenant_id,
            hook_id=hook_id,
            id=receipt_id,
        )
        return bytes(row["body"])

    async def list_receipts(
        self, tenant_id: str, hook_id: int, filters: ReceiptFilter
    ) -> list[Receipt]:
        """A hook's receipts, newest first."""
        found = await self._rows(
            "list_receipts",
            tenant_id=tenant_id,
            hook_id=hook_id,
            any_delivery=filters.delivery_id is None,
            delivery_id=filters.delivery_id or "",
            since=filters.since or EARLIEST,
            until=filters.until or LATEST,
            first_page=filters.before is None,
            before=filters.before or "",
            limit=filters.limit,
        )
        return [self._receipt(row) for row in found]

    async def set_job(self, tenant_id: str, receipt_id: str, job_id: int) -> Receipt:
        """Record the job a receipt was enqueued as."""
        row = await self._one(
            "set_receipt_job",
            f"receipt {receipt_id}",
            write=True,
            tenant_id=tenant_id,
            id=receipt_id,
            job_id=job_id,
        )
        return self._receipt(row)

    async def unenqueued(self, since: datetime, before: datetime, limit: int) -> list[Receipt]:
        """Receipts with a task and no job, received in ``[since, before)``."""
        found = await self._rows("unenqueued_receipts", since=since, before=before, limit=limit)
        return [self._receipt(row) for row in found]

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Delete receipts received before ``before``, a batch per transaction."""
        total = 0
        while True:
            deleted = await self._rows("prune_receipts", write=True, before=before, limit=batch)
            total += len(deleted)
            if len(deleted) < batch:
                return total

    def _hook(self, row: Row) -> IncomingHook:
        spec = HookSpec(
            name=row["name"],
            description=row["description"],
            enabled=bool(row["enabled"]),
            verify=VerifyScheme(row["verify"]),
            signature_header=row["signature_header"],
            delivery_header=row["delivery_header"],
            task=row["task"],
            queue=row["queue"],
            priority=None if row["priority"] is None else int(row["priority"]),
        )
        return IncomingHook(
            id=int(row["id"]),
            tenant_id=row["tenant_id"],
            spec=spec,
            secret=self._opened(row["secret"], f"hook {row['id']}") or "",
            created_at=self.store.read_time(row["created_at"]),
            updated_at=self.store.read_time(row["updated_at"]),
        )

    def _receipt(self, row: Row) -> Receipt:
        return Receipt(
            id=row["id"],
            tenant_id=row["tenant_id"],
            hook_id=int(row["hook_id"]),
            delivery_id=row["delivery_id"],
            method=row["method"],
            content_type=row["content_type"],
            headers=tuple((str(n), str(v)) for n, v in json.loads(row["headers"])),
            size=int(row["size"]),
            ip=row["ip"],
            received_at=self.store.read_time(row["received_at"]),
            verified=bool(row["verified"]),
            task=row["task"],
            job_id=None if row["job_id"] is None else int(row["job_id"]),
        )


def _spec_params(spec: HookSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "description": spec.description,
        "enabled": spec.enabled,
        "verify": spec.verify.value,
        "signature_header": spec.signature_header,
        "delivery_header": spec.delivery_header,
        "task": spec.task,
        "queue": spec.queue,
        "priority": spec.priority,
    }


def _receipt_params(receipt: NewReceipt) -> dict[str, Any]:
    return {
        "id": receipt.id,
        "tenant_id": receipt.tenant_id,
        "hook_id": receipt.hook_id,
        "delivery_id": receipt.delivery_id,
        "method": receipt.method,
        "content_type": receipt.content_type,
        "headers": json.dumps([list(pair) for pair in receipt.headers]),
        "body": receipt.body,
        "size": len(receipt.body),
        "ip": receipt.ip,
        "verified": receipt.verified,
        "task": receipt.task,
        "received_at": receipt.received_at,
    }
