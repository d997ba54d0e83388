"""Offboarding an organization: ``POST /v1/organizations/{slug}/offboard`` (or ``DELETE
/v1/organizations/{slug}``), its progress, and cancelling it inside its grace period.

Platform operators and the organization's owners may offboard it. Everything that can
be refused is refused before the workflow starts: an organization that does not exist
(404), one whose bootstrap was undone (409 ``organization-inactive``: nothing to
offboard), one with child organizations that are not offboarded (409
``organization-has-children``: offboard the children first). The children are found in
the read model: a child registered while its parent's offboarding runs is not seen (the
race is documented in docs/http-service.md; the parent's offboarding then refuses
nothing, and the child is offboarded on its own).

Idempotent by organization: a request while an offboarding runs joins it (the first
request's reason and grace period stand), one after it completed answers 200 with the
organization (already offboarded); after one that failed or was cancelled a new one
starts.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.problems import problem
from a4c_api.v1.access import ADMIN_ROLES, Action, not_found, organization_for
from a4c_api.v1.common import (
    COMMON_ERRORS,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    UNREADABLE_BODY,
    caught_up,
    invalid,
    refusal,
    written,
)
from a4c_api.v1.models import CancelBody, OffboardingView, OffboardRequest, Organization
from a4c_api.v1.organizations import TEMPORAL_RPC_TIMEOUT
from a4c_domain.commands import Reason
from a4c_domain.errors import OrganizationInactive
from a4c_domain.ids import organization_id
from a4c_domain.organization import is_inactive
from a4c_worker.client import offboarding_handle, start_offboarding
from a4c_worker.workflows.bootstrap_progress import CANCEL_REFUSED
from a4c_worker.workflows.models import (
    MAX_ADMINS,
    MAX_GRACE_PERIOD_SECONDS,
    OffboardingInput,
    OffboardingProgress,
)
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow

router: APIRouter = APIRouter(tags=["organizations"])
log = logging.getLogger(__name__)

Caller = Annotated[Principal, Depends(authenticate)]
DEFAULT_REASON = "offboarded by request"


async def _progress(request: Request, slug: str) -> OffboardingProgress | None:
    """The offboarding's live progress; None when there is none or it cannot be read."""
    gateway = api_app.gateway_of(request)
    if not gateway.connected:
        return None
    try:
        return await offboarding_handle(gateway.client, slug).query(
            OrganizationOffboardingWorkflow.progress, rpc_timeout=TEMPORAL_RPC_TIMEOUT
        )
    except WorkflowQueryFailedError:
        return None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            log.warning("progress of the offboarding of %r unavailable: %s", slug, exc)
        return None


async def _view(request: Request, slug: str) -> OffboardingView:
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization_by_slug(slug))
    return OffboardingView(
        id=organization_id(slug),
        slug=slug,
        organization=Organization.of(record) if record is not None else None,
        offboarding=await _progress(request, slug),
    )


async def _offboard(
    request: Request, response: Response, caller: Principal, slug: str, body: OffboardRequest
) -> OffboardingView:
    org_id = await organization_for(request, caller, slug, Action.OFFBOARD)
    gateway = api_app.gateway_of(request)
    client = gateway.client  # 503 now if Temporal is not reachable

    record, children, admins = await gateway.read(
        lambda rm: (
            rm.organization(org_id),
            [c for c in rm.organizations(parent_id=org_id) if c.status != "offboarded"],
            sorted({m.email for m in rm.members(org_id) if m.role in ADMIN_ROLES}),
        )
    )
    if record is None:
        raise not_found(slug)
    location = str(request.url_for("get_offboarding", slug=slug).path)
    response.headers["Location"] = location
    if record.status == "offboarded":
        response.status_code = 200  # done before: nothing to start
        return await _view(request, slug)
    if is_inactive(record.status):
        raise OrganizationInactive(
            f"organization {slug!r} is {record.status} (its bootstrap was undone): "
            "nothing to offboard"
        )
    if children:
        raise problem(
            409,
            f"organization {slug!r} has {len(children)} child organization(s) that are not "
            "offboarded: offboard them first",
            kind="organization-has-children",
        )
    try:
        spec = OffboardingInput(
            slug=record.slug,
            reason=body.reason,
            grace_period_seconds=body.grace_period_seconds,
            admins=admins[:MAX_ADMINS],
        )
    except ValidationError as exc:
        raise invalid("OffboardRequest", exc) from None
    try:
        await start_offboarding(client, spec, gateway.task_queue, tags=record.tags)
        response.status_code = 202
    except WorkflowAlreadyStartedError:  # one completed since the row was read
        response.status_code = 200
    await caught_up(request, response, caller, wrote=False)
    return await _view(request, slug)


_RESPONSES = {
    **written(200, "Offboarded already: the organization", location=True, model=OffboardingView),
    **written(202, "Offboarding started (or joined); follow it with GET (Location)", location=True),
    **COMMON_ERRORS,
    **NOT_FOUND,
    **FORBIDDEN,
    **CONFLICT,
}


@router.post(
    "/organizations/{slug}/offboard",
    response_model=OffboardingView,
    status_code=202,
    summary="Offboard an organization (platform operators, its owners)",
    responses={**_RESPONSES, **UNREADABLE_BODY},
)
async def offboard(
    slug: str, body: OffboardRequest, request: Request, response: Response, caller: Caller
) -> OffboardingView:
    """Start the offboarding workflow: after ``grace_period_seconds`` (cancellable until
    then), revoke the pending invitations, remove the organization's DNS record, and
    offboard it (status ``offboarded``: its API keys and its members' rights end; the
    members' history stays). 202 once started or joined, 200 if it is offboarded
    already; 409 ``organization-has-children`` while it has child organizations that
    are not offboarded, ``organization-inactive`` if its bootstrap was undone."""
    return await _offboard(request, response, caller, slug, body)


@router.delete(
    "/organizations/{slug}",
    response_model=OffboardingView,
    status_code=202,
    summary="Offboard an organization (as POST …/offboard)",
    responses=_RESPONSES,
)
async def delete_organization(
    slug: str,
    request: Request,
    response: Response,
    caller: Caller,
    reason: Annotated[Reason, Query()] = DEFAULT_REASON,
    grace_period_seconds: Annotated[float, Query(ge=0, le=MAX_GRACE_PERIOD_SECONDS)] = 0.0,
) -> OffboardingView:
    """The same as ``POST …/offboard``, its fields as query parameters. Nothing is
    deleted: the organization is offboarded and its history kept."""
    body = OffboardRequest(reason=reason, grace_period_seconds=grace_period_seconds)
    return await _offboard(request, response, caller, slug, body)


@router.get(
    "/organizations/{slug}/offboarding",
    response_model=OffboardingView,
    summary="An organization's offboarding progress",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def get_offboarding(slug: str, request: Request, caller: Caller) -> OffboardingView:
    """The organization's row and its offboarding's live progress (null when none was
    started). Any member of the organization may read it while it is active."""
    await organization_for(request, caller, slug, Action.READ)
    view = await _view(request, slug)
    if view.organization is None and view.offboarding is None:
        raise not_found(slug)
    return view


@router.post(
    "/organizations/{slug}/offboard/cancel",
    response_model=OffboardingView,
    summary="Cancel an offboarding inside its grace period (platform operators, its owners)",
    responses={
        **written(200, "Cancelled: nothing was changed; the final progress"),
        **COMMON_ERRORS,
        **UNREADABLE_BODY,
        **NOT_FOUND,
        **FORBIDDEN,
        **CONFLICT,
    },
)
async def cancel_offboarding(
    slug: str, body: CancelBody, request: Request, response: Response, caller: Caller
) -> OffboardingView:
    """Call the offboarding off while it waits out its grace period: nothing has
    changed. 409 ``cancel-refused`` once the grace period is over, or when no
    offboarding is waiting."""
    await organization_for(request, caller, slug, Action.OFFBOARD)
    handle = offboarding_handle(api_app.gateway_of(request).client, slug)
    try:
        progress = await handle.execute_update(
            OrganizationOffboardingWorkflow.request_cancel, body.reason
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == CANCEL_REFUSED:
            raise problem(409, cause.message, kind="cancel-refused") from None
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise problem(
            409, f"no offboarding of {slug!r} is waiting: nothing to cancel", kind="cancel-refused"
        ) from None
    await caught_up(request, response, caller, wrote=False)
    view = await _view(request, slug)
    return view.model_copy(update={"offboarding": progress})
