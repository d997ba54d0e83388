"""Event handlers: each domain event becomes the column values it sets on one row.

Handlers are pure (no I/O): ``RowHandlers().changes(event)`` returns a
:class:`RowChange`. The writer folds a batch's changes per aggregate and turns them into
version-guarded upserts, which is what makes replaying any range a no-op. Adding an
event type means adding one ``@changes.register`` method here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from a4c_domain import Invitation, Organization
from a4c_domain.base import DomainAggregate


class UnhandledEvent(Exception):
    """The projector has no handler for this event class."""


@dataclass
class RowChange:
    """What one event (or a fold of consecutive events) does to one read-model row."""

    table: str  # "organizations" | "invitations"
    id: UUID
    version: int
    event_id: UUID
    modified_at: datetime
    columns: dict[str, Any] = field(default_factory=dict)
    creates: bool = False  # the row is created by this change (it carries every column)
    position: int = 0  # notification id of the (last) event folded into this change

    def then(self, later: RowChange) -> RowChange:
        """This change followed by ``later`` (same row), as one change."""
        assert later.id == self.id and later.version > self.version
        return RowChange(
            table=self.table,
            id=self.id,
            version=later.version,
            event_id=later.event_id,
            modified_at=later.modified_at,
            columns={**self.columns, **later.columns},
            creates=self.creates,
            position=later.position,
        )


class RowHandlers:
    """``changes(event)`` dispatches on the event class."""

    @singledispatchmethod
    def changes(self, event: DomainAggregate.Event) -> RowChange:
        raise UnhandledEvent(f"no projector handler for {type(event).__qualname__}")

    @staticmethod
    def _change(table: str, event: DomainAggregate.Event, **columns: Any) -> RowChange:
        return RowChange(
            table=table,
            id=event.originator_id,
            version=event.originator_version,
            event_id=event.event_id,
            modified_at=event.timestamp,
            columns=columns,
        )

    # --- organizations ----------------------------------------------------------------

    @changes.register
    def _(self, event: Organization.Registered) -> RowChange:
        change = self._change(
            "organizations",
            event,
            slug=event.slug,
            name=event.name,
            org_type=event.org_type,
            parent_id=event.parent_id,
            tags=sorted(event.tags),
            domain=event.domain,
            status="registered",
            dns_status="none",
            fqdn=None,
            dns_target=None,
            dns_record_id=None,
            deactivation_reason=None,
            failed_step=None,
            registered_at=event.timestamp,
            dns_configured_at=None,
            dns_verified_at=None,
            dns_removed_at=None,
            activated_at=None,
            deactivated_at=None,
        )
        change.creates = True
        return change

    @changes.register
    def _(self, event: Organization.DNSConfigured) -> RowChange:
        return self._change(
            "organizations",
            event,
            dns_status="configured",
            fqdn=event.fqdn,
            dns_target=event.target,
            dns_record_id=event.record_id,
            dns_configured_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Organization.DNSVerified) -> RowChange:
        return self._change(
            "organizations", event, dns_status="verified", dns_verified_at=event.timestamp
        )

    @changes.register
    def _(self, event: Organization.DNSRemoved) -> RowChange:
        return self._change(
            "organizations", event, dns_status="removed", dns_removed_at=event.timestamp
        )

    @changes.register
    def _(self, event: Organization.Activated) -> RowChange:
        return self._change("organizations", event, status="active", activated_at=event.timestamp)

    @changes.register
    def _(self, event: Organization.Deactivated) -> RowChange:
        return self._change(
            "organizations",
            event,
            status="deactivated",
            deactivation_reason=event.reason,
            failed_step=event.failed_step,
            deactivated_at=event.timestamp,
        )

    # --- invitations ------------------------------------------------------------------

    @changes.register
    def _(self, event: Invitation.Invited) -> RowChange:
        change = self._change(
            "invitations",
            event,
            organization_id=event.organization_id,
            email=event.email,
            role=event.role,
            first_name=event.first_name,
            last_name=event.last_name,
            generation=event.generation,
            token_generation=1,
            token_hash=event.token_hash,
            expires_at=event.expires_at,
            status="pending",
            email_status="not_sent",
            message_id=None,
            email_error=None,
            accepted_by=None,
            revoke_reason=None,
            invited_at=event.timestamp,
            email_sent_at=None,
            email_failed_at=None,
            token_reissued_at=None,
            accepted_at=None,
            revoked_at=None,
            expired_at=None,
        )
        change.creates = True
        return change

    @changes.register
    def _(self, event: Invitation.EmailSent) -> RowChange:
        return self._change(
            "invitations",
            event,
            email_status="sent",
            message_id=event.message_id,
            email_error=None,
            email_sent_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Invitation.EmailFailed) -> RowChange:
        return self._change(
            "invitations",
            event,
            email_status="failed",
            email_error=event.reason,
            email_failed_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Invitation.TokenReissued) -> RowChange:
        return self._change(
            "invitations",
            event,
            token_generation=event.token_generation,
            token_hash=event.token_hash,
            expires_at=event.expires_at,
            email_status="not_sent",
            message_id=None,
            email_error=None,
            token_reissued_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Invitation.Accepted) -> RowChange:
        return self._change(
            "invitations",
            event,
            status="accepted",
            accepted_by=event.user_id,
            accepted_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Invitation.Revoked) -> RowChange:
        return self._change(
            "invitations",
            event,
            status="revoked",
            revoke_reason=event.reason,
            revoked_at=event.timestamp,
        )

    @changes.register
    def _(self, event: Invitation.Expired) -> RowChange:
        return self._change("invitations", event, status="expired", expired_at=event.timestamp)
