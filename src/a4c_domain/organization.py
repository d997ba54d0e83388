"""The Organization aggregate: registered → DNS configured → DNS verified → activated.

Compensations (DNS removed, deactivated) are always allowed; after deactivation they are
the only thing allowed. Offboarding (``Offboarded``) ends an organization that was in
use, on request: it is told apart from a bootstrap that was undone (``deactivated``) in
the status, the read model and the public events, and it is as final (see
:data:`INACTIVE_STATUSES`). The domain an organization registers or configures DNS for is
claimed for it (:mod:`a4c_domain.claims`, saved with the event by the application); the
claim stays with the organization after its DNS is removed and after deactivation.
Public command methods check invariants and decide whether the command is a no-op
(same content again) or a conflict; the ``@event`` methods only assign, so replaying
history never re-runs a guard.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.errors import (
    DNSAlreadyRemoved,
    DNSNotConfigured,
    DNSNotVerified,
    OrganizationConflict,
    OrganizationInactive,
)
from a4c_domain.fields import OrganizationMailKind
from a4c_domain.ids import organization_id

OrganizationType = Literal["provider", "partner"]
OrganizationStatus = Literal["registered", "active", "deactivated", "offboarded"]
DNSStatus = Literal["none", "configured", "verified", "removed"]
# The statuses of an organization that has ended: a bootstrap undone (``deactivated``) or
# an organization offboarded on request. Nothing but compensation is allowed then, none
# of its invitations can be accepted, and its API keys and members' rights end.
INACTIVE_STATUSES: frozenset[str] = frozenset({"deactivated", "offboarded"})


def is_inactive(status: str) -> bool:
    """Whether an organization with this status has ended (the one test for it)."""
    return status in INACTIVE_STATUSES


class Organization(DomainAggregate):
    """A tenant being onboarded. Its ID is derived from its slug: one slug, one org."""

    class Registered(DomainAggregate.Created):
        # v1 had no ``tags`` and no ``domain``; see upcast below.
        class_version = 2

        name: str
        slug: str
        org_type: str
        parent_id: UUID | None
        tags: list[str]
        domain: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["tags"] = []
            state["domain"] = None

    class DNSConfigured(DomainAggregate.Event):
        fqdn: str
        target: str
        record_id: str

    class DNSVerified(DomainAggregate.Event):
        pass

    class DNSRemoved(DomainAggregate.Event):
        # None when nothing was configured yet: the removal is still recorded, so a
        # configuration arriving late (a zombie activity attempt) cannot follow it.
        fqdn: str | None
        record_id: str | None

    class Activated(DomainAggregate.Event):
        pass

    class Deactivated(DomainAggregate.Event):
        reason: str
        failed_step: str | None

    class Offboarded(DomainAggregate.Event):
        # Not a ``Deactivated``: consumers tell an organization ended on request from a
        # bootstrap that was undone by the event's type.
        reason: str

    class InvitationIssued(DomainAggregate.Event):
        # Recorded in the same save as the invitation's own first event: deactivation
        # (and a new generation) find the organization's invitations here, and the
        # organization's version makes an invite racing a deactivation retry.
        invitation_id: UUID

    class EmailSent(DomainAggregate.Event):
        # One mail about the organization went out. No address: the deterministic
        # message id names its recipient by a hash (a4c_worker.providers.templates), so
        # a retried send finds it here and does not send again.
        kind: str
        message_id: str

    @staticmethod
    def create_id(slug: str) -> UUID:
        return organization_id(slug)

    @event(Registered)
    def __init__(
        self,
        name: str,
        slug: str,
        org_type: str,
        parent_id: UUID | None,
        tags: list[str],
        domain: str | None,
    ) -> None:
        self.name = name
        self.slug = slug
        self.org_type = org_type
        self.parent_id = parent_id
        self.tags = list(tags)
        self.domain = domain
        self.status: OrganizationStatus = "registered"
        self.dns_status: DNSStatus = "none"
        self.fqdn: str | None = None
        self.dns_target: str | None = None
        self.dns_record_id: str | None = None
        self.deactivation_reason: str | None = None
        self.failed_step: str | None = None
        # Every (fqdn, target, record_id) ever configured: a late retry of one of them
        # is recognised as already applied even after the record was removed.
        self.dns_configurations: set[tuple[str, str, str]] = set()
        # Invitations issued since this index exists (older ones are not listed).
        self.invitation_ids: set[UUID] = set()
        # Message ids of the mails sent about the organization (EmailSent).
        self.emails_sent: set[str] = set()

    # --- queries on state -------------------------------------------------------------

    @property
    def is_deactivated(self) -> bool:
        """Ended: deactivated (a bootstrap undone) or offboarded."""
        return is_inactive(self.status)

    def registration_differences(
        self,
        *,
        name: str,
        org_type: str,
        parent_id: UUID | None,
        tags: list[str],
        domain: str | None,
    ) -> dict[str, tuple[Any, Any]]:
        """Fields where a repeated registration differs from the recorded one."""
        recorded = {
            "name": self.name,
            "org_type": self.org_type,
            "parent_id": self.parent_id,
            "tags": self.tags,
            "domain": self.domain,
        }
        given = {
            "name": name,
            "org_type": org_type,
            "parent_id": parent_id,
            "tags": tags,
            "domain": domain,
        }
        return {k: (recorded[k], given[k]) for k in recorded if recorded[k] != given[k]}

    # --- commands ---------------------------------------------------------------------

    def configure_dns(self, fqdn: str, target: str, record_id: str) -> None:
        """Record the DNS record. Any configuration applied before is a no-op forever.

        Removal is a compensation and final: a late retry of the configuration that was
        removed is a no-op (it must not resurrect the record), a different one is refused.
        """
        self.require_not_deactivated("configure DNS")
        configuration = (fqdn, target, record_id)
        if self.dns_status in ("configured", "verified"):
            recorded = (self.fqdn, self.dns_target, self.dns_record_id)
            if recorded == configuration:
                return
            raise OrganizationConflict(
                f"organization {self.slug!r} already has DNS {self.fqdn} -> {self.dns_target}",
                {
                    name: (old, new)
                    for name, old, new in zip(
                        ("fqdn", "target", "record_id"), recorded, configuration, strict=True
                    )
                    if old != new
                },
            )
        if configuration in self.dns_configurations:
            return
        if self.dns_status == "removed":
            raise DNSAlreadyRemoved(
                f"organization {self.slug!r} had its DNS removed; it cannot be configured again"
            )
        self._dns_configured(fqdn=fqdn, target=target, record_id=record_id)

    def verify_dns(self) -> None:
        self.require_not_deactivated("verify DNS")
        if self.dns_status == "verified":
            return
        if self.dns_status != "configured":
            raise DNSNotConfigured(f"organization {self.slug!r} has no DNS record to verify")
        self._dns_verified()

    def remove_dns(self) -> None:
        """Compensation: allowed in any state, final, and recorded even when nothing was
        configured yet, so a late configuration can never land after it."""
        if self.dns_status == "removed":
            return
        self._dns_removed(fqdn=self.fqdn, record_id=self.dns_record_id)

    def activate(self) -> None:
        self.require_not_deactivated("activate")
        if self.status == "active":
            return
        if self.domain is not None and self.dns_status != "verified":
            raise DNSNotVerified(
                f"organization {self.slug!r} cannot be activated before its DNS is verified"
            )
        self._activated()

    def deactivate(self, reason: str, failed_step: str | None) -> None:
        """Compensation: the same deactivation again is a no-op, a different one conflicts.

        An offboarded organization has ended already: a bootstrap's compensation that
        reaches it late has nothing left to do (a no-op)."""
        if self.status == "offboarded":
            return
        if self.is_deactivated:
            recorded = (self.deactivation_reason, self.failed_step)
            if recorded == (reason, failed_step):
                return
            raise OrganizationConflict(
                f"organization {self.slug!r} was already deactivated: {self.deactivation_reason}",
                {"reason": (self.deactivation_reason, reason)}
                | (
                    {"failed_step": (self.failed_step, failed_step)}
                    if recorded[1] != failed_step
                    else {}
                ),
            )
        self._deactivated(reason=reason, failed_step=failed_step)

    def offboard(self, reason: str) -> None:
        """End the organization on request. The same offboarding again is a no-op,
        another reason conflicts; one whose bootstrap was undone (deactivated) has
        nothing to offboard (``OrganizationInactive``)."""
        if self.status == "offboarded":
            if self.deactivation_reason == reason:
                return
            raise OrganizationConflict(
                f"organization {self.slug!r} was already offboarded: {self.deactivation_reason}",
                {"reason": (self.deactivation_reason, reason)},
            )
        self.require_not_deactivated("offboard")
        self._offboarded(reason=reason)

    def record_invitation(self, invitation_id: UUID) -> None:
        """List a new invitation of this organization (the application saves both)."""
        self.require_not_deactivated("invite")
        if invitation_id in self.invitation_ids:
            return
        self._invitation_issued(invitation_id=invitation_id)

    def record_email_sent(self, kind: OrganizationMailKind, message_id: str) -> None:
        """Record a mail sent about the organization; the same message again is a no-op.

        Allowed after deactivation: the provisioning-failed and offboarded mails are
        sent once the organization is deactivated.
        """
        if message_id in self.emails_sent:
            return
        self._email_sent(kind=kind, message_id=message_id)

    def require_not_deactivated(self, action: str) -> None:
        if self.is_deactivated:
            raise OrganizationInactive(
                f"cannot {action}: organization {self.slug!r} is {self.status}"
            )

    # --- events: bodies only assign ---------------------------------------------------

    @event(DNSConfigured)
    def _dns_configured(self, fqdn: str, target: str, record_id: str) -> None:
        self.fqdn = fqdn
        self.dns_target = target
        self.dns_record_id = record_id
        self.dns_status = "configured"
        self.dns_configurations.add((fqdn, target, record_id))

    @event(DNSVerified)
    def _dns_verified(self) -> None:
        self.dns_status = "verified"

    @event(DNSRemoved)
    def _dns_removed(self, fqdn: str | None, record_id: str | None) -> None:
        self.dns_status = "removed"

    @event(Activated)
    def _activated(self) -> None:
        self.status = "active"

    @event(Deactivated)
    def _deactivated(self, reason: str, failed_step: str | None) -> None:
        self.status = "deactivated"
        self.deactivation_reason = reason
        self.failed_step = failed_step

    @event(Offboarded)
    def _offboarded(self, reason: str) -> None:
        self.status = "offboarded"
        self.deactivation_reason = reason
        self.failed_step = None

    @event(InvitationIssued)
    def _invitation_issued(self, invitation_id: UUID) -> None:
        self.invitation_ids.add(invitation_id)

    @event(EmailSent)
    def _email_sent(self, kind: str, message_id: str) -> None:
        self.emails_sent.add(message_id)
