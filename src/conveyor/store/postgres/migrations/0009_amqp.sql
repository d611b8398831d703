-- Conveyor schema, version 9 (PostgreSQL): the RabbitMQ bridge. Ingress routes (a
-- RabbitMQ queue consumed into a tenant's Task) with their counters, the failed attempts
-- of the messages being retried, and the egress cursor.

-- One route per RabbitMQ queue: two tenants consuming one queue would split its messages.
CREATE TABLE amqp_routes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    queue           text NOT NULL UNIQUE,
    task            text NOT NULL,
    job_queue       text,
    priority        integer,
    enabled         boolean NOT NULL,
    received        bigint NOT NULL DEFAULT 0,
    accepted        bigint NOT NULL DEFAULT 0,
    duplicates      bigint NOT NULL DEFAULT 0,
    dead_lettered   bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    last_error      text NOT NULL DEFAULT '',
    last_message_at timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX amqp_routes_by_tenant ON amqp_routes (tenant_id, id);

-- Failed enqueue attempts of a message still being retried (deleted once it is settled):
-- after a few, the consumer dead-letters it. RabbitMQ 3.10's classic queues count none.
CREATE TABLE amqp_attempts (
    route_id   bigint NOT NULL REFERENCES amqp_routes (id) ON DELETE CASCADE,
    message_id text NOT NULL,
    attempts   integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (route_id, message_id)
);

-- Where the egress publisher is in the event log: one row per publisher name.
CREATE TABLE amqp_cursor (
    name          text PRIMARY KEY,
    last_event_id bigint NOT NULL,
    updated_at    timestamptz NOT NULL
);
