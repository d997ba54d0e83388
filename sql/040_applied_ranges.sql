-- The applied log: runs of consecutive notification ids the projection applied,
-- written in the batch's transaction (a run that continues the previous one extends
-- it). `a4c-projector audit` checks every committed id up to the position against it.
-- A run never bridges a missing id, so an event that commits late below the position
-- (a skip) is found missing.
CREATE TABLE IF NOT EXISTS applied_ranges (
    first_id  bigint PRIMARY KEY,
    last_id   bigint NOT NULL CHECK (last_id >= first_id)
);
CREATE INDEX IF NOT EXISTS applied_ranges_last_id_idx ON applied_ranges (last_id);

-- Before 0.2 the log was one row per event (applied_events); fold it into runs once.
DO $$
BEGIN
    IF to_regclass('applied_events') IS NOT NULL THEN
        INSERT INTO applied_ranges (first_id, last_id)
        SELECT min(notification_id), max(notification_id)
        FROM (SELECT notification_id,
                     notification_id - row_number() OVER (ORDER BY notification_id) AS run
              FROM applied_events) AS numbered
        GROUP BY run
        ON CONFLICT (first_id) DO NOTHING;
        DROP TABLE applied_events;
    END IF;
END
$$;
-- ... and what an interrupted rebuild of those versions left beside it.
DROP TABLE IF EXISTS applied_events__rebuild;
DROP TABLE IF EXISTS applied_events__retired;
