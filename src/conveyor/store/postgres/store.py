"""The PostgreSQL store: many workers on many hosts.

psycopg 3 async on a connection pool. The hot paths (enqueue, claim, finish,
heartbeat, rescue, promote) are one statement each: data-modifying CTEs change the
jobs, write their attempt rows and events and send the LISTEN/NOTIFY wake-up in
one round trip. Single statements run in autocommit; operations of several
statements run in one explicit transaction. Times always come from ``self.clock``,
never from SQL ``now()``, so a test clock behaves the same as on SQLite.

The store is one class per role, each in a module of its own, composed here; all
derive from :class:`~conveyor.store.postgres.base.PostgresBase`, which holds the
shared state and plumbing (pools, queries, opening, migrating, driver errors):

- :mod:`~conveyor.store.postgres.enqueue`: enqueue (group commit) and reads;
- :mod:`~conveyor.store.postgres.claims`: claim, heartbeat, finish, rescue, promote;
- :mod:`~conveyor.store.postgres.operations`: cancel, retry, edit; progress, notes,
  artifacts;
- :mod:`~conveyor.store.postgres.queues`: queues, stats, events, workers;
- :mod:`~conveyor.store.postgres.wakeups`: LISTEN/NOTIFY.
"""

from __future__ import annotations

from conveyor.store.postgres.base import driver_errors, from_db
from conveyor.store.postgres.claims import PostgresClaims
from conveyor.store.postgres.enqueue import PostgresEnqueue
from conveyor.store.postgres.operations import PostgresOperations
from conveyor.store.postgres.queues import PostgresQueues
from conveyor.store.postgres.wakeups import CHANNEL, PostgresWakeups


class PostgresStore(
    PostgresEnqueue, PostgresClaims, PostgresOperations, PostgresQueues, PostgresWakeups
):
    """The :class:`~conveyor.store.protocol.Store` on PostgreSQL (13 or later)."""


__all__ = ["CHANNEL", "PostgresStore", "driver_errors", "from_db"]
