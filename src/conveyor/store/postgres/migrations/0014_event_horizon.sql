-- Conveyor schema, version 14 (PostgreSQL): the event horizon, in one place.
--
-- Event ids are taken at insert but become visible at commit, so readers walk
-- events in (xid, id) order and only up to the horizon: the oldest transaction
-- still open in this database (or, with none open, the next xid to be given out).
-- Whatever commits later sorts after every cursor taken below the horizon.
-- Transaction ids are shared by the whole server, so an open transaction is
-- ignored only when pg_stat_activity shows it in another database (a role that may
-- not see other roles' sessions just waits for them). list_events reads up to it,
-- event_horizon names the last event below it. Call it as (SELECT ...), so that it
-- runs once per query. It must stay STABLE: it then reads the calling query's
-- snapshot, and a newer one could put the horizon past events that query cannot
-- see. PL/pgSQL, so that the plan of its query is kept between calls.
CREATE FUNCTION conveyor_event_horizon() RETURNS xid8
LANGUAGE plpgsql STABLE PARALLEL RESTRICTED AS $$
BEGIN
    RETURN (
        SELECT coalesce(min(open), pg_snapshot_xmax(pg_current_snapshot()))
        FROM pg_snapshot_xip(pg_current_snapshot()) AS open
        WHERE mod(open::text::numeric, 4294967296) NOT IN (
            SELECT backend_xid::text::numeric FROM pg_stat_activity
            WHERE backend_xid IS NOT NULL
              AND datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
        )
    );
END
$$;
