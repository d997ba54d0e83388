-- Read model: every token ever issued to an invitation, one row per token generation
-- (the invitation row holds only the current one), so the accept page can tell a link
-- superseded by a re-send from an unknown one. The token's hash, never the token. Each
-- row is written from its Invited or TokenReissued event and never changes after
-- (modified_at, version, last_event_id, last_position: that event's).
-- On an existing projection the projector fills it from the event store when it starts
-- (a4c_projector.readmodel.tokens.backfill_tokens); no rebuild is needed.
CREATE TABLE IF NOT EXISTS invitation_tokens (
    token_hash        text PRIMARY KEY,
    invitation_id     uuid NOT NULL,
    organization_id   uuid NOT NULL,
    token_generation  integer NOT NULL,
    issued_at         timestamptz NOT NULL,
    modified_at       timestamptz NOT NULL,
    version           bigint NOT NULL,
    last_event_id     uuid NOT NULL,
    last_position     bigint NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
-- An invitation's tokens, by generation.
CREATE INDEX IF NOT EXISTS invitation_tokens_invitation_idx
    ON invitation_tokens (invitation_id, token_generation);
