-- Conveyor schema, version 7 (PostgreSQL): incoming hooks and the requests they
-- received (receipts). JSON is text: no query looks inside it.
-- A hook's URL token is kept only as its SHA-256, its verification secret is stored as
-- given (it must be, to check signatures). Bodies are kept byte for byte (bytea).

CREATE TABLE incoming_hooks (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             text NOT NULL,
    description      text NOT NULL DEFAULT '',
    enabled          boolean NOT NULL,
    token_hash       text NOT NULL UNIQUE,
    verify           text NOT NULL DEFAULT 'none',
    secret           text NOT NULL DEFAULT '',
    signature_header text NOT NULL,
    delivery_header  text NOT NULL,
    task             text,
    queue            text,
    priority         integer,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE INDEX incoming_hooks_by_tenant ON incoming_hooks (tenant_id, id);

-- One row per stored request. The unique pair makes a redelivery (same delivery id)
-- store nothing, whichever node receives it: requests without a delivery id (NULL)
-- are all kept.
CREATE TABLE hook_receipts (
    id           text PRIMARY KEY,
    tenant_id    text NOT NULL,
    hook_id      bigint NOT NULL REFERENCES incoming_hooks (id) ON DELETE CASCADE,
    delivery_id  text,
    method       text NOT NULL,
    content_type text NOT NULL DEFAULT '',
    headers      text NOT NULL DEFAULT '[]',
    body         bytea NOT NULL,
    size         integer NOT NULL,
    ip           text NOT NULL,
    verified     boolean NOT NULL,
    task         text,
    job_id       bigint,
    received_at  timestamptz NOT NULL,
    UNIQUE (hook_id, delivery_id)
);
-- A hook's receipts, newest first.
CREATE INDEX hook_receipts_by_hook ON hook_receipts (hook_id, received_at, id);
-- The pruner's question: which receipts are past the retention period?
CREATE INDEX hook_receipts_by_time ON hook_receipts (received_at);
-- The pruner's other question: which receipts' jobs were never enqueued?
CREATE INDEX hook_receipts_unenqueued ON hook_receipts (received_at)
    WHERE task IS NOT NULL AND job_id IS NULL;
