-- Conveyor schema, version 13 (PostgreSQL): the key check. Secrets the stores must
-- read back are sealed with the server's key (conveyor.store.sealing). One known value
-- sealed with that key lets a node or a command find out, before it writes anything,
-- whether its key is the one that sealed this database's secrets.
CREATE TABLE key_check (
    id          integer PRIMARY KEY CHECK (id = 1),
    sealed      text NOT NULL,
    created_at  timestamptz NOT NULL
);
