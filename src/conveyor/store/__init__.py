"""Stores: where Conveyor keeps everything. Pick one with :func:`store_from_url`;
:func:`accounts_for` gives its tenants, users, keys and audit log, :func:`tasks_for`
its tenants' versioned task settings, :func:`schedules_for` their schedules,
:func:`webhooks_for` their webhook Subscriptions, :func:`hooks_for` their incoming
hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.domain.errors import InvalidInput

if TYPE_CHECKING:
    from conveyor.store.accounts_protocol import AccountStore
    from conveyor.store.amqp_protocol import AmqpStore
    from conveyor.store.hooks_protocol import HookStore
    from conveyor.store.mail_protocol import MailStore
    from conveyor.store.protocol import Clock, Store
    from conveyor.store.schedules_protocol import ScheduleStore
    from conveyor.store.sealing import SecretBox
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


def accounts_for(store: Store, box: SecretBox | None = None) -> AccountStore:
    """The :class:`~conveyor.store.accounts_protocol.AccountStore` on ``store``'s
    database; ``box`` seals its signing keys (needed for them alone)."""
    from conveyor.store.accounts import SqlAccountStore

    return SqlAccountStore(store, box)


def tasks_for(store: Store) -> TaskStore:
    """The :class:`~conveyor.store.tasks_protocol.TaskStore` on ``store``'s database."""
    from conveyor.store.tasks import SqlTaskStore

    return SqlTaskStore(store)


def schedules_for(store: Store) -> ScheduleStore:
    """The :class:`~conveyor.store.schedules_protocol.ScheduleStore` on ``store``'s database."""
    from conveyor.store.schedules import SqlScheduleStore

    return SqlScheduleStore(store)


def mail_for(store: Store) -> MailStore:
    """The :class:`~conveyor.store.mail_protocol.MailStore` on ``store``'s database."""
    from conveyor.store.mail import SqlMailStore

    return SqlMailStore(store)


def webhooks_for(store: Store, box: SecretBox) -> WebhookStore:
    """The :class:`~conveyor.store.webhooks_protocol.WebhookStore` on ``store``'s
    database; ``box`` seals its secrets."""
    from conveyor.store.webhooks import SqlWebhookStore

    return SqlWebhookStore(store, box)


def amqp_for(store: Store) -> AmqpStore:
    """The :class:`~conveyor.store.amqp_protocol.AmqpStore` on ``store``'s database."""
    from conveyor.store.amqp import SqlAmqpStore

    return SqlAmqpStore(store)


def hooks_for(store: Store, box: SecretBox) -> HookStore:
    """The :class:`~conveyor.store.hooks_protocol.HookStore` on ``store``'s database;
    ``box`` seals its secrets."""
    from conveyor.store.hooks import SqlHookStore

    return SqlHookStore(store, box)
