"""The organization and domain commands of ``OnboardingApplication`` (a mixin).

Registration, the DNS record's life, activation and deactivation, and the domain
claims: who holds a name, and what an organization may remove under it.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from a4c_domain import commands as c
from a4c_domain.application_base import ApplicationBase
from a4c_domain.claims import DomainClaim
from a4c_domain.errors import OrganizationConflict, OrganizationInactive, OrganizationNotFound
from a4c_domain.ids import domain_claim_id, organization_id
from a4c_domain.invitation import ORGANIZATION_DEACTIVATED, ORGANIZATION_OFFBOARDED, Invitation
from a4c_domain.organization import Organization
from a4c_domain.signatures import command
from a4c_domain.views import OrganizationView

# What an organization may do with its DNS record under a name (OrganizationCommands.dns_removal).
DNSRemoval = Literal["own", "unclaimed", "not_own"]


class OrganizationCommands(ApplicationBase):
    """Organizations and the domains they claim."""

    @command(c.RegisterOrganization)
    def register_organization(
        self,
        *,
        name: c.OrganizationName,
        slug: c.Slug,
        org_type: c.OrganizationType,
        parent_id: UUID | None = None,
        tags: c.Tags = [],  # noqa: B006 - never mutated: validation builds a new list
        domain: c.Hostname | None = None,
    ) -> OrganizationView:
        """Register the organization ``slug`` (its id derives from the slug).

        The same registration again is a no-op; other details under the same slug are an
        ``OrganizationConflict``. ``parent_id``: ``OrganizationNotFound`` if unknown,
        ``OrganizationInactive`` if deactivated. ``domain`` is claimed in the same save
        (``DomainTaken`` if another organization holds it).
        """
        cmd = c.validate(
            c.RegisterOrganization,
            name=name,
            slug=slug,
            org_type=org_type,
            parent_id=parent_id,
            tags=tags,
            domain=domain,
        )
        if cmd.parent_id is not None:
            parent = self._get_organization(cmd.parent_id)
            if parent.is_deactivated:
                raise OrganizationInactive(
                    f"parent organization {parent.slug!r} is {parent.status}"
                )

        def decide(org: Organization | None) -> Organization | None:
            if org is None:
                return Organization(
                    name=cmd.name,
                    slug=cmd.slug,
                    org_type=cmd.org_type,
                    parent_id=cmd.parent_id,
                    tags=cmd.tags,
                    domain=cmd.domain,
                )
            differences = org.registration_differences(
                name=cmd.name,
                org_type=cmd.org_type,
                parent_id=cmd.parent_id,
                tags=cmd.tags,
                domain=cmd.domain,
            )
            if differences:
                raise OrganizationConflict(
                    f"slug {cmd.slug!r} is already registered with different "
                    f"{', '.join(sorted(differences))}",
                    differences,
                )
            return None

        org, position = self._execute(
            organization_id(cmd.slug), Organization, decide, assume_new=True, claim=cmd.domain
        )
        return OrganizationView.of(org, position)

    @command(c.ClaimDomain)
    def claim_domain(self, *, organization_id: UUID, fqdn: c.Hostname) -> OrganizationView:
        """Take ``fqdn`` for the organization before publishing anything under it.

        A no-op when the organization holds it already (``Registered`` with that domain
        claims it); ``DomainTaken`` when another one does. Claims are never released.
        """
        cmd = c.validate(c.ClaimDomain, organization_id=organization_id, fqdn=fqdn)
        return self._organization_command(
            cmd.organization_id,
            lambda o: o.require_not_deactivated(f"claim {cmd.fqdn}"),
            claim=cmd.fqdn,
        )

    def domain_owner(self, fqdn: str) -> UUID | None:
        """The organization that holds ``fqdn`` (any spelling of it), or None."""
        cmd = c.validate(c.DomainName, fqdn=fqdn)
        claim = self._load(domain_claim_id(cmd.fqdn), DomainClaim)
        return None if claim is None else claim.organization_id

    def dns_removal(self, organization_id: UUID, fqdn: str) -> DNSRemoval:
        """May ``organization_id`` delete its record under ``fqdn``? The one rule every
        compensation follows (the worker's ``remove_dns``, ``a4c entities cleanup``):

        - ``"own"``: it holds the domain: delete its exact record, record the removal;
        - ``"unclaimed"``: nobody holds it, but this organization took it (before 0.3.0
          there were no claims): delete nothing — another old organization may share
          the name — and record nothing, until the claim backfill has run;
        - ``"not_own"``: another organization holds it, or this one never took it:
          delete nothing; recording the removal is harmless.
        """
        cmd = c.validate(c.DomainName, fqdn=fqdn)
        owner = self.domain_owner(cmd.fqdn)
        if owner == organization_id:
            return "own"
        if owner is None:
            org = self._load(organization_id, Organization)
            if org is not None and cmd.fqdn in (org.domain, org.fqdn):
                return "unclaimed"
        return "not_own"

    @command(c.ConfigureDNS)
    def configure_dns(
        self,
        *,
        organization_id: UUID,
        fqdn: c.Hostname,
        target: c.Hostname,
        record_id: c.Identifier,
    ) -> OrganizationView:
        """Record that ``fqdn`` points at ``target`` (the provider's ``record_id``).

        Claims ``fqdn`` in the same save (``DomainTaken`` if another organization holds
        it). Any configuration recorded before is a no-op; a different one while one is
        configured is an ``OrganizationConflict``, any after a removal ``DNSAlreadyRemoved``;
        ``OrganizationInactive`` once deactivated.
        """
        cmd = c.validate(
            c.ConfigureDNS,
            organization_id=organization_id,
            fqdn=fqdn,
            target=target,
            record_id=record_id,
        )
        return self._organization_command(
            cmd.organization_id,
            lambda o: o.configure_dns(cmd.fqdn, cmd.target, cmd.record_id),
            claim=cmd.fqdn,
        )

    @command(c.VerifyDNS)
    def verify_dns(self, *, organization_id: UUID) -> OrganizationView:
        """Record that the configured record is served (``DNSNotConfigured`` if none is)."""
        cmd = c.validate(c.VerifyDNS, organization_id=organization_id)
        return self._organization_command(cmd.organization_id, Organization.verify_dns)

    @command(c.RemoveDNS)
    def remove_dns(self, *, organization_id: UUID) -> OrganizationView:
        """Compensation: record the DNS removal, in any state and final (again: a no-op)."""
        cmd = c.validate(c.RemoveDNS, organization_id=organization_id)
        return self._organization_command(cmd.organization_id, Organization.remove_dns)

    @command(c.ActivateOrganization)
    def activate(self, *, organization_id: UUID) -> OrganizationView:
        """Activate; ``DNSNotVerified`` while an organization with a domain lacks it."""
        cmd = c.validate(c.ActivateOrganization, organization_id=organization_id)
        return self._organization_command(cmd.organization_id, Organization.activate)

    @command(c.DeactivateOrganization)
    def deactivate(
        self,
        *,
        organization_id: UUID,
        reason: c.Reason,
        failed_step: c.StepName | None = None,
    ) -> OrganizationView:
        """Deactivate, revoking the organization's pending invitations in the same save.

        Every caller (the saga's compensation, an operator, a library user) gets the
        revocations, reason ``"organization deactivated"``; a workflow revoking them
        afterwards finds them revoked, which is a no-op. Invitations issued before the
        organization kept its index (``Organization.invitation_ids``) are not listed, so
        they stay pending; accept refuses them all the same.
        """
        cmd = c.validate(
            c.DeactivateOrganization,
            organization_id=organization_id,
            reason=reason,
            failed_step=failed_step,
        )

        def decide() -> tuple[Organization, list[Aggregate]]:
            org = self._get_organization(cmd.organization_id)
            org.deactivate(cmd.reason, cmd.failed_step)
            return org, self._ending(org, ORGANIZATION_DEACTIVATED)

        org, position = self._save_together(f"organization {cmd.organization_id}", decide)
        return OrganizationView.of(org, position)

    @command(c.RecordOrganizationEmailSent)
    def record_organization_email_sent(
        self,
        *,
        organization_id: UUID,
        kind: c.OrganizationMailKind,
        message_id: c.Identifier,
    ) -> OrganizationView:
        """Record a mail sent about the organization (welcome, provisioning failed,
        offboarded); the same ``message_id`` again is a no-op. Allowed after
        deactivation: the failure and offboarding mails follow it."""
        cmd = c.validate(
            c.RecordOrganizationEmailSent,
            organization_id=organization_id,
            kind=kind,
            message_id=message_id,
        )
        return self._organization_command(
            cmd.organization_id, lambda o: o.record_email_sent(cmd.kind, cmd.message_id)
        )

    def organization_email_sent(self, organization_id: UUID, message_id: str) -> bool:
        """Whether the mail ``message_id`` about the organization was recorded as sent
        (``OrganizationNotFound`` for an unknown organization)."""
        return message_id in self._get_organization(organization_id).emails_sent

    @command(c.OffboardOrganization)
    def offboard(self, *, organization_id: UUID, reason: c.Reason) -> OrganizationView:
        """End an organization on request (``Offboarded``), revoking its pending
        invitations in the same save (reason ``"organization offboarded"``), as
        :meth:`deactivate` does. The same offboarding again is a no-op, another reason an
        ``OrganizationConflict``; ``OrganizationInactive`` for one whose bootstrap was
        undone (deactivated: nothing to offboard)."""
        cmd = c.validate(c.OffboardOrganization, organization_id=organization_id, reason=reason)

        def decide() -> tuple[Organization, list[Aggregate]]:
            org = self._get_organization(cmd.organization_id)
            org.offboard(cmd.reason)
            return org, self._ending(org, ORGANIZATION_OFFBOARDED)

        org, position = self._save_together(f"organization {cmd.organization_id}", decide)
        return OrganizationView.of(org, position)

    def _ending(self, org: Organization, revoke_reason: str) -> list[Aggregate]:
        """What ending ``org`` saves: itself and its pending invitations, revoked; nothing
        when the command was a no-op (already done)."""
        if not org.pending_events:
            return []
        ended: list[Aggregate] = [org]
        for inv_id in sorted(org.invitation_ids):
            inv = self._load(inv_id, Invitation)
            if inv is not None and inv.status == "pending":
                inv.revoke(revoke_reason)
                ended.append(inv)
        return ended

    def get_organization(self, organization_id: UUID) -> OrganizationView:
        return OrganizationView.of(self._get_organization(organization_id))

    def get_organization_by_slug(self, slug: str) -> OrganizationView:
        cmd = c.validate(c.RegisterOrganization, name="x", slug=slug, org_type="provider")
        try:
            return self.get_organization(organization_id(cmd.slug))
        except OrganizationNotFound:
            raise OrganizationNotFound(cmd.slug) from None  # named as the caller named it
