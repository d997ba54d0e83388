-- The a4c event store, exactly as eventsourcing (9.5, PostgreSQL, application "a4c",
-- ORIGINATOR_ID_TYPE=uuid) creates it, for DBAs who create tables themselves and run
-- the services with CREATE_TABLE=n.
--
-- Objects are created in the current schema (the first one on search_path), so choose
-- the schema when connecting; it must match the services' POSTGRES_SCHEMA:
--
--   PGOPTIONS="-c search_path=a4c" psql -v ON_ERROR_STOP=1 -d <db> -f sql/001_event_store.sql
--
-- Idempotent: safe to apply again (IF NOT EXISTS, a guarded CREATE TYPE, CREATE OR REPLACE).
-- Both insert modes work on it: POSTGRES_ENABLE_DB_FUNCTIONS=n locks the table per insert,
-- =y calls es_insert_events_uuid() and takes no table lock.

-- The events: one row per stored domain event. (originator_id, originator_version) is
-- the optimistic-concurrency guard; notification_id orders the notification log.
CREATE TABLE IF NOT EXISTS a4c_events (
    originator_id      uuid   NOT NULL,
    originator_version bigint NOT NULL,
    topic              text,
    state              bytea,
    notification_id    bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE UNIQUE INDEX IF NOT EXISTS a4c_events_notification_id_idx
    ON a4c_events (notification_id ASC);

-- The row type the recorder sends events as (both modes). CREATE TYPE has no
-- IF NOT EXISTS, hence the guard.
DO $$
BEGIN
    CREATE TYPE stored_event_uuid AS (
        originator_id      uuid,
        originator_version bigint,
        topic              text,
        state              bytea
    );
EXCEPTION
    WHEN duplicate_object THEN NULL;
END
$$;

-- The lock-free insert (POSTGRES_ENABLE_DB_FUNCTIONS=y). Its body names the table with
-- its schema, as eventsourcing does, so it is built here from current_schema().
-- lock_timeout '0s' matches POSTGRES_LOCK_TIMEOUT unset (0); change both together.
DO $$
BEGIN
    EXECUTE format(
        $f$
        CREATE OR REPLACE FUNCTION %1$I.es_insert_events_uuid(events %1$I.stored_event_uuid[])
        RETURNS SETOF bigint
        LANGUAGE plpgsql
        AS $body$
        BEGIN
            SET LOCAL lock_timeout = '0s';
            NOTIFY a4c_events;
            RETURN QUERY
            INSERT INTO %1$I.a4c_events AS t (originator_id, originator_version, topic, state)
            SELECT originator_id, originator_version, topic, state
            FROM unnest(events)
            RETURNING notification_id;
        END;
        $body$
        $f$,
        current_schema()
    );
END
$$;
