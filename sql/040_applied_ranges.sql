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

-- Before 0.2 the log was one row per event (applied_events): the projector folds it
-- into runs and drops it when it starts (a4c_projector.readmodel.tables.ensure_schema).
