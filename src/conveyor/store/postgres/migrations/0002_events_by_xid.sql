-- Conveyor schema, version 2 (PostgreSQL): events are read in (xid, id) order.
--
-- A reader that walks event ids skips an event whose transaction took its id
-- early but committed after a later one. list_events reads only transactions
-- older than every open one, in (xid, id) order, so a late commit always sorts
-- after the reader's cursor. This index serves that order.

CREATE INDEX events_by_xid ON events (xid, id);
