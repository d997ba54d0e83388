-- Read model: one row per e-mail domain an organization asked to own
-- (a4c_domain.email_domains.EmailDomainVerification): its challenge (public: the
-- organization publishes it in a TXT record) and whether it is verified. A verified
-- domain has one owner (the EmailDomainClaim, checked by the domain).
-- Rebuild note as for 096_sso_connections.sql.
CREATE TABLE IF NOT EXISTS email_domains (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    domain           text NOT NULL,
    challenge        text NOT NULL,
    status           text NOT NULL,
    requested_at     timestamptz NOT NULL,
    verified_at      timestamptz,
    modified_at      timestamptz NOT NULL,
    version          bigint NOT NULL,
    last_event_id    uuid NOT NULL,
    last_position    bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- An organization's domains (the API's list).
CREATE INDEX IF NOT EXISTS email_domains_organization_idx ON email_domains (organization_id);
-- Who owns an invitee's domain (the accept page).
CREATE INDEX IF NOT EXISTS email_domains_domain_idx ON email_domains (domain);
