"""The SQLite store: the embedded default.

One connection, used from one thread, in WAL mode. Every write transaction
starts with ``BEGIN IMMEDIATE`` (a deferred transaction that upgrades to a write
fails at once with SQLITE_BUSY, ignoring ``busy_timeout``). Each public method
runs one whole transaction in that thread, so a claim or a batch of completions
is one hop from the event loop and one commit.

The store is one class per role, each in a module of its own, composed here; all
derive from :class:`~conveyor.store.sqlite.base.SQLiteBase`, which holds the shared
state and plumbing (the connection and its thread, queries, opening, migrating,
portable statements):

- :mod:`~conveyor.store.sqlite.enqueue`: enqueue (group commit) and reads;
- :mod:`~conveyor.store.sqlite.claims`: claim, heartbeat, finish, rescue, promote;
- :mod:`~conveyor.store.sqlite.operations`: cancel, retry, edit; progress, notes,
  artifacts;
- :mod:`~conveyor.store.sqlite.queues`: queues, stats, events, workers;
- :mod:`~conveyor.store.sqlite.wakeups`: waiting for work.
"""

from __future__ import annotations

from conveyor.store.sqlite.base import from_db, to_db
from conveyor.store.sqlite.claims import SQLiteClaims
from conveyor.store.sqlite.enqueue import SQLiteEnqueue
from conveyor.store.sqlite.operations import SQLiteOperations
from conveyor.store.sqlite.queues import SQLiteQueues
from conveyor.store.sqlite.wakeups import SQLiteWakeups


class SQLiteStore(SQLiteEnqueue, SQLiteClaims, SQLiteOperations, SQLiteQueues, SQLiteWakeups):
    """The :class:`~conveyor.store.protocol.Store` on one SQLite file."""


__all__ = ["SQLiteStore", "from_db", "to_db"]
