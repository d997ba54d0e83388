"""``OnboardingApplication``: the library's entry point, one method per command.

Every command method:

1. validates its input into a command model (``InvalidCommand`` before anything else);
2. loads the aggregate by its deterministic ID and decides: new events, a no-op (the
   same command again returns the same result), or a typed error (a conflict or a
   broken rule);
3. saves; if another writer got there first (the store's uniqueness on
   ``(originator_id, originator_version)``), it reloads and decides again, so a lost
   race converges to the no-op or the conflict, and only after repeated losses raises
   the retryable ``ConcurrencyError``.

Configuration comes only from the ``env`` mapping given to the constructor (never from
``os.environ`` directly): entry points decide what the environment is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    InternalError,
    ProgrammingError,
)
from eventsourcing.utils import Environment

from a4c_domain import commands as c
from a4c_domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    InvitationConflict,
    InvitationNotFound,
    OrganizationConflict,
    OrganizationInactive,
    OrganizationNotFound,
)
from a4c_domain.ids import organization_id
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization
from a4c_domain.tokens import TokenIssuer
from a4c_domain.views import InvitationView, OrganizationView

TOKEN_SECRET_VAR = "A4C_TOKEN_SECRET"  # noqa: S105 - the variable's name, not a secret
INVITATION_TTL_VAR = "A4C_INVITATION_TTL_SECONDS"
DEFAULT_INVITATION_TTL = timedelta(days=7)
SAVE_ATTEMPTS = 4
STARTUP_ATTEMPTS = 5

TAgg = TypeVar("TAgg", bound=Aggregate)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class OnboardingApplication(Application[UUID]):
    """Organizations and invitations, event-sourced.

    ``env`` is the eventsourcing environment (``PERSISTENCE_MODULE``, ``SQLITE_DBNAME``,
    ``POSTGRES_*``, ``CIPHER_TOPIC``/``CIPHER_KEY``...) plus ``A4C_TOKEN_SECRET`` (≥ 32
    bytes; or pass ``token_secret``) and optionally ``A4C_INVITATION_TTL_SECONDS``.
    """

    name = "a4c"
    env = {
        # Embedded default: a SQLite file; production sets eventsourcing.postgres.
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": "a4c-events.sqlite",
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
        ttl = self.env.get(INVITATION_TTL_VAR)
        try:
            self.invitation_ttl = timedelta(seconds=int(ttl)) if ttl else DEFAULT_INVITATION_TTL
        except ValueError:
            raise ConfigurationError(f"{INVITATION_TTL_VAR} must be whole seconds") from None

    def construct_env(self, name: str, env: Mapping[str, str] | None = None) -> Environment:
        """Class defaults overlaid with ``env`` only: no implicit ``os.environ``."""
        merged = dict(type(self).env)
        merged.update(env or {})
        return Environment(name, merged)

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

    def register_organization(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.RegisterOrganization, **fields)
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
            organization_id(cmd.slug), Organization, decide, assume_new=True
        )
        return OrganizationView.of(org, position)

    def configure_dns(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.ConfigureDNS, **fields)
        return self._organization_command(
            cmd.organization_id, lambda o: o.configure_dns(cmd.fqdn, cmd.target, cmd.record_id)
        )

    def verify_dns(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.VerifyDNS, **fields)
        return self._organization_command(cmd.organization_id, Organization.verify_dns)

    def remove_dns(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.RemoveDNS, **fields)
        return self._organization_command(cmd.organization_id, Organization.remove_dns)

    def activate(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.ActivateOrganization, **fields)
        return self._organization_command(cmd.organization_id, Organization.activate)

    def deactivate(self, **fields: Any) -> OrganizationView:
        cmd = c.validate(c.DeactivateOrganization, **fields)
        return self._organization_command(
            cmd.organization_id, lambda o: o.deactivate(cmd.reason, cmd.failed_step)
        )

    def get_organization(self, organization_id: UUID) -> OrganizationView:
        return OrganizationView.of(self._get_organization(organization_id))

    def get_organization_by_slug(self, slug: str) -> OrganizationView:
        cmd = c.validate(c.RegisterOrganization, name="-", slug=slug, org_type="provider")
        try:
            return self.get_organization(organization_id(cmd.slug))
        except OrganizationNotFound:
            raise OrganizationNotFound(cmd.slug) from None  # named as the caller named it

    # --- invitations ------------------------------------------------------------------

    def invite(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.Invite, **fields)
        org = self._get_organization(cmd.organization_id)
        if org.is_deactivated:
            raise OrganizationInactive(f"organization {org.slug!r} is deactivated")
        inv_id = Invitation.create_id(cmd.organization_id, cmd.email, cmd.generation)
        expires_at = cmd.expires_at or self.clock() + self.invitation_ttl

        def decide(inv: Invitation | None) -> Invitation | None:
            if inv is None:
                return Invitation(
                    organization_id=cmd.organization_id,
                    email=cmd.email,
                    role=cmd.role,
                    first_name=cmd.first_name,
                    last_name=cmd.last_name,
                    generation=cmd.generation,
                    token_hash=self.tokens.token_hash(inv_id, 1),
                    expires_at=expires_at,
                )
            differences = inv.invitation_differences(
                role=cmd.role, first_name=cmd.first_name, last_name=cmd.last_name
            )
            if differences:
                raise InvitationConflict(
                    f"{cmd.email} is already invited (generation {cmd.generation}) with "
                    f"different {', '.join(sorted(differences))}",
                    differences,
                )
            return None

        inv, position = self._execute(inv_id, Invitation, decide, assume_new=True)
        return InvitationView.of(inv, position)

    def record_email_sent(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.RecordEmailSent, **fields)
        return self._invitation_command(
            cmd.invitation_id, lambda i: i.record_email_sent(cmd.token_generation, cmd.message_id)
        )

    def record_email_failed(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.RecordEmailFailed, **fields)
        return self._invitation_command(
            cmd.invitation_id, lambda i: i.record_email_failed(cmd.token_generation, cmd.reason)
        )

    def reissue_token(self, **fields: Any) -> InvitationView:
        """Re-send: move to ``token_generation`` (the old link stops working)."""
        cmd = c.validate(c.ReissueToken, **fields)
        expires_at = cmd.expires_at or self.clock() + self.invitation_ttl
        return self._invitation_command(
            cmd.invitation_id,
            lambda i: i.reissue_token(
                cmd.token_generation,
                self.tokens.token_hash(cmd.invitation_id, cmd.token_generation),
                expires_at,
            ),
        )

    def accept_invitation(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.AcceptInvitation, **fields)
        token = cmd.token.get_secret_value()
        return self._invitation_command(
            cmd.invitation_id, lambda i: i.accept(token, cmd.user_id, self.clock())
        )

    def revoke_invitation(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.RevokeInvitation, **fields)
        return self._invitation_command(cmd.invitation_id, lambda i: i.revoke(cmd.reason))

    def expire_invitation(self, **fields: Any) -> InvitationView:
        cmd = c.validate(c.ExpireInvitation, **fields)
        return self._invitation_command(cmd.invitation_id, lambda i: i.expire(self.clock()))

    def get_invitation(self, invitation_id: UUID) -> InvitationView:
        return InvitationView.of(self._get_invitation(invitation_id))

    def invitation_token(self, invitation_id: UUID) -> str:
        """The current token of an invitation, recomputed (for the e-mail activity only)."""
        inv = self._get_invitation(invitation_id)
        return self.tokens.token(inv.id, inv.token_generation)

    # --- plumbing ---------------------------------------------------------------------

    def _get_organization(self, org_id: UUID) -> Organization:
        org = self._load(org_id, Organization)
        if org is None:
            raise OrganizationNotFound(org_id)
        return org

    def _get_invitation(self, inv_id: UUID) -> Invitation:
        inv = self._load(inv_id, Invitation)
        if inv is None:
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
        self, org_id: UUID, command: Callable[[Organization], None]
    ) -> OrganizationView:
        def decide(org: Organization | None) -> Organization:
            if org is None:
                raise OrganizationNotFound(org_id)
            command(org)
            return org

        org, position = self._execute(org_id, Organization, decide)
        return OrganizationView.of(org, position)

    def _invitation_command(
        self, inv_id: UUID, command: Callable[[Invitation], None]
    ) -> InvitationView:
        def decide(inv: Invitation | None) -> Invitation:
            if inv is None:
                raise InvitationNotFound(inv_id)
            command(inv)
            return inv

        inv, position = self._execute(inv_id, Invitation, decide)
        return InvitationView.of(inv, position)

    def _execute(
        self,
        aggregate_id: UUID,
        kind: type[TAgg],
        decide: Callable[[TAgg | None], TAgg | None],
        *,
        assume_new: bool = False,
    ) -> tuple[TAgg, int | None]:
        """Load, decide, save; on a lost race reload and decide again.

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
            if not decided.pending_events:
                return decided, None
            try:
                recordings = self.save(decided)
            except IntegrityError:
                continue
            ids = [r.notification.id for r in recordings if r.notification.id is not None]
            return decided, max(ids) if ids else None
        raise ConcurrencyError(
            f"{kind.__name__} {aggregate_id} kept changing under this command; retry it"
        )
