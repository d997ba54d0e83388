-- Read model: everyone who accepted an invitation, one row per accepted invitation
-- (organization, user id, role, name, joined_at = accepted_at). Each row is derived from
-- its invitation's row and carries that row's version, so replays and rebuilds agree.
-- A row stays when the organization is deactivated: read the organization's status too.
-- On an existing projection the projector fills it from the accepted invitations when it
-- starts (a4c_projector.readmodel.members.backfill_members); no rebuild is needed.
CREATE TABLE IF NOT EXISTS members (
    invitation_id    uuid PRIMARY KEY,
    organization_id  uuid NOT NULL,
    user_id          text NOT NULL,
    email            text NOT NULL,
    role             text NOT NULL,
    first_name       text NOT NULL,
    last_name        text NOT NULL,
    joined_at        timestamptz NOT NULL,
    modified_at      timestamptz NOT NULL,
    version          bigint NOT NULL,
    last_event_id    uuid NOT NULL,
    last_position    bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
-- The members of an organization (optionally with one role).
CREATE INDEX IF NOT EXISTS members_org_role_idx ON members (organization_id, role);
-- The API's authorization question: is user U a member of organization X (with role R)?
CREATE INDEX IF NOT EXISTS members_org_user_idx ON members (organization_id, user_id);
-- 0.5: the identity each member signed in with when accepting (issuer + subject; NULL for
-- the dev sign-in and for members from before 0.5). Filled from the invitation row like
-- every other column.
ALTER TABLE members ADD COLUMN IF NOT EXISTS issuer text;
ALTER TABLE members ADD COLUMN IF NOT EXISTS subject text;
