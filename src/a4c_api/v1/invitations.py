"""``/v1/organizations/{slug}/invitations`` and ``…/members``: an organization's people.

Invitations are issued, revoked and re-sent by their workflow (``a4c_worker.client``);
this module decides only which request to send. An address has one invitation per
*generation*: inviting it again after its invitation was revoked or expired issues the
next generation; while one is pending, the same invitation again answers with it (200)
and different details are a conflict (409); once accepted, the person is a member (409).
Each of those answers comes from the read model before anything is sent, so a refusal
leaves nothing behind.

The platform's mail is limited (429 with ``Retry-After``). Each invitation's re-sends are
held by its workflow (``ResendTooSoon``, ``TooManyResends``), exactly, whichever replica
asks. An organization's new invitations per hour and pending invitations
(``TooManyInvitations``, ``TooManyPendingInvitations``) are counted on the read models
every replica shares, together with the invitations this replica issued that they do not
show yet (:mod:`a4c_api.v1.mail_limits`); an organization's invites are checked and
reserved one at a time per replica, so within one replica the limits hold exactly, however
many invites arrive at once. Across replicas, each replica counts only its own not-yet-shown
invitations: within the projection's lag, an organization can get at most
replicas times the limit invitations, whatever the number of invites sent at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.problems import ProblemError, from_workflow_refusal, problem
from a4c_api.v1.access import Action, not_found, organization_for
from a4c_api.v1.common import (
    COMMON_ERRORS,
    CONFLICT,
    FORBIDDEN,
    LIMITED,
    NOT_FOUND,
    UNREADABLE_BODY,
    Responses,
    caught_up,
    refusal,
    shown,
    written,
)
from a4c_api.v1.mail_limits import HOUR, ledger_of, require_room, unshown_after
from a4c_api.v1.models import (
    Invitation,
    InvitationList,
    InviteRequest,
    Member,
    MemberList,
    RevokeBody,
)
from a4c_domain.commands import Role
from a4c_domain.errors import (
    InvitationAlreadyAccepted,
    InvitationConflict,
    InvitationExpired,
    InvitationNotFound,
    InvitationNotPending,
    InvitationRevoked,
    OrganizationInactive,
)
from a4c_domain.invitation import InvitationStatus as InvitationState
from a4c_domain.organization import is_inactive
from a4c_projector.queries import InvitationRecord, OrganizationRecord
from a4c_worker.client import (
    InvitationClosed,
    InviteRefused,
    invite,
    resend_invitation,
    revoke_invitation,
)
from a4c_worker.workflows.models import InvitationStatus, InvitationToIssue

router: APIRouter = APIRouter(tags=["invitations"])
Caller = Annotated[Principal, Depends(authenticate)]
ADMIN_ERRORS: Responses = {**COMMON_ERRORS, **NOT_FOUND, **FORBIDDEN}

# Why an invitation that is not pending cannot be revoked or re-sent, by its status.
NOT_PENDING: dict[str, type[InvitationNotPending]] = {
    "accepted": InvitationAlreadyAccepted,
    "revoked": InvitationRevoked,
    "expired": InvitationExpired,
}


async def _organization(request: Request, caller: Principal, slug: str) -> OrganizationRecord:
    """Organization ``slug`` if the caller may manage its people (else 404 / 403)."""
    await organization_for(request, caller, slug, Action.ADMINISTER)
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization_by_slug(slug))
    if record is None:
        raise not_found(slug)
    return record


async def _invitation(
    request: Request, org: OrganizationRecord, invitation_id: UUID
) -> InvitationRecord:
    found = await api_app.gateway_of(request).read(lambda rm: rm.invitation(invitation_id, org.id))
    if found is None:  # unknown, or another organization's: the same answer
        raise InvitationNotFound(invitation_id)
    return found


def _location(request: Request, slug: str, invitation_id: UUID) -> str:
    return str(request.url_for("get_invitation", slug=slug, invitation_id=str(invitation_id)).path)


# --- reading ----------------------------------------------------------------------------


@router.get(
    "/organizations/{slug}/invitations",
    response_model=InvitationList,
    summary="List an organization's invitations",
    responses=ADMIN_ERRORS,
)
async def list_invitations(
    slug: str, request: Request, caller: Caller, status: InvitationState | None = None
) -> InvitationList:
    """Every generation of every address, by address then generation; only those with
    ``status`` when given."""
    org = await _organization(request, caller, slug)
    found = await api_app.gateway_of(request).read(lambda rm: rm.invitations(org.id, status=status))
    return InvitationList(invitations=[Invitation.of(i) for i in found])


@router.get(
    "/organizations/{slug}/invitations/{invitation_id}",
    response_model=Invitation,
    summary="Get one invitation",
    responses=ADMIN_ERRORS,
)
async def get_invitation(
    slug: str, invitation_id: UUID, request: Request, caller: Caller
) -> Invitation:
    org = await _organization(request, caller, slug)
    return Invitation.of(await _invitation(request, org, invitation_id))


@router.get(
    "/organizations/{slug}/members",
    response_model=MemberList,
    summary="List an organization's members",
    tags=["members"],
    responses=ADMIN_ERRORS,
)
async def list_members(
    slug: str, request: Request, caller: Caller, role: Role | None = None
) -> MemberList:
    """Everyone who accepted an invitation, by when they joined (with ``role`` only,
    when given). Listed even once the organization is deactivated: read its status."""
    org = await _organization(request, caller, slug)
    found = await api_app.gateway_of(request).read(lambda rm: rm.members(org.id, role=role))
    return MemberList(members=[Member.of(m) for m in found])


# --- writing ----------------------------------------------------------------------------


def _latest(records: list[InvitationRecord], email: str) -> InvitationRecord | None:
    mine = [r for r in records if r.email == email]
    return max(mine, key=lambda r: r.generation) if mine else None


def _issued(
    org: OrganizationRecord, body: InviteRequest, generation: int, status: InvitationStatus
) -> Invitation:
    """What is known of a just-issued invitation the read model does not show yet."""
    return Invitation(
        id=status.invitation_id,
        organization_id=org.id,
        email=body.email,
        role=body.role,
        first_name=body.first_name,
        last_name=body.last_name,
        generation=generation,
        token_generation=status.token_generation,
        status="pending",
        email_status=None,
        expires_at=status.expires_at,
        invited_at=None,
        email_sent_at=None,
        accepted_by=None,
        accepted_at=None,
        revoke_reason=None,
        revoked_at=None,
        expired_at=None,
    )


@router.post(
    "/organizations/{slug}/invitations",
    response_model=Invitation,
    status_code=201,
    summary="Invite someone to an organization",
    responses={
        **written(201, "Issued; its mail is on its way", location=True),
        **written(200, "This invitation was already pending", location=True, model=Invitation),
        **ADMIN_ERRORS,
        **UNREADABLE_BODY,
        **CONFLICT,
        **LIMITED,
    },
)
async def invite_someone(
    slug: str, body: InviteRequest, request: Request, response: Response, caller: Caller
) -> Invitation:
    """Issue an invitation (its workflow mails the link). 201 when issued; 200 with the
    pending invitation when the same one was issued before; 409 when that address has a
    pending invitation with other details, or has accepted one already; 429 past the
    organization's invitations per hour or pending invitations.
    ``A4C-Consistent`` says whether the read models already show it."""
    org = await _organization(request, caller, slug)
    gateway = api_app.gateway_of(request)
    settings = api_app.settings_of(request)
    invitee = body.invitee()
    ledger = ledger_of(request)
    async with ledger.checking(org.id) as book:
        records = await gateway.read(lambda rm: rm.invitations(org.id))
        latest = _latest(records, invitee.email)
        generation = 1
        if latest is not None:
            if latest.status == "pending":
                differences = {
                    name: (getattr(latest, name), getattr(invitee, name))
                    for name in ("role", "first_name", "last_name")
                    if getattr(latest, name) != getattr(invitee, name)
                }
                if differences:
                    raise InvitationConflict(
                        f"{invitee.email} already has a pending invitation with different "
                        f"{', '.join(sorted(differences))}; revoke it first",
                        differences,
                    )
                response.status_code = 200
                response.headers["Location"] = _location(request, slug, latest.id)
                shown(response)  # nothing written: read from the read models, so no wait
                return Invitation.of(latest)
            if latest.status == "accepted":
                raise InvitationAlreadyAccepted(
                    f"{invitee.email} has already accepted an invitation to {slug!r}"
                )
            generation = latest.generation + 1  # after a revoked or expired one
        if is_inactive(org.status):
            raise OrganizationInactive(f"organization {slug!r} is {org.status}")
        now = datetime.now(UTC)
        require_room(org, records, unshown_after(book, records, now), settings, now)
        invitation_id = InvitationToIssue(
            organization_id=org.id, invitee=invitee, generation=generation
        ).invitation_id
        reserved = ledger.reserve(book, invitation_id, now)
    try:
        status = await invite(
            gateway.client,
            organization_id=org.id,
            organization_name=org.name,
            invitee=invitee,
            generation=generation,
            task_queue=gateway.task_queue,
            organization_slug=org.slug,
            organization_tags=org.tags,
            resends=settings.resend_limit,
        )
    except InviteRefused as exc:
        if reserved:
            ledger.release(org.id, invitation_id)
        raise from_workflow_refusal(exc.error_type, str(exc), exc.details) from None
    except InvitationClosed as exc:
        if reserved:
            ledger.release(org.id, invitation_id)
        raise problem(409, str(exc), kind="invitation-closed") from None
    except BaseException:
        # The start may have gone through (the read models then show it): its place stays
        # reserved until they do, or for the hour.
        if reserved:
            ledger.pending_until(org.id, invitation_id, now + HOUR)
        raise
    ledger.pending_until(org.id, status.invitation_id, status.expires_at)
    response.headers["Location"] = _location(request, slug, status.invitation_id)
    await caught_up(request, response, caller)
    found = await gateway.read(lambda rm: rm.invitation(status.invitation_id, org.id))
    return Invitation.of(found) if found is not None else _issued(org, body, generation, status)


def _not_running(invitation: InvitationRecord) -> ProblemError:
    """An invitation whose workflow is not running though the read model says pending:
    issued by a bootstrap still in progress (its workflow starts at the end)."""
    return problem(
        409,
        f"invitation {invitation.id} cannot be changed yet: its organization is still "
        "being onboarded",
        kind="invitation-not-ready",
    )


def _require_pending(invitation: InvitationRecord) -> None:
    if invitation.status != "pending":
        raise NOT_PENDING.get(invitation.status, InvitationNotPending)(
            f"invitation {invitation.id} is {invitation.status}"
        )


async def _change(
    request: Request,
    response: Response,
    caller: Principal,
    slug: str,
    invitation_id: UUID,
    update: Callable[[Client, UUID], Awaitable[object]],
) -> Invitation:
    """Send ``update`` to a pending invitation's workflow (revoke, re-send); the
    invitation as the read models show it afterwards."""
    org = await _organization(request, caller, slug)
    invitation = await _invitation(request, org, invitation_id)
    _require_pending(invitation)
    try:
        await update(api_app.gateway_of(request).client, invitation.id)
    except WorkflowUpdateFailedError as exc:
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise _not_running(invitation) from None
    await caught_up(request, response, caller)
    return Invitation.of(await _invitation(request, org, invitation.id))


@router.post(
    "/organizations/{slug}/invitations/{invitation_id}/revoke",
    response_model=Invitation,
    summary="Revoke a pending invitation",
    responses={**written(200, "Revoked"), **ADMIN_ERRORS, **UNREADABLE_BODY, **CONFLICT},
)
async def revoke(
    slug: str,
    invitation_id: UUID,
    body: RevokeBody,
    request: Request,
    response: Response,
    caller: Caller,
) -> Invitation:
    """The link stops working; the address can be invited again (next generation).
    409 unless the invitation is pending."""
    return await _change(
        request,
        response,
        caller,
        slug,
        invitation_id,
        lambda client, found: revoke_invitation(client, found, body.reason),
    )


@router.post(
    "/organizations/{slug}/invitations/{invitation_id}/resend",
    response_model=Invitation,
    summary="Re-send a pending invitation with a new link",
    responses={**written(200, "Re-sent with a new link"), **ADMIN_ERRORS, **CONFLICT, **LIMITED},
)
async def resend(
    slug: str, invitation_id: UUID, request: Request, response: Response, caller: Caller
) -> Invitation:
    """A new link (the old one stops working), a new expiry, a new mail.
    409 unless the invitation is pending; 429 within the cooldown after its last mail,
    or once it was re-sent as often as allowed."""
    return await _change(request, response, caller, slug, invitation_id, resend_invitation)
