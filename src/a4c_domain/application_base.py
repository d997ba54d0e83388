"""What every command of ``OnboardingApplication`` shares: configuration, the event
store's start-up, and the load-decide-save loop.

A command loads its aggregate, decides (new events, a no-op or a typed error) and saves
with any domain claim it takes, atomically; a lost race is decided again from fresh state
and only repeated losses raise the retryable ``ConcurrencyError``
(docs/design/domain.md says why).
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
    InfrastructureFactory,
    IntegrityError,
    InternalError,
    ProgrammingError,
    Recording,
)
from eventsourcing.utils import Environment

from a4c_domain.claims import DomainClaim
from a4c_domain.commands import InvitationCommand
from a4c_domain.errors import (
    ConcurrencyError,
    ConfigurationError,
    DomainTaken,
    InvitationNotFound,
    OrganizationNotFound,
)
from a4c_domain.ids import domain_claim_id
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization
from a4c_domain.persistence import (
    DEFAULT_PERSISTENCE_MODULE,
    DEFAULT_SQLITE_DBNAME,
    PERSISTENCE_MODULE_VAR,
    SQLITE_DBNAME_VAR,
    configure_pool,
    default_to_no_password,
)
from a4c_domain.scope import OrganizationScope, in_scope
from a4c_domain.tokens import TOKEN_SECRET_VAR, TokenIssuer
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


def utc_now() -> datetime:
    return datetime.now(UTC)


def _last_position(recordings: list[Recording[UUID]]) -> int | None:
    """The notification id of the last event a save wrote (what views carry)."""
    ids = [r.notification.id for r in recordings if r.notification.id is not None]
    return max(ids) if ids else None


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


class ApplicationBase(Application[UUID]):
    """The event store, the token issuer, the clock and the save loop of the commands."""

    # eventsourcing names the events table (``a4c_events``) and the environment prefix
    # (``A4C_``) after this: a persisted name.
    name = "a4c"
    env = {
        # Embedded default: a SQLite file; production sets eventsourcing.postgres.
        PERSISTENCE_MODULE_VAR: DEFAULT_PERSISTENCE_MODULE,
        SQLITE_DBNAME_VAR: DEFAULT_SQLITE_DBNAME,
        # The lock-free insert path: writers commit in any order. The projector applies
        # only contiguous ids and passes a gap once it is proven permanent
        # (a4c_projector.eventlog.guard), so tailing it skips nothing.
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y",
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # eventsourcing names the events table after the class: a subclass (the command
        # mixins, an adapter, a test double) would silently use an empty table of its own.
        named = "name" in cls.__dict__
        super().__init_subclass__(**kwargs)
        if not named:
            cls.name = ApplicationBase.name

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

    def construct_factory(self, env: Environment) -> InfrastructureFactory:
        """eventsourcing's factory, its PostgreSQL pool given ``target_session_attrs``
        and a per-host connect timeout (a4c_domain.persistence.configure_pool)."""
        factory = super().construct_factory(env)
        configure_pool(factory, env)
        return factory

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

    # --- loading ----------------------------------------------------------------------

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

    # --- deciding and saving ----------------------------------------------------------

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

    def _invitation_command(
        self, cmd: InvitationCommand, command: Callable[[Invitation], None]
    ) -> InvitationView:
        def decide(inv: Invitation | None) -> Invitation:
            if inv is None or not in_scope(inv.organization_id, cmd.organization_id):
                raise InvitationNotFound(cmd.invitation_id)
            command(inv)
            return inv

        inv, position = self._execute(cmd.invitation_id, Invitation, decide)
        return InvitationView.of(inv, position)

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
