# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""The webhook endpoints' reads, a part of :class:`ReadModel`.

Who reads them: the API (an organization's endpoints, or the platform's for operators),
and the delivery daemon (the enabled endpoints, with their sealed secrets, and the
admins to tell when it disables one). The secrets stay sealed here: opening them is the
daemon's, with the webhook secret keys (:mod:`a4c_webhooks.sealing`); a row's ``repr``
shows neither.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from a4c_domain.scope import ALL_ORGANIZATIONS, AllOrganizations
from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.schema import WEBHOOK_ENDPOINTS, compared_columns

# The columns a row is read from: every column but ``updated_at`` (the write's clock).
WEBHOOK_ENDPOINT_COLUMNS = compared_columns(WEBHOOK_ENDPOINTS)
# The roles that administer an organization (the API's ``ADMIN_ROLES``, which this layer
# cannot import): who manages its endpoints, and is told when one is disabled.
ADMIN_ROLES = ("admin", "owner")


def _uuid(value: Any) -> UUID | None:
    return None if value is None else value if isinstance(value, UUID) else UUID(str(value))


def _time(value: Any) -> datetime:
    """PostgreSQL gives a datetime, SQLite the ISO text it was written as."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _optional_time(value: Any) -> datetime | None:
    return None if value is None else _time(value)


@dataclass(frozen=True)
class WebhookEndpointRow:
    """A webhook endpoint as the projector stores it. ``secret`` and ``previous_secret``
    are sealed (never the secret itself) and left out of the ``repr`` all the same, as
    is the URL: a row may end up in a log line or an error."""

    id: UUID
    owner_id: UUID | None  # None: the platform's (operators')
    name: str
    url: str = field(repr=False)  # its query string may hold the receiver's token
    event_types: tuple[str, ...] | None  # sorted; None: every public event type
    organization_id: UUID | None  # only this organization's events
    description: str
    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None
    status: str  # enabled | disabled | deleted
    disabled_reason: str | None
    disabled_automatically: bool
    enabled_since: int  # deliver an event at position p only if p > enabled_since
    created_at: datetime
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> WebhookEndpointRow:
        """From the values of :data:`WEBHOOK_ENDPOINT_COLUMNS` (either database's)."""
        types = row["event_types"]
        return cls(
            id=UUID(str(row["id"])),
            owner_id=_uuid(row["owner_id"]),
            name=str(row["name"]),
            url=str(row["url"]),
            event_types=None if types is None else tuple(json.loads(types)),
            organization_id=_uuid(row["organization_id"]),
            description=str(row["description"]),
            secret=str(row["secret"]),
            previous_secret=row["previous_secret"],
            previous_secret_expires_at=_optional_time(row["previous_secret_expires_at"]),
            status=str(row["status"]),
            disabled_reason=row["disabled_reason"],
            disabled_automatically=bool(row["disabled_automatically"]),
            enabled_since=int(row["enabled_since"]),
            created_at=_time(row["created_at"]),
            modified_at=_time(row["modified_at"]),
            version=int(row["version"]),
            last_event_id=UUID(str(row["last_event_id"])),
            last_position=int(row["last_position"]),
        )


class WebhookEndpointReads:
    """Mixed into :class:`a4c_projector.queries.ReadModel`, which provides these."""

    _db: Database
    tables: TableSet

    def _read(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # ReadModel's

    def _endpoints(self, where: str, params: Any) -> list[WebhookEndpointRow]:
        columns = WEBHOOK_ENDPOINT_COLUMNS
        with self._read():
            rows = self._db.execute(
                f'SELECT {", ".join(columns)} FROM "{self.tables.webhook_endpoints}" {where}',
                params,
            )
        return [WebhookEndpointRow.from_row(dict(zip(columns, r, strict=True))) for r in rows]

    def webhook_endpoints(
        self, owner: UUID | AllOrganizations | None, *, include_deleted: bool = False
    ) -> list[WebhookEndpointRow]:
        """The endpoints of ``owner`` by name: an organization's own, the platform's
        (None), or every owner's (``ALL_ORGANIZATIONS``: operators), the platform's first.
        Deleted ones only when asked for."""
        clauses: list[str] = []
        params: list[Any] = []
        if owner is None:
            clauses.append("owner_id IS NULL")
        elif owner is not ALL_ORGANIZATIONS:
            if not isinstance(owner, UUID):  # a slug or a string: never widened to all
                raise TypeError(f"an owner is a UUID, None or ALL_ORGANIZATIONS, not {owner!r}")
            clauses.append("owner_id = %s")
            params.append(owner)
        if not include_deleted:
            clauses.append("status <> 'deleted'")
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        # NULLs (the platform's) first on both databases, then by owner and name.
        order = " ORDER BY owner_id IS NOT NULL, owner_id, name"
        return self._endpoints(where + order, params)

    def webhook_endpoint(self, endpoint_id: UUID) -> WebhookEndpointRow | None:
        """One endpoint, whoever owns it (deleted ones too: see ``status``); scoping it
        to the caller is the caller's."""
        found = self._endpoints("WHERE id = %s", (endpoint_id,))
        return found[0] if found else None

    def enabled_webhook_endpoints(self) -> list[WebhookEndpointRow]:
        """Every enabled endpoint, with its sealed secrets: what the delivery daemon
        fans events out to (each only after its ``enabled_since``)."""
        return self._endpoints("WHERE status = 'enabled' ORDER BY id", ())

    def organization_admin_emails(self, organization_id: UUID) -> list[str]:
        """The addresses of an organization's admins (members with a role of
        :data:`ADMIN_ROLES`: the address their invitation was sent to and accepted from),
        sorted, each once. Listed when the organization is deactivated too: read its
        status to decide."""
        with self._read():
            rows = self._db.execute(
                f'SELECT DISTINCT email FROM "{self.tables.members}" '
                "WHERE organization_id = %s AND role IN (%s, %s) ORDER BY email",
                (organization_id, *ADMIN_ROLES),
            )
        return [str(r[0]) for r in rows]
