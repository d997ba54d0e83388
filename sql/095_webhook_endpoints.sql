-- Read model: one row per webhook endpoint (a4c_domain.webhook_endpoint), where and for
-- which events webhooks are delivered; a deleted endpoint keeps its row (status 'deleted').
-- The signing secrets are kept SEALED (cipher text under WEBHOOK_SECRET_KEYS), as the
-- events carry them: never the secret itself. enabled_since is the notification id of the
-- event that last enabled the endpoint (Added, Reinstated, Enabled): the delivery daemon
-- delivers an event at position p only if p > enabled_since.
-- No rebuild is needed on an existing projection: the projector had no handler for these
-- events before this table existed, so none of them can have been applied (any parked as
-- dead letters: a4c-projector dead-letter retry).
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                          uuid PRIMARY KEY,
    owner_id                    uuid,
    name                        text NOT NULL,
    url                         text NOT NULL,
    event_types                 text,
    organization_id             uuid,
    description                 text NOT NULL,
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    status                      text NOT NULL,
    disabled_reason             text,
    disabled_automatically      boolean NOT NULL,
    enabled_since               bigint NOT NULL,
    created_at                  timestamptz NOT NULL,
    modified_at                 timestamptz NOT NULL,
    version                     bigint NOT NULL,
    last_event_id               uuid NOT NULL,
    last_position               bigint NOT NULL,
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
-- An owner's endpoints (the API's list).
CREATE INDEX IF NOT EXISTS webhook_endpoints_owner_idx ON webhook_endpoints (owner_id);
-- The enabled ones (the delivery daemon's).
CREATE INDEX IF NOT EXISTS webhook_endpoints_status_idx ON webhook_endpoints (status);
