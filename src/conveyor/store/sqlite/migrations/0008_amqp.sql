-- Conveyor schema, version 8 (SQLite): the RabbitMQ bridge. Ingress routes (a RabbitMQ
-- queue consumed into a tenant's Task) with their counters, the failed attempts of the
-- messages being retried, and the egress cursor.
-- Times are UTC seconds since the epoch (REAL), booleans INTEGER.

-- One route per RabbitMQ queue: two tenants consuming one queue would split its messages.
CREATE TABLE amqp_routes (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    queue           TEXT NOT NULL UNIQUE,
    task            TEXT NOT NULL,
    job_queue       TEXT,
    priority        INTEGER,
    enabled         INTEGER NOT NULL,
    received        INTEGER NOT NULL DEFAULT 0,
    accepted        INTEGER NOT NULL DEFAULT 0,
    duplicates      INTEGER NOT NULL DEFAULT 0,
    dead_lettered   INTEGER NOT NULL DEFAULT 0,
    failed          INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    last_message_at REAL,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX amqp_routes_by_tenant ON amqp_routes (tenant_id, id);

-- Failed enqueue attempts of a message still being retried (deleted once it is settled):
-- after a few, the consumer dead-letters it. RabbitMQ 3.10's classic queues count none.
CREATE TABLE amqp_attempts (
    route_id   INTEGER NOT NULL REFERENCES amqp_routes (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (route_id, message_id)
);

-- Where the egress publisher is in the event log: one row per publisher name.
CREATE TABLE amqp_cursor (
    name          TEXT PRIMARY KEY,
    last_event_id INTEGER NOT NULL,
    updated_at    REAL NOT NULL
);
