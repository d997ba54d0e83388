-- The organizations a person belongs to (a4c-api lists a person's organizations), without
-- scanning every member row. Idempotent; on an existing projection it is built once.
CREATE INDEX IF NOT EXISTS members_user_idx ON members (user_id);
