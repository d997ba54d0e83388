-- Read model: one row per organization's single sign-on connection
-- (a4c_domain.sso_connection.SSOConnection). status says whether single sign-on is in
-- force ('active', through active_issuer) or not ('none'); the configuration being tried
-- is in the pending_* columns until it is activated or abandoned. There is NO client
-- secret here, not even sealed: only the worker reads it, from the aggregate.
-- On a projection of a4c 0.4 no rebuild is needed (these events did not exist); a
-- projection that ran the unreleased SSO foundations applied them without a row:
-- rebuild it (a4c-projector rebuild).
CREATE TABLE IF NOT EXISTS sso_connections (
    id                   uuid PRIMARY KEY,
    organization_id      uuid NOT NULL UNIQUE,
    status               text NOT NULL,
    generation           bigint NOT NULL,
    active_generation    bigint,
    active_issuer        text,
    active_client_id     text,
    activated_at         timestamptz,
    pending_generation   bigint,
    pending_issuer       text,
    pending_client_id    text,
    pending_tested       boolean NOT NULL,
    pending_since        timestamptz,
    abandon_reason       text,
    deactivation_reason  text,
    deactivated_at       timestamptz,
    configured_at        timestamptz NOT NULL,
    modified_at          timestamptz NOT NULL,
    version              bigint NOT NULL,
    last_event_id        uuid NOT NULL,
    last_position        bigint NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- Where members' sign-ins through the active provider start (its checked discovery's
-- authorization_endpoint); appended for projections of the first builds of this table.
ALTER TABLE sso_connections ADD COLUMN IF NOT EXISTS active_authorization_endpoint text;
