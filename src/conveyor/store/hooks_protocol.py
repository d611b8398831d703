"""The HookStore protocol: each tenant's incoming hooks and the requests they received.

Not a hot path: one portable implementation serves both databases
(:mod:`conveyor.store.hooks`), held to this protocol by the contract suite. Every
method that names a tenant touches only that tenant's rows; :meth:`HookStore.by_token`
(the receiver's lookup, like an API key's) and :meth:`HookStore.prune` (the server's
retention) and :meth:`HookStore.unenqueued` (its retry) serve all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from conveyor.domain.hooks import HookSpec, IncomingHook, NewReceipt, Receipt, ReceiptFilter


class HookStore(Protocol):
    """Durable storage for incoming hooks and their receipts."""

    async def add(
        self, tenant_id: str, spec: HookSpec, secret: str, token_hash: str, now: datetime
    ) -> IncomingHook:
        """Store a hook; ``Conflict`` if the tenant has one of that name."""

    async def get(self, tenant_id: str, hook_id: int) -> IncomingHook:
        """One hook, or ``NotFound``."""

    async def list_hooks(self, tenant_id: str) -> list[IncomingHook]:
        """The tenant's hooks, oldest first."""

    async def update(
        self, tenant_id: str, hook_id: int, spec: HookSpec, secret: str, now: datetime
    ) -> IncomingHook:
        """Replace a hook's definition and secret."""

    async def seal_secrets(self) -> int:
        """Seal with the current key the secrets kept in plain or sealed by a
        previous key; ``WrongSecretKey`` if one opens with no key. How many it sealed."""

    async def set_token(
        self, tenant_id: str, hook_id: int, token_hash: str, now: datetime
    ) -> IncomingHook:
        """Give a hook a new URL token (the old one stops working at once)."""

    async def delete(self, tenant_id: str, hook_id: int) -> None:
        """Delete a hook and its receipts, or raise ``NotFound``."""

    async def by_token(self, token_hash: str) -> IncomingHook | None:
        """The enabled hook of an active tenant with this token hash, if any."""

    async def record(
        self, hook: IncomingHook, receipt: NewReceipt, event: dict[str, Any]
    ) -> tuple[Receipt, bool]:
        """Store a receipt and append its ``hook.received`` event (``event``: its data),
        in one transaction. If the hook already has a receipt with the same delivery id,
        nothing is written and that one is returned: ``(receipt, duplicate)``."""

    async def get_receipt(self, tenant_id: str, hook_id: int, receipt_id: str) -> Receipt:
        """One receipt (without its body), or ``NotFound``."""

    async def receipt_body(self, tenant_id: str, hook_id: int, receipt_id: str) -> bytes:
        """A receipt's body, byte for byte, or ``NotFound``."""

    async def list_receipts(
        self, tenant_id: str, hook_id: int, filters: ReceiptFilter
    ) -> list[Receipt]:
        """A hook's receipts, newest first, narrowed by ``filters``."""

    async def set_job(self, tenant_id: str, receipt_id: str, job_id: int) -> Receipt:
        """Record the job a receipt was enqueued as."""

    async def unenqueued(self, since: datetime, before: datetime, limit: int) -> list[Receipt]:
        """Every tenant's receipts received in ``[since, before)`` with a task and no
        job (their enqueue failed), oldest first."""

    async def prune(self, before: datetime, batch: int = 1000) -> int:
        """Delete every tenant's receipts received before ``before``; how many."""
