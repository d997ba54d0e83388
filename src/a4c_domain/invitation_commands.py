"""The invitation commands of ``OnboardingApplication`` (a mixin).

Invite (superseding an address's older generations), record the mail's outcome,
re-send, accept, revoke, expire; and the queries the e-mail activity needs. Every
command and query takes the ``organization_id`` the caller acts for (a4c_domain.scope).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate
from pydantic import SecretStr

from a4c_domain import commands as c
from a4c_domain.application_base import ApplicationBase
from a4c_domain.email_domains import EmailDomainClaim, email_domain_of
from a4c_domain.errors import InvalidCommand, InvitationConflict, OrganizationInactive
from a4c_domain.identity import SignInIdentity
from a4c_domain.invitation import Invitation, superseded_reason
from a4c_domain.organization import Organization
from a4c_domain.scope import OrganizationScope
from a4c_domain.signatures import command
from a4c_domain.sso_connection import SSOConnection
from a4c_domain.views import InvitationView


def _require_future(command: str, expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise InvalidCommand(command, [{"field": "expires_at", "message": "must be in the future"}])


class InvitationCommands(ApplicationBase):
    """Invitations, each a command of a caller acting for an organization."""

    @command(c.Invite)
    def invite(
        self,
        *,
        organization_id: UUID,
        email: c.Email,
        role: c.Role,
        first_name: c.PersonName,
        last_name: c.PersonName,
        generation: int = c.FIRST_GENERATION,
        expires_at: c.AwareDatetime | None = None,
    ) -> InvitationView:
        """Invite ``email``; the same invitation again is a no-op.

        A new ``generation`` supersedes the e-mail's older pending generations: they are
        revoked (``"superseded by generation N"``) in the same save, so at most one
        generation of an address is pending. A generation older than one already issued
        is refused (``InvitationConflict``). The organization records the invitation in
        the same save (its version serialises an invite with a deactivation).
        ``expires_at`` (default: now + the TTL) must be in the future;
        ``OrganizationInactive`` once the organization is deactivated.
        """
        cmd = c.validate(
            c.Invite,
            organization_id=organization_id,
            email=email,
            role=role,
            first_name=first_name,
            last_name=last_name,
            generation=generation,
            expires_at=expires_at,
        )
        inv_id = Invitation.create_id(cmd.organization_id, cmd.email, cmd.generation)
        now = self.clock()
        expires_at = cmd.expires_at or now + self.invitation_ttl

        def decide() -> tuple[Invitation, list[Aggregate]]:
            org = self._get_organization(cmd.organization_id)
            if org.is_deactivated:
                raise OrganizationInactive(f"organization {org.slug!r} is {org.status}")
            existing = self._load(inv_id, Invitation)
            if existing is not None:
                differences = existing.invitation_differences(
                    role=cmd.role, first_name=cmd.first_name, last_name=cmd.last_name
                )
                if differences:
                    raise InvitationConflict(
                        f"{cmd.email} is already invited (generation {cmd.generation}) with "
                        f"different {', '.join(sorted(differences))}",
                        differences,
                    )
                return existing, []
            # Checked only for a new invitation: a repeat of an earlier invite is a no-op.
            _require_future("Invite", expires_at, now)
            self._refuse_older_generation(org, cmd.email, cmd.generation)
            inv = Invitation(
                organization_id=cmd.organization_id,
                email=cmd.email,
                role=cmd.role,
                first_name=cmd.first_name,
                last_name=cmd.last_name,
                generation=cmd.generation,
                token_hash=self.tokens.token_hash(inv_id, 1),
                expires_at=expires_at,
            )
            org.record_invitation(inv_id)
            superseded: list[Aggregate] = []
            for generation in range(1, cmd.generation):
                older = self._load(
                    Invitation.create_id(cmd.organization_id, cmd.email, generation), Invitation
                )
                if older is not None and older.status == "pending":
                    older.revoke(superseded_reason(cmd.generation))
                    superseded.append(older)
            return inv, [inv, org, *superseded]

        inv, position = self._save_together(f"invitation {inv_id}", decide)
        return InvitationView.of(inv, position)

    @staticmethod
    def _refuse_older_generation(org: Organization, email: str, generation: int) -> None:
        newer = [
            g
            for g in range(generation + 1, c.MAX_GENERATION + 1)
            if Invitation.create_id(org.id, email, g) in org.invitation_ids
        ]
        if newer:
            raise InvitationConflict(
                f"{email} already has a newer invitation (generation {newer[-1]}); "
                f"generation {generation} cannot be issued after it",
                {"generation": (newer[-1], generation)},
            )

    @command(c.RecordEmailSent)
    def record_email_sent(
        self,
        *,
        organization_id: OrganizationScope,
        invitation_id: UUID,
        token_generation: int,
        message_id: c.Identifier,
    ) -> InvitationView:
        """Record that the mail for ``token_generation`` went out as ``message_id``.

        ``InvitationConflict`` unless ``token_generation`` is the current one.
        """
        cmd = c.validate(
            c.RecordEmailSent,
            organization_id=organization_id,
            invitation_id=invitation_id,
            token_generation=token_generation,
            message_id=message_id,
        )
        return self._invitation_command(
            cmd, lambda i: i.record_email_sent(cmd.token_generation, cmd.message_id)
        )

    @command(c.RecordEmailFailed)
    def record_email_failed(
        self,
        *,
        organization_id: OrganizationScope,
        invitation_id: UUID,
        token_generation: int,
        reason: c.FailureReason,
    ) -> InvitationView:
        """Record that the mail for ``token_generation`` failed (``reason`` is redacted).

        ``InvitationConflict`` unless ``token_generation`` is the current one.
        """
        cmd = c.validate(
            c.RecordEmailFailed,
            organization_id=organization_id,
            invitation_id=invitation_id,
            token_generation=token_generation,
            reason=reason,
        )
        return self._invitation_command(
            cmd, lambda i: i.record_email_failed(cmd.token_generation, cmd.reason)
        )

    @command(c.ReissueToken)
    def reissue_token(
        self,
        *,
        organization_id: OrganizationScope,
        invitation_id: UUID,
        token_generation: int,
        expires_at: c.AwareDatetime | None = None,
    ) -> InvitationView:
        """Re-send: move to ``token_generation`` (the old link stops working).

        ``expires_at`` (default: now + the TTL) must be in the future.
        """
        cmd = c.validate(
            c.ReissueToken,
            organization_id=organization_id,
            invitation_id=invitation_id,
            token_generation=token_generation,
            expires_at=expires_at,
        )
        now = self.clock()
        expires_at = cmd.expires_at or now + self.invitation_ttl
        _require_future("ReissueToken", expires_at, now)
        return self._invitation_command(
            cmd,
            lambda i: i.reissue_token(
                cmd.token_generation,
                self.tokens.token_hash(cmd.invitation_id, cmd.token_generation),
                expires_at,
            ),
        )

    @command(c.AcceptInvitation)
    def accept_invitation(
        self,
        *,
        organization_id: OrganizationScope,
        invitation_id: UUID,
        token: str | SecretStr,
        user_id: c.Identifier,
        identity: SignInIdentity | None = None,
    ) -> InvitationView:
        """Accept with the token as ``user_id``, who signed in as ``identity``;
        ``OrganizationInactive`` once the organization is deactivated (checked in the same
        decision, so a racing deactivation that revoked the invitation makes this save
        lose and decide again). ``IdentityMismatch`` when ``identity``'s address is not
        the invited one; ``SSORequired`` when the organization's single sign-on covers
        the invited address and ``identity`` is not a sign-in through its provider.
        """
        cmd = c.validate(
            c.AcceptInvitation,
            organization_id=organization_id,
            invitation_id=invitation_id,
            token=token,
            user_id=user_id,
            identity=identity,
        )
        token = cmd.token.get_secret_value()

        def accept(inv: Invitation) -> None:
            org = self._load(inv.organization_id, Organization)
            active = org is not None and not org.is_deactivated
            inv.accept(
                token,
                cmd.user_id,
                self.clock(),
                organization_active=active,
                identity=cmd.identity,
                required_issuer=self._required_issuer(inv),
            )

        return self._invitation_command(cmd, accept)

    def _required_issuer(self, invitation: Invitation) -> str | None:
        """The provider the invitee must sign in through: their organization's single
        sign-on in force, when that organization verified their address's e-mail domain;
        else None. Read in the accept's decision (a racing activation is seen next time)."""
        domain = email_domain_of(invitation.email)
        claim = self._load(EmailDomainClaim.create_id(domain), EmailDomainClaim)
        if claim is None or claim.organization_id != invitation.organization_id:
            return None
        connection_id = SSOConnection.create_id(invitation.organization_id)
        connection = self._load(connection_id, SSOConnection)
        return connection.active_issuer if connection is not None else None

    @command(c.RevokeInvitation)
    def revoke_invitation(
        self, *, organization_id: OrganizationScope, invitation_id: UUID, reason: c.Reason
    ) -> InvitationView:
        """Revoke a pending invitation (a revoked one again: a no-op)."""
        cmd = c.validate(
            c.RevokeInvitation,
            organization_id=organization_id,
            invitation_id=invitation_id,
            reason=reason,
        )
        return self._invitation_command(cmd, lambda i: i.revoke(cmd.reason))

    @command(c.ExpireInvitation)
    def expire_invitation(
        self, *, organization_id: OrganizationScope, invitation_id: UUID
    ) -> InvitationView:
        """Expire a pending invitation whose time has come (else ``InvitationNotYetExpired``)."""
        cmd = c.validate(
            c.ExpireInvitation, organization_id=organization_id, invitation_id=invitation_id
        )
        return self._invitation_command(cmd, lambda i: i.expire(self.clock()))

    def get_invitation(
        self, invitation_id: UUID, organization_id: OrganizationScope
    ) -> InvitationView:
        """The invitation, if ``organization_id`` (or ``ALL_ORGANIZATIONS``) may see it."""
        return InvitationView.of(self._get_invitation(invitation_id, organization_id))

    def invitation_token(self, invitation_id: UUID, organization_id: OrganizationScope) -> str:
        """The current token of an invitation, recomputed (for the e-mail activity only)."""
        inv = self._get_invitation(invitation_id, organization_id)
        return self.tokens.token(inv.id, inv.token_generation)
