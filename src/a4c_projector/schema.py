"""The projector's tables, defined once: columns, types, constraints and indexes.

Everything else derives from :data:`TABLES`: the SQLite DDL (:func:`sqlite_ddl`), the
column lists the queries and the rebuild comparison read, and what
``a4c validate`` expects (:func:`expected_tables`, :func:`expected_columns`). The
PostgreSQL DDL stays hand-written in ``sql/0NN_*.sql`` for DBAs (with comments, and as
migrations: an existing database is upgraded by running them again);
``tests/projector/test_schema.py`` applies those files to a fresh schema and checks that
they create exactly what is declared here, so the two cannot drift.

Adding a column: declare it here, add it to the query record in
:mod:`a4c_projector.queries`, and write its migration in ``sql/`` (``ALTER TABLE ... ADD
COLUMN IF NOT EXISTS``); the test names whatever was forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Column types as PostgreSQL spells them in ``sql/``; SQLite stores each with the
# affinity below (uuids, timestamps and text arrays as text; arrays as a JSON list).
Type = Literal["uuid", "text", "text[]", "timestamptz", "bigint", "integer", "boolean"]
SQLITE_AFFINITY: dict[Type, str] = {
    "uuid": "TEXT",
    "text": "TEXT",
    "text[]": "TEXT",
    "timestamptz": "TEXT",
    "bigint": "INTEGER",
    "integer": "INTEGER",
    "boolean": "INTEGER",  # 0 or 1
}
# Defaults, by meaning: the time of the insert, an empty array, zero.
Default = Literal["now", "empty", "zero"]
SQLITE_DEFAULT: dict[Default, str] = {
    "now": "(strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))",
    "empty": "'[]'",
    "zero": "0",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: Type
    nullable: bool = False
    default: Default | None = None
    unique: bool = False


@dataclass(frozen=True)
class Index:
    """A secondary index, named ``<table>_<suffix>``; ``gin`` ones are PostgreSQL only
    (SQLite has no GIN; its tags column is JSON text, searched with ``json_each``)."""

    suffix: str
    columns: tuple[str, ...]
    method: Literal["btree", "gin"] = "btree"


@dataclass(frozen=True)
class Table:
    """``per_set``: one copy per table set (live, ``__rebuild``); otherwise shared."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str
    indexes: tuple[Index, ...] = ()
    check: str | None = None  # a table CHECK constraint, as PostgreSQL prints it
    per_set: bool = True
    # The column holding the id of the aggregate whose events write a row, when it is
    # not the key: how an audit finds the rows a range of events touched.
    aggregate_column: str | None = None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def aggregate_key(self) -> str:
        return self.aggregate_column or self.primary_key

    def index_name(self, index: Index, suffix: str = "") -> str:
        return f"{self.name}{suffix}_{index.suffix}"


def _c(name: str, type_: Type, *, null: bool = False, default: Default | None = None) -> Column:
    return Column(name, type_, nullable=null, default=default)


# Every projected row ends with these: the version guard and where it came from.
BOOKKEEPING = (
    _c("modified_at", "timestamptz"),
    _c("version", "bigint"),
    _c("last_event_id", "uuid"),
    _c("last_position", "bigint"),
    _c("updated_at", "timestamptz", default="now"),  # wall-clock time of the write
)

TRACKING = Table(
    "projector_tracking",
    (
        _c("projection", "text"),
        _c("position", "bigint", default="zero"),
        _c("updated_at", "timestamptz", default="now"),
    ),
    primary_key="projection",
    per_set=False,
)
ORGANIZATIONS = Table(
    "organizations",
    (
        _c("id", "uuid"),
        Column("slug", "text", unique=True),
        _c("name", "text"),
        _c("org_type", "text"),
        _c("parent_id", "uuid", null=True),
        _c("tags", "text[]", default="empty"),
        _c("domain", "text", null=True),
        _c("status", "text"),
        _c("dns_status", "text"),
        _c("fqdn", "text", null=True),
        _c("dns_target", "text", null=True),
        _c("dns_record_id", "text", null=True),
        _c("deactivation_reason", "text", null=True),
        _c("failed_step", "text", null=True),
        _c("registered_at", "timestamptz"),
        _c("dns_configured_at", "timestamptz", null=True),
        _c("dns_verified_at", "timestamptz", null=True),
        _c("dns_removed_at", "timestamptz", null=True),
        _c("activated_at", "timestamptz", null=True),
        _c("deactivated_at", "timestamptz", null=True),
        *BOOKKEEPING,
    ),
    primary_key="id",
    indexes=(
        Index("status_idx", ("status",)),
        Index("tags_idx", ("tags",), "gin"),
        Index("parent_idx", ("parent_id",)),
    ),
)
INVITATIONS = Table(
    "invitations",
    (
        _c("id", "uuid"),
        _c("organization_id", "uuid"),
        _c("email", "text"),
        _c("role", "text"),
        _c("first_name", "text"),
        _c("last_name", "text"),
        _c("generation", "integer"),
        _c("token_generation", "integer"),
        _c("token_hash", "text"),  # the token's hash, never the token
        _c("expires_at", "timestamptz"),
        _c("status", "text"),
        _c("email_status", "text"),
        _c("message_id", "text", null=True),
        _c("email_error", "text", null=True),
        _c("accepted_by", "text", null=True),
        _c("revoke_reason", "text", null=True),
        _c("invited_at", "timestamptz"),
        _c("email_sent_at", "timestamptz", null=True),
        _c("email_failed_at", "timestamptz", null=True),
        _c("token_reissued_at", "timestamptz", null=True),
        _c("accepted_at", "timestamptz", null=True),
        _c("revoked_at", "timestamptz", null=True),
        _c("expired_at", "timestamptz", null=True),
        *BOOKKEEPING,
        # Added in 0.5 (after the bookkeeping, where a migration appends them): who
        # accepted, as their sign-in named them (None: the dev sign-in, or before 0.5).
        _c("accepted_issuer", "text", null=True),
        _c("accepted_subject", "text", null=True),
    ),
    primary_key="id",
    indexes=(
        Index("org_status_idx", ("organization_id", "status")),
        Index("token_hash_idx", ("token_hash",)),
    ),
)
# Everyone who accepted an invitation: one row per accepted invitation, derived from the
# invitation's row (so from its own event stream alone) by
# :mod:`a4c_projector.readmodel.members`. A row stays when the organization is
# deactivated (accepting was a fact); callers that decide on access read the
# organization's status too.
MEMBERS = Table(
    "members",
    (
        _c("invitation_id", "uuid"),
        _c("organization_id", "uuid"),
        _c("user_id", "text"),
        _c("email", "text"),
        _c("role", "text"),
        _c("first_name", "text"),
        _c("last_name", "text"),
        _c("joined_at", "timestamptz"),  # the invitation's accepted_at
        *BOOKKEEPING,  # the invitation row's: a member row changes with its invitation
        # The identity the member signed in with (0.5; see INVITATIONS): the provider's
        # issuer and the subject there. None for the dev sign-in and earlier members.
        _c("issuer", "text", null=True),
        _c("subject", "text", null=True),
    ),
    primary_key="invitation_id",
    indexes=(
        Index("org_role_idx", ("organization_id", "role")),  # members of X (by role)
        Index("org_user_idx", ("organization_id", "user_id")),  # is U a member of X
        Index("user_idx", ("user_id",)),  # the organizations U belongs to
    ),
)
# Every token ever issued to an invitation, one row per token generation (the invitation
# row holds only the current one): how the accept page tells a superseded link from an
# unknown one. Written from each Invited and TokenReissued event by
# :mod:`a4c_projector.readmodel.tokens`; the token's hash, never the token. A row is a
# fact: it never changes once written (the bookkeeping is its issuing event's).
INVITATION_TOKENS = Table(
    "invitation_tokens",
    (
        _c("token_hash", "text"),
        _c("invitation_id", "uuid"),
        _c("organization_id", "uuid"),
        _c("token_generation", "integer"),
        _c("issued_at", "timestamptz"),  # the issuing event's time
        *BOOKKEEPING,  # the issuing event's
    ),
    primary_key="token_hash",
    indexes=(Index("invitation_idx", ("invitation_id", "token_generation")),),
    aggregate_column="invitation_id",
)
# Every public event (:mod:`a4c_domain.public_events`) the projection applied, by its
# notification id: the events API's cursor. Written by
# :mod:`a4c_projector.readmodel.public_events` in the batch's own transaction, so only
# positions the no-skip guard has passed are ever in it; a row is a fact, never changed.
# ``subject_id`` (the aggregate whose event it is) is how a rebuild's comparison finds
# the rows a range of events wrote.
PUBLIC_EVENTS = Table(
    "public_events",
    (
        _c("position", "bigint"),
        Column("event_id", "uuid", unique=True),
        _c("type", "text"),
        _c("organization_id", "uuid"),
        _c("subject_id", "uuid"),
        _c("occurred_at", "timestamptz"),
        _c("body", "text"),  # the PublicEvent's JSON, complete
    ),
    primary_key="position",
    indexes=(
        Index("org_position_idx", ("organization_id", "position")),  # one tenant's feed
        Index("type_position_idx", ("type", "position")),  # a feed of some types
        Index("occurred_at_idx", ("occurred_at",)),  # where range_start begins
        Index("subject_idx", ("subject_id",)),  # a rebuild compares an aggregate's rows
    ),
    aggregate_column="subject_id",
)
# Where, and for which events, webhooks are delivered: one row per
# :class:`a4c_domain.webhook_endpoint.WebhookEndpoint` (a deleted one keeps its row, status
# ``deleted``). The signing secrets are kept **sealed** (cipher text under the webhook
# secret keys), as the events carry them. ``enabled_since`` is the notification id of the
# event that last enabled it (Added, Reinstated, Enabled): the delivery daemon's fan-out
# delivers an event at position p only if p > enabled_since, so an endpoint never gets
# what happened while it was disabled or before it existed.
WEBHOOK_ENDPOINTS = Table(
    "webhook_endpoints",
    (
        _c("id", "uuid"),
        _c("owner_id", "uuid", null=True),  # None: the platform's (operators')
        _c("name", "text"),
        _c("url", "text"),
        _c("event_types", "text", null=True),  # a sorted JSON array; None: every type
        _c("organization_id", "uuid", null=True),  # only this organization's events
        _c("description", "text"),
        _c("secret", "text"),  # sealed, never the secret itself
        _c("previous_secret", "text", null=True),  # sealed; signs until it expires
        _c("previous_secret_expires_at", "timestamptz", null=True),
        _c("status", "text"),  # enabled | disabled | deleted
        _c("disabled_reason", "text", null=True),
        _c("disabled_automatically", "boolean"),
        _c("enabled_since", "bigint"),
        _c("created_at", "timestamptz"),  # the Added event's time (kept when reinstated)
        *BOOKKEEPING,
    ),
    primary_key="id",
    indexes=(
        Index("owner_idx", ("owner_id",)),  # an owner's endpoints
        Index("status_idx", ("status",)),  # the daemon's enabled ones
    ),
)
# An organization's own sign-in provider: one row per
# :class:`a4c_domain.sso_connection.SSOConnection` (one per organization). ``status`` says
# whether single sign-on is in force (``active``, through ``active_issuer``) or not
# (``none``); a configuration being tried is in the ``pending_*`` columns until it is
# activated or abandoned (the query record's ``state`` reads ``pending`` then). NO client
# secret, not even sealed: the worker reads it from the aggregate when it exchanges a
# sign-in's code, and no reader of the read model needs it.
SSO_CONNECTIONS = Table(
    "sso_connections",
    (
        _c("id", "uuid"),
        Column("organization_id", "uuid", unique=True),
        _c("status", "text"),  # active | none
        _c("generation", "bigint"),  # the latest configuration's number
        _c("active_generation", "bigint", null=True),
        _c("active_issuer", "text", null=True),
        _c("active_client_id", "text", null=True),
        _c("activated_at", "timestamptz", null=True),
        _c("pending_generation", "bigint", null=True),
        _c("pending_issuer", "text", null=True),
        _c("pending_client_id", "text", null=True),
        _c("pending_tested", "boolean"),  # its test sign-in passed
        _c("pending_since", "timestamptz", null=True),
        _c("abandon_reason", "text", null=True),  # why the last one tried was dropped
        _c("deactivation_reason", "text", null=True),
        _c("deactivated_at", "timestamptz", null=True),
        _c("configured_at", "timestamptz"),  # the first configuration's time
        *BOOKKEEPING,
        # Where the members' sign-ins through the active provider start (from its
        # checked discovery); added after the first builds of this table, so appended.
        _c("active_authorization_endpoint", "text", null=True),
    ),
    primary_key="id",
)
# The e-mail domains organizations asked to own: one row per
# :class:`a4c_domain.email_domains.EmailDomainVerification` (organization, domain). The
# challenge is public (the organization publishes it in DNS), so it is kept as is.
EMAIL_DOMAINS = Table(
    "email_domains",
    (
        _c("id", "uuid"),
        _c("organization_id", "uuid"),
        _c("domain", "text"),
        _c("challenge", "text"),
        _c("status", "text"),  # pending | verified
        _c("requested_at", "timestamptz"),
        _c("verified_at", "timestamptz", null=True),
        *BOOKKEEPING,
    ),
    primary_key="id",
    indexes=(
        Index("organization_idx", ("organization_id",)),  # an organization's domains
        Index("domain_idx", ("domain",)),  # who owns an invitee's domain
    ),
)
APPLIED_RANGES = Table(
    "applied_ranges",
    (_c("first_id", "bigint"), _c("last_id", "bigint")),
    primary_key="first_id",
    indexes=(Index("last_id_idx", ("last_id",)),),
    check="last_id >= first_id",
)
DEAD_LETTERS = Table(
    "dead_letters",
    (
        _c("notification_id", "bigint"),
        _c("originator_id", "uuid"),
        _c("originator_version", "bigint"),
        _c("topic", "text"),
        _c("error", "text"),
        _c("parked_at", "timestamptz", default="now"),
    ),
    primary_key="notification_id",
    indexes=(Index("originator_idx", ("originator_id", "originator_version")),),
)

# The read models proper: what other services query (:mod:`a4c_projector.queries`).
READ_MODELS = (
    ORGANIZATIONS,
    INVITATIONS,
    MEMBERS,
    INVITATION_TOKENS,
    PUBLIC_EVENTS,
    WEBHOOK_ENDPOINTS,
    SSO_CONNECTIONS,
    EMAIL_DOMAINS,
)
# Every live table: the read models between the projector's own bookkeeping.
TABLES = (TRACKING, *READ_MODELS, APPLIED_RANGES, DEAD_LETTERS)
# A table set's tables, in the order :class:`~a4c_projector.readmodel.tables.TableSet`
# lists them.
PER_SET = tuple(t for t in TABLES if t.per_set)


def expected_tables(*, read_models_only: bool = False) -> tuple[str, ...]:
    """The live tables the projector creates (``read_models_only``: the queried ones)."""
    return tuple(t.name for t in (READ_MODELS if read_models_only else TABLES))


def expected_columns(table: str) -> tuple[str, ...]:
    """A live table's columns, in order."""
    for declared in TABLES:
        if declared.name == table:
            return declared.column_names
    raise KeyError(f"no projector table {table!r}; there are {', '.join(expected_tables())}")


def compared_columns(table: Table) -> tuple[str, ...]:
    """Every column but ``updated_at`` (when a row was written): what two builds of the
    same events must agree on, and what a query record holds."""
    return tuple(n for n in table.column_names if n != "updated_at")


def sqlite_ddl(table: Table, suffix: str = "") -> list[str]:
    """``CREATE ... IF NOT EXISTS`` statements for one table of a set, on SQLite."""
    name = f"{table.name}{suffix}"
    lines = []
    for column in table.columns:
        # ``INTEGER PRIMARY KEY`` makes the key SQLite's rowid, as it always was here.
        parts = [column.name, SQLITE_AFFINITY[column.type]]
        if column.name == table.primary_key:
            parts.append("PRIMARY KEY")
        elif not column.nullable:
            parts.append("NOT NULL")
        if column.unique:
            parts.append("UNIQUE")
        if column.default is not None:
            parts.append(f"DEFAULT {SQLITE_DEFAULT[column.default]}")
        lines.append(" ".join(parts))
    if table.check is not None:
        lines.append(f"CHECK ({table.check})")
    statements = [f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(lines)})"]
    for index in table.indexes:
        if index.method == "btree":
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {table.index_name(index, suffix)} "
                f"ON {name} ({', '.join(index.columns)})"
            )
    return statements
