"""Stores: where Conveyor keeps everything. Pick one with :func:`store_from_url`;
:func:`accounts_for` gives its tenants, users, keys and audit log, :func:`tasks_for`
its tenants' versioned task settings, :func:`schedules_for` their schedules,
:func:`webhooks_for` their webhook Subscriptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.domain.errors import InvalidInput

if TYPE_CHECKING:
    from conveyor.store.accounts_protocol import AccountStore
    from conveyor.store.protocol import Clock, Store
    from conveyor.store.schedules_protocol import ScheduleStore
    from conveyor.store.tasks_protocol import TaskStore
    from conveyor.store.webhooks_protocol import WebhookStore

DEFAULT_DATABASE_URL = "sqlite:///conveyor.db"


def store_from_url(
    url: str,
    *,
    sqlite_synchronous: str = "FULL",
    clock: Clock | None = None,
    create: bool = True,
) -> Store:
    """A store for ``sqlite:///path`` or ``postgresql://...``; not opened yet."""
    from conveyor.domain.jobs import utcnow

    now = clock or utcnow
    if url.startswith("sqlite:///"):
        from conveyor.store.sqlite.store import SQLiteStore

        synchronous = sqlite_synchronous.upper()
        if synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise InvalidInput("sqlite_synchronous", "must be OFF, NORMAL, FULL or EXTRA")
        path = url.removeprefix("sqlite:///")
        return SQLiteStore(path, synchronous=synchronous, clock=now, create=create)  # type: ignore[arg-type]
    if url.startswith(("postgresql://", "postgres://")):
        from conveyor.store.postgres.store import PostgresStore

        return PostgresStore(url, clock=now)
    raise InvalidInput(
        "database_url", f"must start with sqlite:/// or postgresql:// (got {url.split(':')[0]!r})"
    )


def accounts_for(store: Store) -> AccountStore:
    """The :class:`~conveyor.store.accounts_protocol.AccountStore` on ``store``'s database."""
    from conveyor.store.accounts import SqlAccountStore

    return SqlAccountStore(store)


def tasks_for(store: Store) -> TaskStore:
    """The :class:`~conveyor.store.tasks_protocol.TaskStore` on ``store``'s database."""
    from conveyor.store.tasks import SqlTaskStore

    return SqlTaskStore(store)


def schedules_for(store: Store) -> ScheduleStore:
    """The :class:`~conveyor.store.schedules_protocol.ScheduleStore` on ``store``'s database."""
    from conveyor.store.schedules import SqlScheduleStore

    return SqlScheduleStore(store)


def webhooks_for(store: Store) -> WebhookStore:
    """The :class:`~conveyor.store.webhooks_protocol.WebhookStore` on ``store``'s database."""
    from conveyor.store.webhooks import SqlWebhookStore

    return SqlWebhookStore(store)
