"""Tagged entities: find what a tag marks, and clean it up through commands.

Development and seed data are registered with tags (``dev``, ``sample``, ...). This
module finds every organization carrying a tag — reading the event store itself, so the
answer never depends on how far a projector has got — with its invitations, and cleans
them up the way the saga compensates: revoke pending invitations, remove DNS, deactivate
the organization. Nothing is deleted: every step is a domain command that records an
event, each idempotent, so an interrupted cleanup can simply be run again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from eventsourcing.utils import get_topic

from a4c_domain import Cause, InvitationView, OnboardingApplication, OrganizationView, caused_by
from a4c_domain.errors import A4CError
from a4c_domain.invitation import Invitation
from a4c_domain.organization import Organization, is_inactive
from a4c_service.tabular import render_text
from a4c_worker.activities import UNCLAIMED
from a4c_worker.providers.dns import DNSProvider

SCAN_PAGE = 1000
OutputFormat = Literal["table", "json", "csv"]


class DNSLeftUnclaimed(A4CError):
    """A cleanup step left a record its organization holds no claim on (reported as a
    failure of that step; the other steps go on)."""


@dataclass(frozen=True)
class TaggedOrganization:
    organization: OrganizationView
    invitations: tuple[InvitationView, ...]


@dataclass
class CleanupReport:
    dry_run: bool
    actions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _scan(app: OnboardingApplication, topic: str) -> Iterator[object]:
    start = 1
    while True:
        page = app.recorder.select_notifications(start, SCAN_PAGE, topics=[topic])
        if not page:
            return
        for notification in page:
            yield app.mapper.to_domain_event(notification)
        start = page[-1].id + 1


def find_tagged(app: OnboardingApplication, tag: str) -> list[TaggedOrganization]:
    """Every organization registered with ``tag``, with all its invitations."""
    org_ids: list[UUID] = []
    for registered in _scan(app, get_topic(Organization.Registered)):
        assert isinstance(registered, Organization.Registered)
        if tag in registered.tags:
            org_ids.append(registered.originator_id)
    wanted = set(org_ids)
    invitations: dict[UUID, list[UUID]] = {org_id: [] for org_id in org_ids}
    for invited in _scan(app, get_topic(Invitation.Invited)):
        assert isinstance(invited, Invitation.Invited)
        if invited.organization_id in wanted:
            invitations[invited.organization_id].append(invited.originator_id)
    return [
        TaggedOrganization(
            app.get_organization(org_id),
            tuple(app.get_invitation(inv_id, org_id) for inv_id in invitations[org_id]),
        )
        for org_id in org_ids
    ]


async def cleanup(
    app: OnboardingApplication, dns: DNSProvider, tag: str, *, dry_run: bool = True
) -> CleanupReport:
    """Compensate every entity tagged ``tag``; with ``dry_run`` only say what would happen."""
    report = CleanupReport(dry_run=dry_run)
    reason = f"cleanup of entities tagged {tag!r}"
    with caused_by(Cause(actor="a4c entities cleanup")):
        for entry in find_tagged(app, tag):
            org = entry.organization
            for inv in entry.invitations:
                if inv.status == "pending":
                    await _step(
                        report,
                        f"revoke invitation {inv.id} ({inv.email})",
                        dry_run,
                        functools.partial(_revoke, app, org.id, inv.id, reason),
                    )
            if org.dns_status in ("configured", "verified") and org.fqdn:
                await _step(
                    report,
                    f"remove DNS {org.fqdn}",
                    dry_run,
                    functools.partial(_remove_dns, app, dns, org),
                )
            if not is_inactive(org.status):
                await _step(
                    report,
                    f"deactivate organization {org.slug}",
                    dry_run,
                    functools.partial(_deactivate, app, org.id, reason),
                )
    return report


async def _step(
    report: CleanupReport, what: str, dry_run: bool, action: Callable[[], Awaitable[None]]
) -> None:
    if dry_run:
        report.actions.append(f"would {what}")
        return
    try:
        await action()
    except A4CError as exc:  # best effort: one failure does not stop the others
        report.failures.append(f"{what}: {type(exc).__name__}: {exc}")
    else:
        report.actions.append(what)


async def _revoke(app: OnboardingApplication, org_id: UUID, inv_id: UUID, reason: str) -> None:
    app.revoke_invitation(organization_id=org_id, invitation_id=inv_id, reason=reason)


async def _remove_dns(app: OnboardingApplication, dns: DNSProvider, org: OrganizationView) -> None:
    assert org.fqdn is not None and org.dns_target is not None
    right = app.dns_removal(org.id, org.fqdn)  # the rule the worker's remove_dns follows
    if right == "unclaimed":
        raise DNSLeftUnclaimed(f"{org.fqdn} not removed: {UNCLAIMED}")
    if right == "own":  # never a record under another tenant's domain
        await dns.remove_record(org.fqdn, org.dns_target, record_id=org.dns_record_id)
    app.remove_dns(organization_id=org.id)


async def _deactivate(app: OnboardingApplication, org_id: UUID, reason: str) -> None:
    app.deactivate(organization_id=org_id, reason=reason, failed_step=None)


COLUMNS = ("kind", "id", "name", "status", "detail")


def _rows(entries: list[TaggedOrganization]) -> Iterator[dict[str, str]]:
    for entry in entries:
        org = entry.organization
        yield {
            "kind": "organization",
            "id": str(org.id),
            "name": org.slug,
            "status": org.status,
            "detail": f"dns={org.dns_status} tags={','.join(org.tags)}",
        }
        for inv in entry.invitations:
            yield {
                "kind": "invitation",
                "id": str(inv.id),
                "name": inv.email,
                "status": inv.status,
                "detail": f"org={org.slug} role={inv.role} email={inv.email_status}",
            }


def render(entries: list[TaggedOrganization], fmt: OutputFormat) -> str:
    rows = list(_rows(entries))
    if fmt == "json":
        return json.dumps(rows, indent=2)
    return render_text(COLUMNS, [[row[c] for c in COLUMNS] for row in rows], fmt)
