-- Read model: every public event (a4c_domain.public_events) the projection applied, one
-- row per event, keyed by its notification id (the events API's cursor). Written in the
-- same transaction as the projection's position, so only positions the no-skip guard
-- has passed are ever visible. A row is a fact: never changed once written. Kept
-- forever (no retention window): the events API serves the full history.
-- On an existing projection the projector fills it from the event store when it starts
-- (a4c_projector.readmodel.public_events.backfill_public_events); no rebuild is needed.
CREATE TABLE IF NOT EXISTS public_events (
    position         bigint PRIMARY KEY,
    event_id         uuid NOT NULL UNIQUE,
    type             text NOT NULL,
    organization_id  uuid NOT NULL,
    subject_id       uuid NOT NULL,
    occurred_at      timestamptz NOT NULL,
    body             text NOT NULL
);
-- One organization's feed, in order.
CREATE INDEX IF NOT EXISTS public_events_org_position_idx
    ON public_events (organization_id, position);
-- A feed of some types, in order.
CREATE INDEX IF NOT EXISTS public_events_type_position_idx ON public_events (type, position);
-- Where a feed asked for from a time (range_start) begins.
CREATE INDEX IF NOT EXISTS public_events_occurred_at_idx ON public_events (occurred_at);
-- A rebuild's comparison of the rows an aggregate's events wrote.
CREATE INDEX IF NOT EXISTS public_events_subject_idx ON public_events (subject_id);
