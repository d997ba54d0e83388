-- Read model: one row per organization, kept by the projector (no triggers).
CREATE TABLE IF NOT EXISTS organizations (
    id                   uuid PRIMARY KEY,
    slug                 text NOT NULL UNIQUE,
    name                 text NOT NULL,
    org_type             text NOT NULL,
    parent_id            uuid,
    tags                 text[] NOT NULL DEFAULT '{}',
    domain               text,
    status               text NOT NULL,
    dns_status           text NOT NULL,
    fqdn                 text,
    dns_target           text,
    dns_record_id        text,
    deactivation_reason  text,
    failed_step          text,
    registered_at        timestamptz NOT NULL,
    dns_configured_at    timestamptz,
    dns_verified_at      timestamptz,
    dns_removed_at       timestamptz,
    activated_at         timestamptz,
    deactivated_at       timestamptz,
    modified_at          timestamptz NOT NULL,
    version              bigint NOT NULL,
    last_event_id        uuid NOT NULL,
    last_position        bigint NOT NULL,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS organizations_status_idx ON organizations (status);
CREATE INDEX IF NOT EXISTS organizations_tags_idx ON organizations USING gin (tags);
CREATE INDEX IF NOT EXISTS organizations_parent_idx ON organizations (parent_id);
