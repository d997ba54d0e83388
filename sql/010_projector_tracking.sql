-- Projector tracking: one row per projection, its position in the notification log.
-- Written in the same transaction as the read-model changes of a batch (exactly once).
CREATE TABLE IF NOT EXISTS projector_tracking (
    projection  text PRIMARY KEY,
    position    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
