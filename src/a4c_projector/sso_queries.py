# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""Single sign-on's reads, a part of :class:`a4c_projector.queries.ReadModel`.

Who reads them: the API (an organization's connection and e-mail domains for its
admins and operators; the test sign-in page, which needs the pending provider's issuer
and client id; the accept page, which needs to know whether an invitee's address is in
a verified e-mail domain of an organization whose single sign-on is active). There is
no client secret in these rows: the worker reads it from the aggregate.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.schema import EMAIL_DOMAINS, SSO_CONNECTIONS, compared_columns

SSO_CONNECTION_COLUMNS = compared_columns(SSO_CONNECTIONS)
EMAIL_DOMAIN_COLUMNS = compared_columns(EMAIL_DOMAINS)
SSOState = Literal["pending", "active", "none"]


class SSOConnectionRecord(BaseModel):
    """An organization's single sign-on connection (no secret, sealed or not)."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    organization_id: UUID
    status: Literal["active", "none"]  # in force or not
    generation: int
    active_generation: int | None
    active_issuer: str | None
    active_client_id: str | None
    activated_at: datetime | None
    pending_generation: int | None
    pending_issuer: str | None
    pending_client_id: str | None
    pending_tested: bool
    pending_since: datetime | None
    abandon_reason: str | None
    deactivation_reason: str | None
    deactivated_at: datetime | None
    configured_at: datetime
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int
    active_authorization_endpoint: str | None

    @property
    def state(self) -> SSOState:
        """``pending`` while a configuration is being tried (the active one, if any,
        stays in force meanwhile), else whether one is in force."""
        return "pending" if self.pending_generation is not None else self.status

    @property
    def issuer(self) -> str | None:
        """The issuer of the configuration an admin last gave: the one tried, else the
        one in force."""
        return self.pending_issuer or self.active_issuer

    @property
    def client_id(self) -> str | None:
        return self.pending_client_id or self.active_client_id


class EmailDomainRecord(BaseModel):
    """An e-mail domain an organization asked to own; ``challenge`` is public."""

    model_config = ConfigDict(frozen=True)

    id: UUID
    organization_id: UUID
    domain: str
    challenge: str
    status: Literal["pending", "verified"]
    requested_at: datetime
    verified_at: datetime | None
    modified_at: datetime
    version: int
    last_event_id: UUID
    last_position: int


class InviteeSSO(BaseModel):
    """The provider an invitee must sign in through: their organization's single sign-on
    in force, which covers their address's verified e-mail domain."""

    model_config = ConfigDict(frozen=True)

    issuer: str
    client_id: str
    authorization_endpoint: str | None  # None: activated by a build that did not keep it


class SSOReads:
    """Mixed into :class:`a4c_projector.queries.ReadModel`, which provides these."""

    _db: Database
    tables: TableSet

    def _read(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # ReadModel's

    def _rows(
        self, table: str, columns: tuple[str, ...], where: str, params: Any
    ) -> list[dict[str, Any]]:
        with self._read():
            rows = self._db.execute(f'SELECT {", ".join(columns)} FROM "{table}" {where}', params)
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def sso_connection(self, organization_id: UUID) -> SSOConnectionRecord | None:
        """The organization's connection; None if it never configured one."""
        rows = self._rows(
            self.tables.sso_connections,
            SSO_CONNECTION_COLUMNS,
            "WHERE organization_id = %s",
            (organization_id,),
        )
        return SSOConnectionRecord.model_validate(rows[0]) if rows else None

    def email_domains(self, organization_id: UUID) -> list[EmailDomainRecord]:
        """The e-mail domains the organization asked to own, by domain."""
        rows = self._rows(
            self.tables.email_domains,
            EMAIL_DOMAIN_COLUMNS,
            "WHERE organization_id = %s ORDER BY domain",
            (organization_id,),
        )
        return [EmailDomainRecord.model_validate(r) for r in rows]

    def email_domain(self, organization_id: UUID, domain: str) -> EmailDomainRecord | None:
        rows = self._rows(
            self.tables.email_domains,
            EMAIL_DOMAIN_COLUMNS,
            "WHERE organization_id = %s AND domain = %s",
            (organization_id, domain.lower()),
        )
        return EmailDomainRecord.model_validate(rows[0]) if rows else None

    def email_domain_owner(self, domain: str) -> UUID | None:
        """The organization that verified e-mail domain ``domain`` (one at most: the
        domain's claim), or None."""
        with self._read():
            rows = self._db.execute(
                f'SELECT organization_id FROM "{self.tables.email_domains}" '
                "WHERE domain = %s AND status = 'verified'",
                (domain.lower(),),
            )
        return UUID(str(rows[0][0])) if rows else None

    def invitee_sso(self, organization_id: UUID, email_domain: str) -> InviteeSSO | None:
        """The provider an invitee of ``organization_id`` whose address is in
        ``email_domain`` (as :func:`a4c_domain.email_domains.email_domain_of` gives it)
        must sign in through; None when the organization's single sign-on does not
        cover them (none in force, or the domain not verified by this organization)."""
        with self._read():
            rows = self._db.execute(
                "SELECT c.active_issuer, c.active_client_id, c.active_authorization_endpoint "
                f'FROM "{self.tables.sso_connections}" c JOIN "{self.tables.email_domains}" d '
                "ON d.organization_id = c.organization_id "
                "WHERE c.organization_id = %s AND c.status = 'active' "
                "AND d.domain = %s AND d.status = 'verified'",
                (organization_id, email_domain.lower()),
            )
        if not rows:
            return None
        issuer, client_id, endpoint = rows[0]
        return InviteeSSO(issuer=issuer, client_id=client_id, authorization_endpoint=endpoint)
