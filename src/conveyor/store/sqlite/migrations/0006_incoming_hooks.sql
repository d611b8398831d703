-- Conveyor schema, version 6 (SQLite): incoming hooks and the requests they received
-- (receipts). Times are UTC seconds since the epoch (REAL), booleans INTEGER, JSON TEXT.
-- A hook's URL token is kept only as its SHA-256, its verification secret is stored as
-- given (it must be, to check signatures). Bodies are kept byte for byte (BLOB).

CREATE TABLE incoming_hooks (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    enabled          INTEGER NOT NULL,
    token_hash       TEXT NOT NULL UNIQUE,
    verify           TEXT NOT NULL DEFAULT 'none',
    secret           TEXT NOT NULL DEFAULT '',
    signature_header TEXT NOT NULL,
    delivery_header  TEXT NOT NULL,
    task             TEXT,
    queue            TEXT,
    priority         INTEGER,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX incoming_hooks_by_tenant ON incoming_hooks (tenant_id, id);

-- One row per stored request. The unique pair makes a redelivery (same delivery id)
-- store nothing, whichever node receives it: requests without a delivery id (NULL)
-- are all kept.
CREATE TABLE hook_receipts (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL,
    hook_id      INTEGER NOT NULL REFERENCES incoming_hooks (id) ON DELETE CASCADE,
    delivery_id  TEXT,
    method       TEXT NOT NULL,
    content_type TEXT NOT NULL DEFAULT '',
    headers      TEXT NOT NULL DEFAULT '[]',
    body         BLOB NOT NULL,
    size         INTEGER NOT NULL,
    ip           TEXT NOT NULL,
    verified     INTEGER NOT NULL,
    task         TEXT,
    job_id       INTEGER,
    received_at  REAL NOT NULL,
    UNIQUE (hook_id, delivery_id)
);
-- A hook's receipts, newest first.
CREATE INDEX hook_receipts_by_hook ON hook_receipts (hook_id, received_at, id);
-- The pruner's question: which receipts are past the retention period?
CREATE INDEX hook_receipts_by_time ON hook_receipts (received_at);
-- The pruner's other question: which receipts' jobs were never enqueued?
CREATE INDEX hook_receipts_unenqueued ON hook_receipts (received_at)
    WHERE task IS NOT NULL AND job_id IS NULL;
