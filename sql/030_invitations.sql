-- Read model: one row per invitation. Only the token's hash is kept, never the token.
CREATE TABLE IF NOT EXISTS invitations (
    id                 uuid PRIMARY KEY,
    organization_id    uuid NOT NULL,
    email              text NOT NULL,
    role               text NOT NULL,
    first_name         text NOT NULL,
    last_name          text NOT NULL,
    generation         integer NOT NULL,
    token_generation   integer NOT NULL,
    token_hash         text NOT NULL,
    expires_at         timestamptz NOT NULL,
    status             text NOT NULL,
    email_status       text NOT NULL,
    message_id         text,
    email_error        text,
    accepted_by        text,
    revoke_reason      text,
    invited_at         timestamptz NOT NULL,
    email_sent_at      timestamptz,
    email_failed_at    timestamptz,
    token_reissued_at  timestamptz,
    accepted_at        timestamptz,
    revoked_at         timestamptz,
    expired_at         timestamptz,
    modified_at        timestamptz NOT NULL,
    version            bigint NOT NULL,
    last_event_id      uuid NOT NULL,
    last_position      bigint NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS invitations_org_status_idx ON invitations (organization_id, status);
CREATE INDEX IF NOT EXISTS invitations_token_hash_idx ON invitations (token_hash);
-- 0.5: the identity that accepted (the provider's issuer and the subject there; NULL for
-- the dev sign-in and for invitations accepted before 0.5). Appended, after the
-- bookkeeping, on fresh and upgraded databases alike.
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS accepted_issuer text;
ALTER TABLE invitations ADD COLUMN IF NOT EXISTS accepted_subject text;
