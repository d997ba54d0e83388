-- The applied log: every notification id the projection applied, written in the
-- batch's transaction. `a4c-projector audit` compares it with the event store.
CREATE TABLE IF NOT EXISTS applied_events (
    notification_id  bigint PRIMARY KEY,
    event_id         uuid NOT NULL
);
