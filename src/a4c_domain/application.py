"""``OnboardingApplication``: the library's entry point, one method per command.

Every command method:

1. takes typed keyword-only parameters (named and typed as its command model's fields,
   so mypy checks a caller) and validates them into that model (``InvalidCommand``,
   naming every bad field, before anything else; an untyped caller's unknown or missing
   keyword is refused the same way, see a4c_domain.signatures);
2. loads the aggregate by its deterministic ID and decides: new events, a no-op (the
   same command again returns the same result), or a typed error (a conflict or a
   broken rule);
3. saves — together with the claim on a domain the command takes, in one atomic
   write (``DomainTaken`` if another organization holds it); if another writer got
   there first (the store's uniqueness on ``(originator_id, originator_version)``), it
   reloads and decides again, so a lost race converges to the no-op or the conflict,
   and only after repeated losses raises the retryable ``ConcurrencyError``.

Configuration comes only from the ``env`` mapping given to the constructor (never from
``os.environ`` directly): entry points decide what the environment is.

Why one long module: it is the library's whole public surface, read in one place, and
each command spells out its typed parameters and what it raises (a split by aggregate,
with the save-and-retry plumbing in a base class of its own, is the next step if it grows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    InternalError,
    ProgrammingError,
    Recording,
)
from eventsourcing.utils import Environment
from pydantic import SecretStr

from a4c_domain import commands as c
from a4c_domain.claims import DomainClaim
from a4c_domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    DomainTaken,
    InvalidCommand,
    InvitationConflict,
    InvitationNotFound,
    OrganizationConflict,
    OrganizationInactive,
    OrganizationNotFound,
)
from a4c_domain.ids import domain_claim_id, organization_id
from a4c_domain.invitation import ORGANIZATION_DEACTIVATED, Invitation, superseded_reason
from a4c_domain.organization import Organization
from a4c_domain.persistence import (
    DEFAULT_PERSISTENCE_MODULE,
    DEFAULT_SQLITE_DBNAME,
    PERSISTENCE_MODULE_VAR,
    SQLITE_DBNAME_VAR,
    default_to_no_password,
)
from a4c_domain.scope import OrganizationScope, in_scope
from a4c_domain.signatures import command
from a4c_domain.tokens import TOKEN_SECRET_VAR as TOKEN_SECRET_VAR  # still importable here
from a4c_domain.tokens import TokenIssuer
from a4c_domain.views import InvitationView, OrganizationView

INVITATION_TTL_VAR = "A4C_INVITATION_TTL_SECONDS"
DEFAULT_INVITATION_TTL = timedelta(days=7)
# The longest an invitation may live; a larger value is a mistake, not a wish (and one
# past datetime's range would fail every invite with an OverflowError).
MAX_INVITATION_TTL = timedelta(days=365)
SAVE_ATTEMPTS = 4
STARTUP_ATTEMPTS = 5

TAgg = TypeVar("TAgg", bound=Aggregate)
Clock = Callable[[], datetime]
# What an organization may do with its DNS record under a name (OnboardingApplication.dns_removal).
DNSRemoval = Literal["own", "unclaimed", "not_own"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _last_position(recordings: list[Recording[UUID]]) -> int | None:
    """The notification id of the last event a save wrote (what views carry)."""
    ids = [r.notification.id for r in recordings if r.notification.id is not None]
    return max(ids) if ids else None


def _require_future(command: str, expires_at: datetime, now: datetime) -> None:
    if expires_at <= now:
        raise InvalidCommand(command, [{"field": "expires_at", "message": "must be in the future"}])


def invitation_ttl(value: str | None) -> timedelta:
    """``A4C_INVITATION_TTL_SECONDS`` (whole seconds, 1 s to a year), or the default."""
    if not value:
        return DEFAULT_INVITATION_TTL
    limit = int(MAX_INVITATION_TTL.total_seconds())
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if not 0 < seconds <= limit:
        raise ConfigurationError(
            f"{INVITATION_TTL_VAR} must be whole seconds from 1 to {limit} (a year)"
        )
    return timedelta(seconds=seconds)


class OnboardingApplication(Application[UUID]):
    """Organizations and invitations, event-sourced.

    ``env`` is the eventsourcing environment (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
    ``POSTGRES_*``, ``CIPHER_TOPIC``/``CIPHER_KEY``...; no ``POSTGRES_PASSWORD``: none,
    as with trust auth) plus ``A4C_TOKEN_SECRET`` (≥ 32
    bytes; or pass ``token_secret``) and optionally ``A4C_INVITATION_TTL_SECONDS``.

    Invitation commands and queries take the ``organization_id`` the caller acts for:
    the invitation's organization, or ``ALL_ORGANIZATIONS``; for any other organization
    the invitation is ``InvitationNotFound``, as one never issued (a4c_domain.scope).
    """

    name = "a4c"
    env = {
        # Embedded default: a SQLite file; production sets eventsourcing.postgres.
        PERSISTENCE_MODULE_VAR: DEFAULT_PERSISTENCE_MODULE,
        SQLITE_DBNAME_VAR: DEFAULT_SQLITE_DBNAME,
        # The lock-free insert path; the projector reads only below the xmin horizon,
        # which is what makes out-of-order commits safe to tail.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # eventsourcing names the events table after the class: a subclass (an adapter,
        # a test double) would silently read and write an empty table of its own.
        named = "name" in cls.__dict__
        super().__init_subclass__(**kwargs)
        if not named:
            cls.name = OnboardingApplication.name

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        token_secret: bytes | str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(dict(env or {}))
        secret = token_secret if token_secret is not None else self.env.get(TOKEN_SECRET_VAR)
        if not secret:
            raise ConfigurationError(f"{TOKEN_SECRET_VAR} is not set")
        self.tokens = TokenIssuer(secret)
        self.clock = clock
        self.invitation_ttl = invitation_ttl(self.env.get(INVITATION_TTL_VAR))

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """Class defaults overlaid with ``env`` only: no implicit ``os.environ``."""
        merged = dict(type(self).env)
        merged.update(env or {})
        environment = Environment(name, merged)
        default_to_no_password(environment)
        return environment

    def construct_recorder(self) -> ApplicationRecorder:
        """The recorder, creating its tables; retried when another process does the same.

        Pods starting together on an empty PostgreSQL schema race in eventsourcing's
        ``CREATE TABLE IF NOT EXISTS`` / ``CREATE TYPE`` / ``CREATE OR REPLACE FUNCTION``:
        the loser gets "tuple concurrently updated" (InternalError), a duplicate
        ``pg_type`` key (IntegrityError) or "relation ... already exists"
        (ProgrammingError: both passed the IF NOT EXISTS check before either committed).
        The DDL is idempotent, so trying again settles it.
        """
        for attempt in range(1, STARTUP_ATTEMPTS + 1):
            try:
                return super().construct_recorder()
            except (InternalError, IntegrityError, ProgrammingError) as exc:
                lost_race = not isinstance(exc, ProgrammingError) or "already exists" in str(exc)
                if not lost_race or attempt == STARTUP_ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- organizations ----------------------------------------------------------------

    @command(c.RegisterOrganization)
    def register_organization(
        self,
        *,
        name: c.Name,
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
                raise OrganizationInactive(f"parent organization {parent.slug!r} is deactivated")

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
            if not org.pending_events:  # the same deactivation again: already done
                return org, []
            ended: list[Aggregate] = [org]
            for inv_id in sorted(org.invitation_ids):
                inv = self._load(inv_id, Invitation)
                if inv is not None and inv.status == "pending":
                    inv.revoke(ORGANIZATION_DEACTIVATED)
                    ended.append(inv)
            return org, ended

        org, position = self._save_together(f"organization {cmd.organization_id}", decide)
        return OrganizationView.of(org, position)

    def get_organization(self, organization_id: UUID) -> OrganizationView:
        return OrganizationView.of(self._get_organization(organization_id))

    def get_organization_by_slug(self, slug: str) -> OrganizationView:
        cmd = c.validate(c.RegisterOrganization, name="-", slug=slug, org_type="provider")
        try:
            return self.get_organization(organization_id(cmd.slug))
        except OrganizationNotFound:
            raise OrganizationNotFound(cmd.slug) from None  # named as the caller named it

    # --- invitations ------------------------------------------------------------------

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
                raise OrganizationInactive(f"organization {org.slug!r} is deactivated")
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
    ) -> InvitationView:
        """Accept with the token; ``OrganizationInactive`` once the organization is
        deactivated (checked in the same decision, so a racing deactivation that revoked
        the invitation makes this save lose and decide again).
        """
        cmd = c.validate(
            c.AcceptInvitation,
            organization_id=organization_id,
            invitation_id=invitation_id,
            token=token,
            user_id=user_id,
        )
        token = cmd.token.get_secret_value()

        def accept(inv: Invitation) -> None:
            org = self._load(inv.organization_id, Organization)
            active = org is not None and not org.is_deactivated
            inv.accept(token, cmd.user_id, self.clock(), organization_active=active)

        return self._invitation_command(cmd, accept)

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

    # --- plumbing ---------------------------------------------------------------------

    def _get_organization(self, org_id: UUID) -> Organization:
        org = self._load(org_id, Organization)
        if org is None:
            raise OrganizationNotFound(org_id)
        return org

    def _get_invitation(self, inv_id: UUID, scope: OrganizationScope) -> Invitation:
        inv = self._load(inv_id, Invitation)
        # Another tenant's invitation is reported exactly like one never issued.
        if inv is None or not in_scope(inv.organization_id, scope):
            raise InvitationNotFound(inv_id)
        return inv

    def _load(self, aggregate_id: UUID, kind: type[TAgg]) -> TAgg | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, kind):
            return None
        return aggregate

    def _organization_command(
        self,
        org_id: UUID,
        command: Callable[[Organization], None],
        *,
        claim: str | None = None,
    ) -> OrganizationView:
        def decide(org: Organization | None) -> Organization:
            if org is None:
                raise OrganizationNotFound(org_id)
            command(org)
            return org

        org, position = self._execute(org_id, Organization, decide, claim=claim)
        return OrganizationView.of(org, position)

    def _claims(self, owner: UUID, fqdn: str | None) -> list[DomainClaim]:
        """The claim to save with ``owner``'s events: none if it holds ``fqdn`` already."""
        if fqdn is None:
            return []
        claim = self._load(domain_claim_id(fqdn), DomainClaim)
        if claim is None:
            return [DomainClaim(fqdn=fqdn, organization_id=owner)]
        if claim.organization_id != owner:
            raise DomainTaken(fqdn)
        return []

    def _invitation_command(
        self, cmd: c.InvitationCommand, command: Callable[[Invitation], None]
    ) -> InvitationView:
        def decide(inv: Invitation | None) -> Invitation:
            if inv is None or not in_scope(inv.organization_id, cmd.organization_id):
                raise InvitationNotFound(cmd.invitation_id)
            command(inv)
            return inv

        inv, position = self._execute(cmd.invitation_id, Invitation, decide)
        return InvitationView.of(inv, position)

    def _save_together(
        self, what: str, decide: Callable[[], tuple[TAgg, list[Aggregate]]]
    ) -> tuple[TAgg, int | None]:
        """Decide (loading what it needs), then save every changed aggregate atomically;
        on a lost race (any of them) decide again from fresh state."""
        for _ in range(SAVE_ATTEMPTS):
            result, changed = decide()
            changed = [a for a in changed if a.pending_events]
            if not changed:
                return result, None
            try:
                recordings = self.save(*changed)
            except IntegrityError:
                continue
            return result, _last_position(recordings)
        raise ConcurrencyError(f"{what} kept changing under this command; retry it")

    def _execute(
        self,
        aggregate_id: UUID,
        kind: type[TAgg],
        decide: Callable[[TAgg | None], TAgg | None],
        *,
        assume_new: bool = False,
        claim: str | None = None,
    ) -> tuple[TAgg, int | None]:
        """Load, decide, save; on a lost race reload and decide again.

        ``claim``: a domain the decided aggregate takes; its claim (if not held yet) is
        saved in the same atomic write, so the store's uniqueness on the claim's id
        settles a race between organizations, and a refusal stores nothing.

        ``assume_new`` (create commands): first try to save without reading, since
        creating is the common case and the store's uniqueness on (id, version 1)
        catches an existing aggregate just as well; only then load and re-decide. That
        halves the round trips of a first registration.
        """
        skip_load = assume_new
        for _ in range(SAVE_ATTEMPTS + int(assume_new)):
            current = None if skip_load else self._load(aggregate_id, kind)
            skip_load = False
            decided = decide(current)
            if decided is None:  # no-op: the command was already applied
                assert current is not None
                return current, None
            claims = self._claims(decided.id, claim)
            if not decided.pending_events and not claims:
                return decided, None
            try:
                recordings = self.save(decided, *claims)
            except IntegrityError:
                continue
            return decided, _last_position(recordings)
        raise ConcurrencyError(
            f"{kind.__name__} {aggregate_id} kept changing under this command; retry it"
        )
