"""Claim the domains organizations took before claims existed (the upgrade to 0.3.0).

Releases before 0.3.0 stored ``Organization.Registered`` with a domain, and
``Organization.DNSConfigured``, without a :class:`~a4c_domain.claims.DomainClaim`. Such
a domain has no owner: another organization can still take it, and its own
organization's DNS removal leaves the record (removal acts only under a domain held).
:func:`backfill_domain_claims` gives each such domain to the organization that took it
first, in notification-log order (the order the store numbered their events).

* **Oldest first.** The log is read once, in order; an organization's first event
  taking a domain is where it asks for it. Where two old organizations took one domain,
  the earlier one gets the claim and the later one is a ``conflict`` naming the
  holder; claims are never moved, so running again reports it again.
* **Idempotent.** A domain its organization already holds is ``already_held``; a second
  run writes nothing.
* **Safe while the system runs.** A claim is saved exactly as a registration saves
  one (version 1 of the claim's aggregate), so the store's uniqueness decides a race
  with a new registration; the loser here is reported as a ``conflict`` and the run goes
  on. Run it once every writer runs 0.3.0: an older writer still running could take a
  domain without a claim after the backfill has passed it.
* **Bounded memory.** The log is read in pages of ``page_size`` events of the two
  domain-taking types; each organization's earlier state is loaded from its own stream
  when needed. Only a dry run remembers something across pages: the domains it would
  have claimed (a claim it does not write), so that it reports the same conflicts.
* **Deactivated organizations keep their domain**, as with claims taken since 0.3.0: a
  claim is never released, so a record whose owner is gone cannot be adopted.

Only the library's API is used (the recorder's notification selection, the mapper, the
repository and ``save``), so this runs wherever an :class:`OnboardingApplication` opens.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict

from a4c_domain import commands as c
from a4c_domain.application import OnboardingApplication
from a4c_domain.claims import DomainClaim
from a4c_domain.errors import InvalidCommand, NotFound
from a4c_domain.organization import Organization

DEFAULT_PAGE_SIZE = 500
# The events by which an organization takes a domain (their topics never change).
TAKING_TOPICS = (get_topic(Organization.Registered), get_topic(Organization.DNSConfigured))

Outcome = Literal["claimed", "would_claim", "already_held", "conflict", "invalid"]


class ClaimOutcome(BaseModel):
    """What the backfill did about one organization's domain.

    ``fqdn`` is the normalised name (as stored, for ``invalid``); ``notification_id`` is
    the event by which the organization first took it; ``owner_*`` name the holder of a
    ``conflict``; ``reason`` says why a stored name is ``invalid``.
    """

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    fqdn: str
    organization_id: UUID
    slug: str
    notification_id: int
    owner_id: UUID | None = None
    owner_slug: str | None = None
    reason: str | None = None


class ClaimSummary(BaseModel):
    """How many of each outcome one run had."""

    model_config = ConfigDict(frozen=True)

    claimed: int = 0
    would_claim: int = 0
    already_held: int = 0
    conflicts: int = 0
    invalid: int = 0

    @property
    def settled(self) -> bool:
        """Every organization holds the domains it took (or would, after a dry run)."""
        return self.conflicts == 0 and self.invalid == 0

    @classmethod
    def of(cls, outcomes: Iterable[ClaimOutcome]) -> ClaimSummary:
        counts = Counter(o.outcome for o in outcomes)
        return cls(
            claimed=counts["claimed"],
            would_claim=counts["would_claim"],
            already_held=counts["already_held"],
            conflicts=counts["conflict"],
            invalid=counts["invalid"],
        )


@dataclass(frozen=True)
class _Taking:
    """An organization's first event taking the domain ``stored`` (spelled as stored)."""

    notification_id: int
    organization_id: UUID
    slug: str
    stored: str


def backfill_domain_claims(
    app: OnboardingApplication, *, dry_run: bool = False, page_size: int = DEFAULT_PAGE_SIZE
) -> Iterator[ClaimOutcome]:
    """Claim every domain an organization took without a claim; yield one outcome each.

    One outcome per (organization, domain), at the organization's first event taking it,
    in notification order. ``dry_run`` writes nothing and answers ``would_claim``.
    Outcomes are yielded as the log is read, so a caller can report them as they come.
    """
    if page_size < 1:
        raise InvalidCommand(
            "backfill_domain_claims", [{"field": "page_size", "message": "must be at least 1"}]
        )
    planned: dict[str, UUID] = {}  # dry run only: what it would have claimed
    for taking in _takings(app, page_size):
        yield _settle(app, taking, planned, dry_run=dry_run)


def _takings(app: OnboardingApplication, page_size: int) -> Iterator[_Taking]:
    after = 0
    while True:
        page = app.recorder.select_notifications(
            start=after, limit=page_size, topics=TAKING_TOPICS, inclusive_of_start=False
        )
        for notification in page:
            taking = _first_taking(app, notification.id, app.mapper.to_domain_event(notification))
            if taking is not None:
                yield taking
        if len(page) < page_size:
            return
        after = page[-1].id


def _first_taking(
    app: OnboardingApplication, notification_id: int, event: object
) -> _Taking | None:
    """``event`` as a taking, unless the organization had taken that domain before."""
    if isinstance(event, Organization.Registered):
        if event.domain is None:
            return None
        return _Taking(notification_id, event.originator_id, event.slug, event.domain)
    assert isinstance(event, Organization.DNSConfigured)
    before: object = app.repository.get(event.originator_id, version=event.originator_version - 1)
    assert isinstance(before, Organization)
    earlier = {before.domain} | {fqdn for fqdn, _, _ in before.dns_configurations}
    if _key(event.fqdn) in {_key(name) for name in earlier if name is not None}:
        return None
    return _Taking(notification_id, event.originator_id, before.slug, event.fqdn)


def _settle(
    app: OnboardingApplication, taking: _Taking, planned: dict[str, UUID], *, dry_run: bool
) -> ClaimOutcome:
    def outcome(
        kind: Outcome, fqdn: str, owner: UUID | None = None, reason: str | None = None
    ) -> ClaimOutcome:
        return ClaimOutcome(
            outcome=kind,
            fqdn=fqdn,
            organization_id=taking.organization_id,
            slug=taking.slug,
            notification_id=taking.notification_id,
            owner_id=owner,
            owner_slug=None if owner is None else _slug(app, owner),
            reason=reason,
        )

    try:
        fqdn = c.validate(c.DomainName, fqdn=taking.stored).fqdn
    except InvalidCommand as exc:
        return outcome("invalid", taking.stored, reason=str(exc))
    owner = app.domain_owner(fqdn)
    if owner is None and dry_run:
        owner = planned.setdefault(fqdn, taking.organization_id)
        if owner == taking.organization_id:
            return outcome("would_claim", fqdn)
    if owner is None:
        try:
            app.save(DomainClaim(fqdn=fqdn, organization_id=taking.organization_id))
            return outcome("claimed", fqdn)
        except IntegrityError:  # a racing registration (or run) saved the claim first
            owner = app.domain_owner(fqdn)
    if owner == taking.organization_id:
        return outcome("already_held", fqdn)
    return outcome("conflict", fqdn, owner)


def _key(name: str) -> str:
    """How a stored name compares: normalised when valid, as stored otherwise."""
    try:
        return c.validate(c.DomainName, fqdn=name).fqdn
    except InvalidCommand:
        return name


def _slug(app: OnboardingApplication, organization_id: UUID) -> str | None:
    try:
        return app.get_organization(organization_id).slug
    except NotFound:
        return None
