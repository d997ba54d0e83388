# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""The read side for other services: frozen models from the projector's tables.

``ReadModel(location)`` holds one connection (open it per thread, or per request from
a pool) and works the same on PostgreSQL and SQLite. Read your own writes: a command
returns a view whose ``position`` is the notification id it wrote; ``wait_until``
blocks until the projection has reached it::

    view = app.activate(organization_id=org_id)
    read_model.wait_until(view.position, timeout=5)
    read_model.organization(org_id).status == "active"

After a write whose position the caller does not know (a workflow's), ``catch_up``
waits for everything committed when it was called.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Collection
from contextlib import AbstractContextManager, nullcontext, suppress
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict, field_validator

from a4c_domain import ALL_ORGANIZATIONS, OrganizationScope, hash_token
from a4c_domain.scope import checked, in_scope
from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.eventlog.source import head
from a4c_projector.public_queries import PublicEventReads
from a4c_projector.readmodel.tables import LIVE, TableSet
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION, read_position
from a4c_projector.schema import INVITATIONS, MEMBERS, ORGANIZATIONS, compared_columns
from a4c_projector.sso_queries import EmailDomainRecord, SSOConnectionRecord, SSOReads
from a4c_projector.webhook_queries import WebhookEndpointReads, WebhookEndpointRow

__all__ = [
    "UNAVAILABLE_ERRORS",
    "EmailDomainRecord",
    "InvitationRecord",
    "Location",
    "MemberRecord",
    "OrganizationRecord",
    "ProjectionTimeout",
    "ReadModel",
    "SSOConnectionRecord",
    "TokenMatch",
    "WebhookEndpointRow",
]

# The columns a record is read from: every column of its table but ``updated_at``
# (tests/projector/test_schema.py checks each record's fields are exactly these).
ORGANIZATION_COLUMNS = compared_columns(ORGANIZATIONS)
INVITATION_COLUMNS = compared_columns(INVITATIONS)
MEMBER_COLUMNS = compared_columns(MEMBERS)


class Record(BaseModel):
    """A row of a read model; its fields are the table's columns (bar ``updated_at``),
    declared in :mod:`a4c_projector.schema`."""

    model_config = ConfigDict(frozen=True)


class OrganizationRecord(Record):
    id: UUID
    slug: str
    name: str
    org_type: str
    parent_id: UUID | None
    tags: tuple[str, ...]
    domain: str | None
    status: str
    dns_status: str
    fqdn: str | None
    dns_target: str | None
    dns_record_id: str | None
    deactivation_reason: str | None
    failed_step: str | None
    registered_at: datetime
    dns_configured_at: datetime | None
    dns_verified_at: datetime | None
    dns_removed_at: datetime | None
    activated_at: datetime | None
    deactivated_at: datetime | None
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class InvitationRecord(Record):
    """An invitation as stored by the projector: the token's hash, never the token."""

    id: UUID
    organization_id: UUID
    email: str
    role: str
    first_name: str
    last_name: str
    generation: int
    token_generation: int
    token_hash: str
    expires_at: datetime
    status: str
    email_status: str
    message_id: str | None
    email_error: str | None
    accepted_by: str | None
    revoke_reason: str | None
    invited_at: datetime
    email_sent_at: datetime | None
    email_failed_at: datetime | None
    token_reissued_at: datetime | None
    accepted_at: datetime | None
    revoked_at: datetime | None
    expired_at: datetime | None
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int
    accepted_issuer: str | None
    accepted_subject: str | None


class MemberRecord(Record):
    """Someone who accepted an invitation: ``user_id`` is the identity that accepted,
    ``joined_at`` when; ``issuer`` and ``subject`` the sign-in they accepted with (None:
    the dev sign-in, or before 0.5). Kept when the organization is deactivated (read
    its status)."""

    invitation_id: UUID
    organization_id: UUID
    user_id: str
    email: str
    role: str
    first_name: str
    last_name: str
    joined_at: datetime
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int
    issuer: str | None
    subject: str | None


class TokenMatch(BaseModel):
    """The invitation a token was issued to. ``current`` False: an older generation,
    superseded by a re-send (the invitation's own status still says the rest)."""

    model_config = ConfigDict(frozen=True)

    invitation: InvitationRecord
    current: bool


# What a read raises when the database did not answer (the connection lost or refused,
# the server shutting down, SQLite busy past its timeout), never a fault of the query:
# worth trying once more on a new connection.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    sqlite3.OperationalError,
)


class ProjectionTimeout(TimeoutError):
    """The projection did not reach the wanted position in time."""


def _scoped(scope: OrganizationScope, **equal: object) -> tuple[str, list[Any]]:
    """``WHERE`` limiting rows to ``scope`` (nothing for ``ALL_ORGANIZATIONS``; anything
    else refused) and to each column equal to its value (unless None)."""
    if checked(scope) is not ALL_ORGANIZATIONS:
        equal = {"organization_id": scope, **equal}
    wanted = {column: value for column, value in equal.items() if value is not None}
    where = " AND ".join(f"{column} = %s" for column in wanted)
    return ("WHERE " + where) if where else "", list(wanted.values())


class ReadModel(PublicEventReads, WebhookEndpointReads, SSOReads):
    def __init__(
        self,
        location: Location | Database,
        *,
        projection: str = DEFAULT_PROJECTION,
        tables: TableSet = LIVE,
    ) -> None:
        self._owns = not isinstance(location, Database)
        # A connection of its own reads in autocommit: each query is one statement (its
        # own snapshot), so it costs one round trip instead of BEGIN, SELECT, COMMIT —
        # a third of the time of a page that asks two questions (bench/api.py). A
        # connection passed in is the caller's: its reads stay inside a transaction.
        self._db = (
            location
            if isinstance(location, Database)
            else connect(location, autocommit=True, purpose="read")
        )
        self.projection = projection
        self.tables = tables

    def _read(self) -> AbstractContextManager[None]:
        """Around one read: nothing on an autocommit connection of its own, else a
        transaction (which a caller's already open one nests as a savepoint)."""
        return nullcontext() if self._owns else self._db.transaction()

    def close(self) -> None:
        if self._owns:
            self._db.close()

    def interrupt(self) -> None:
        """Break its connection off, from another thread: a read waiting on a server that
        stopped answering (TCP does not notice one stopped, or a stuck proxy) fails at
        once instead of never. Then only :meth:`close` is left to do."""
        if self._owns and isinstance(self._db, PostgresDatabase):
            with suppress(OSError, psycopg.Error):  # already closed
                fd = self._db.conn.pgconn.socket
                with socket.fromfd(fd, socket.AF_UNIX, socket.SOCK_STREAM) as dup:
                    dup.shutdown(socket.SHUT_RDWR)  # the socket's, not only the dup's

    def __enter__(self) -> ReadModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(self, table: str, columns: tuple[str, ...], where: str, params: Any) -> list[Any]:
        with self._read():
            rows = self._db.execute(f'SELECT {", ".join(columns)} FROM "{table}" {where}', params)
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def _organizations(self, where: str, params: Any) -> list[OrganizationRecord]:
        rows = self._select(self.tables.organizations, ORGANIZATION_COLUMNS, where, params)
        return [OrganizationRecord.model_validate(r) for r in rows]

    def _invitations(self, where: str, params: Any) -> list[InvitationRecord]:
        rows = self._select(self.tables.invitations, INVITATION_COLUMNS, where, params)
        return [InvitationRecord.model_validate(r) for r in rows]

    def _members(self, where: str, params: Any) -> list[MemberRecord]:
        rows = self._select(self.tables.members, MEMBER_COLUMNS, where, params)
        return [MemberRecord.model_validate(r) for r in rows]

    def organization(self, organization_id: UUID) -> OrganizationRecord | None:
        found = self._organizations("WHERE id = %s", (organization_id,))
        return found[0] if found else None

    def organization_by_slug(self, slug: str) -> OrganizationRecord | None:
        found = self._organizations("WHERE slug = %s", (slug,))
        return found[0] if found else None

    def organizations(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        ids: Collection[UUID] | None = None,
        member: str | None = None,
        parent_id: UUID | None = None,
    ) -> list[OrganizationRecord]:
        """Organizations by slug, with ``status`` and ``tag`` when given; only those of
        ``ids``, only those user ``member`` is a member of, and only the children of
        ``parent_id``, when given. The database does the limiting (the members index on
        ``user_id``, the organizations' on ``parent_id``): no other tenant's row is read.
        """
        if ids is not None and not ids:
            return []
        clauses: list[str] = []
        params: list[Any] = []
        if ids is not None:
            clauses.append(f"id IN ({', '.join(['%s'] * len(ids))})")
            params.extend(ids)
        if member is not None:
            clauses.append(
                f'id IN (SELECT organization_id FROM "{self.tables.members}" WHERE user_id = %s)'
            )
            params.append(member)
        if parent_id is not None:
            clauses.append("parent_id = %s")
            params.append(parent_id)
        if status is not None:
            clauses.append("status = %s")
            params.append(status)
        if tag is not None:
            clauses.append(self._db.has_tag("tags"))
            params.append(tag)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._organizations(where + " ORDER BY slug", params)

    def invitations(
        self, organization_id: OrganizationScope, *, status: str | None = None
    ) -> list[InvitationRecord]:
        """An organization's invitations by e-mail; every tenant's only when asked for
        with ``ALL_ORGANIZATIONS`` (there is no default)."""
        where, params = _scoped(organization_id, status=status)
        return self._invitations(where + " ORDER BY organization_id, email, generation", params)

    def invitation(
        self, invitation_id: UUID, organization_id: OrganizationScope
    ) -> InvitationRecord | None:
        """One invitation; ``None`` when unknown or another organization's (the same
        answer: the caller cannot tell the two apart)."""
        checked(organization_id)
        found = self._invitations("WHERE id = %s", (invitation_id,))
        if not found or not in_scope(found[0].organization_id, organization_id):
            return None
        return found[0]

    def invitation_by_token(self, token: str) -> InvitationRecord | None:
        """The invitation whose *current* token this is (hashed here, never stored)."""
        found = self._invitations("WHERE token_hash = %s", (hash_token(token),))
        return found[0] if found else None

    def token_match(self, token: str) -> TokenMatch | None:
        """The invitation this token was ever issued to, and whether it is still its
        current one; None for a token never issued. Hashed here, never stored."""
        columns = ", ".join(f"i.{c}" for c in INVITATION_COLUMNS)
        with self._read():
            rows = self._db.execute(
                f'SELECT t.token_generation, {columns} FROM "{self.tables.invitation_tokens}" t '
                f'JOIN "{self.tables.invitations}" i ON i.id = t.invitation_id '
                "WHERE t.token_hash = %s",
                (hash_token(token),),
            )
        if not rows:
            return None
        generation, *values = rows[0]
        invitation = InvitationRecord.model_validate(
            dict(zip(INVITATION_COLUMNS, values, strict=True))
        )
        return TokenMatch(invitation=invitation, current=generation == invitation.token_generation)

    def members(
        self, organization_id: OrganizationScope, *, role: str | None = None
    ) -> list[MemberRecord]:
        """An organization's members (with ``role`` only, when given), by when they
        joined; every tenant's only when asked for with ``ALL_ORGANIZATIONS``. Members
        of a deactivated organization are still listed: check its status to decide."""
        where, params = _scoped(organization_id, role=role)
        return self._members(where + " ORDER BY organization_id, joined_at, invitation_id", params)

    def memberships(self, user_id: str) -> list[MemberRecord]:
        """Every membership of user ``user_id``, in any organization, by when they joined
        (the organizations a person may see; answered from an index on ``user_id``)."""
        return self._members("WHERE user_id = %s ORDER BY joined_at, invitation_id", (user_id,))

    def member(
        self, organization_id: OrganizationScope, user_id: str, *, role: str | None = None
    ) -> MemberRecord | None:
        """User ``user_id``'s membership of one organization (with ``role``, when given):
        the authorization question. ``None`` when not a member, and for another
        organization's member alike (``ALL_ORGANIZATIONS``: of any organization). Someone
        who accepted two invitations of an organization is a member twice; this answers
        with the one they accepted last."""
        where, params = _scoped(organization_id, user_id=user_id, role=role)
        found = self._members(where + " ORDER BY joined_at DESC, invitation_id LIMIT 1", params)
        return found[0] if found else None

    def position(self) -> int:
        with self._read():
            return read_position(self._db, self.projection)

    def head(self) -> int:
        """The event store's highest committed notification id (visible now)."""
        with self._read():
            return head(self._db)

    def catch_up(self, timeout: float = 5.0) -> int:
        """Block until the projection has applied every event committed when called: read
        your writes after a write whose position is unknown (raises ProjectionTimeout)."""
        return self.wait_until(self.head(), timeout)

    def wait_until(self, position: int | None, timeout: float = 5.0, poll: float = 0.01) -> int:
        """Block until the projection has applied ``position`` (None: nothing to wait for)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.position()
            if position is None or current >= position:
                return current
            if time.monotonic() >= deadline:
                raise ProjectionTimeout(
                    f"projection {self.projection!r} is at {current}, not {position}, "
                    f"after {timeout}s"
                )
            time.sleep(poll)
