-- Parked (poison) events, and every later event of the same aggregate, in order.
CREATE TABLE IF NOT EXISTS dead_letters (
    notification_id     bigint PRIMARY KEY,
    originator_id       uuid NOT NULL,
    originator_version  bigint NOT NULL,
    topic               text NOT NULL,
    error               text NOT NULL,
    parked_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS dead_letters_originator_idx
    ON dead_letters (originator_id, originator_version);
