-- Webhook delivery state, owned by a4c-webhooks (the delivery daemon applies this file
-- when it starts; the projector does not: its DDL is 0NN_*.sql). Idempotent.
--
-- The fan-out's position: the last public_events position turned into deliveries. It
-- moves in the same transaction as the deliveries it wrote, so an event is fanned out
-- exactly once, whatever crashes.
CREATE TABLE IF NOT EXISTS webhook_fanout (
    name      text PRIMARY KEY,
    position  bigint NOT NULL DEFAULT 0
);
-- One row per (endpoint, public event): what to send, and how it went. A row is sent
-- again, with the same webhook-id (the event's id), until it is delivered; a process
-- killed mid-request leaves it pending. The body is public_events.body, read when sent.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    endpoint_id      uuid NOT NULL,
    position         bigint NOT NULL,
    organization_id  uuid NOT NULL,
    event_id         uuid NOT NULL,
    type             text NOT NULL,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'delivered', 'parked')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_status      integer,
    last_error       text,
    delivered_at     timestamptz,
    PRIMARY KEY (endpoint_id, position)
);
-- The head of each stream (endpoint, organization): its earliest undelivered event.
CREATE INDEX IF NOT EXISTS webhook_deliveries_stream_idx
    ON webhook_deliveries (endpoint_id, organization_id, position)
    WHERE state <> 'delivered';
-- A stream that failed: since when (cleared by a 2xx), and whether it is parked (its
-- retries exhausted: nothing of it is sent until `a4c-webhooks retry` unparks it).
CREATE TABLE IF NOT EXISTS webhook_streams (
    endpoint_id      uuid NOT NULL,
    organization_id  uuid NOT NULL,
    parked_at        timestamptz,
    parked_reason    text,
    failing_since    timestamptz,
    -- The endpoint's enabled_since when the stream began to fail: enabling the endpoint
    -- again moves it, and the stream then starts afresh (unparked, its clock forgotten).
    enabled_since    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint_id, organization_id)
);
