"""An organization's mail limits: invitations per hour and pending, per replica exactly.

:func:`require_room` counts the read models' records together with the invitations this
replica issued that they do not show yet (:class:`IssuedLedger`); the invite route checks
and reserves under the organization's lock (:meth:`IssuedLedger.checking`), one request
at a time per replica. Across replicas the window is described in
:mod:`a4c_api.v1.invitations`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from fastapi import Request

from a4c_api.settings import ApiSettings
from a4c_api.v1.books import OrganizationBook, OrganizationBooks, app_state
from a4c_domain.errors import TooManyInvitations, TooManyPendingInvitations
from a4c_projector.queries import InvitationRecord, OrganizationRecord

# The window of API_INVITATIONS_PER_ORGANIZATION_PER_HOUR.
HOUR = timedelta(hours=1)


@dataclass
class Unshown:
    """An invitation this replica issued (or is issuing) that the read models may not show."""

    invited_at: datetime
    expires_at: datetime | None = None  # known once its workflow answers

    def counts(self, now: datetime) -> bool:
        """Whether it can still count against a limit (in the hour, or pending)."""
        return self.invited_at > now - HOUR or self.pending(now)

    def pending(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class Book(OrganizationBook):
    """One organization's not-yet-shown invitations, and who is checking them."""

    unshown: dict[UUID, Unshown] = field(default_factory=dict)

    def empty(self) -> bool:
        return not self.unshown


class IssuedLedger(OrganizationBooks[Book]):
    """Per organization, the invitations this replica issued that the read models do not show
    yet, counted with the read models' records by :func:`require_room`. Its entries are
    issued invitations only (which the limits cap); each leaves once the read models show it
    or it can no longer count, and an organization leaves with its last entry.
    :meth:`~a4c_api.v1.books.OrganizationBooks.checking`: read the read models, check and
    reserve within, so that each check sees every earlier reservation and a read at least
    as recent as any before it (dropping what it shows is then safe)."""

    def __init__(self) -> None:
        super().__init__(Book)

    def reserve(self, book: Book, invitation_id: UUID, now: datetime) -> bool:
        """Count ``invitation_id`` from now; False if it was already counted (the same
        invitation asked for twice at once: one invitation, one mail)."""
        if invitation_id in book.unshown:
            return False
        book.unshown[invitation_id] = Unshown(invited_at=now)
        return True

    def pending_until(
        self, organization_id: UUID, invitation_id: UUID, expires_at: datetime | None
    ) -> None:
        """The invitation counts as pending until ``expires_at`` (its workflow's answer)."""
        book = self.get(organization_id)
        found = book.unshown.get(invitation_id) if book is not None else None
        if found is not None:
            found.expires_at = expires_at

    def release(self, organization_id: UUID, invitation_id: UUID) -> None:
        """The invitation was not issued: its place is free again."""
        book = self.get(organization_id)
        if book is not None:
            book.unshown.pop(invitation_id, None)
            self.tidy(organization_id, book)


def ledger_of(request: Request) -> IssuedLedger:
    """The app's ledger (one per replica)."""
    return app_state(request, "issued_ledger", IssuedLedger, IssuedLedger)


def unshown_after(book: Book, records: list[InvitationRecord], now: datetime) -> list[Unshown]:
    """Drop what ``records`` show or what no longer counts; what is left (not in records)."""
    shown_ids = {r.id for r in records}
    for invitation_id, entry in list(book.unshown.items()):
        if invitation_id in shown_ids or not entry.counts(now):
            del book.unshown[invitation_id]
    return list(book.unshown.values())


def require_room(
    org: OrganizationRecord,
    records: list[InvitationRecord],
    unshown: Iterable[Unshown],
    settings: ApiSettings,
    now: datetime,
) -> None:
    """Refuse a new invitation past the organization's limits (see the module's docstring),
    counting ``records`` and the ``unshown`` invitations; ``retry_after`` is when the first
    place frees up without anyone acting (at once for one still being issued: it may be
    refused)."""
    unshown = list(unshown)
    recent = sorted(
        [r.invited_at for r in records if r.invited_at > now - HOUR]
        + [u.invited_at for u in unshown if u.invited_at > now - HOUR]
    )
    per_hour = settings.api_invitations_per_organization_per_hour
    if len(recent) >= per_hour:
        frees_at = recent[len(recent) - per_hour] + HOUR
        raise TooManyInvitations(org.slug, per_hour, (frees_at - now).total_seconds())
    expiries = sorted(
        [r.expires_at for r in records if r.status == "pending"]
        + [now if u.expires_at is None else u.expires_at for u in unshown if u.pending(now)]
    )
    pending = settings.api_max_pending_invitations_per_organization
    if len(expiries) >= pending:
        frees_at = expiries[len(expiries) - pending]
        raise TooManyPendingInvitations(org.slug, pending, (frees_at - now).total_seconds())
