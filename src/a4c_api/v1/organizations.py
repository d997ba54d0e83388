"""``/v1/organizations``: onboard (a bootstrap workflow), read, list, cancel.

Onboarding is idempotent by slug. The bootstrap's workflow id follows from the slug,
and its start input is the request, so "the same request" is decided against what the
workflow was started with (or, when its history is gone, the read model's row): the
same request answers 200 with the organization, another one 409 naming what differs.
Everything that can be refused is checked before the workflow starts (fields, a
taken slug, a parent that does not exist, a domain another organization holds), so a
refusal leaves nothing behind; what only the workflow can find out (a domain taken in
the meantime) shows in ``progress``, with the reason of every failure. A bootstrap that
failed (or was cancelled) before registering anything left nothing behind: the next
request for its slug, the same or a corrected one, starts a new one. One that registered
the organization keeps its slug (a different request is 409).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.privacy import mask_email
from a4c_api.problems import problem, unavailable
from a4c_api.v1.access import (
    Action,
    may_see_emails,
    not_found,
    organization_for,
    require_operator,
)
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
from a4c_api.v1.models import (
    CancelBody,
    OnboardRequest,
    Organization,
    OrganizationList,
    OrganizationView,
)
from a4c_domain.commands import inside_zone
from a4c_domain.errors import (
    DomainTaken,
    InvalidCommand,
    OrganizationConflict,
    OrganizationInactive,
)
from a4c_domain.ids import organization_id
from a4c_domain.organization import OrganizationStatus, is_inactive
from a4c_projector.queries import OrganizationRecord
from a4c_worker.client import bootstrap_handle, start_bootstrap
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.bootstrap_progress import CANCEL_REFUSED, registered_nothing
from a4c_worker.workflows.models import BootstrapInput, BootstrapProgress

router: APIRouter = APIRouter(tags=["organizations"])
log = logging.getLogger(__name__)

# A query or history read that takes longer than this answers without it (seconds).
TEMPORAL_RPC_TIMEOUT = timedelta(seconds=5)
# What a registration is compared on (the read model's columns of the request's fields).
REGISTRATION_FIELDS = ("name", "org_type", "parent_id", "tags", "domain")

# States a bootstrap never leaves (its progress is final), and how many are kept.
FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
FINAL_PROGRESS_KEPT = 10_000

Caller = Annotated[Principal, Depends(authenticate)]


# --- reading ----------------------------------------------------------------------------


def _final_progress(request: Request) -> OrderedDict[str, BootstrapProgress]:
    """The app's cache of bootstraps' last progress, by slug (made on first use).

    A bootstrap that has ended never changes again, and querying a closed workflow
    makes a worker replay its whole history (tens of milliseconds): its last progress
    is kept instead, for at most :data:`FINAL_PROGRESS_KEPT` slugs."""
    state = request.app.state
    found: OrderedDict[str, BootstrapProgress] | None = getattr(state, "final_progress", None)
    if found is None:
        found = state.final_progress = OrderedDict()
    return found


async def _progress(request: Request, slug: str) -> tuple[bool | None, BootstrapProgress | None]:
    """Whether a bootstrap workflow exists for ``slug`` (None: Temporal did not say),
    and its live progress (None if there is none, it has not run yet, or Temporal is not
    reachable)."""
    final = _final_progress(request)
    if slug in final:
        final.move_to_end(slug)
        return True, final[slug]
    gateway = api_app.gateway_of(request)
    if not gateway.connected:
        return False, None
    handle = bootstrap_handle(gateway.client, slug)
    try:
        found = await handle.query(
            OrganizationBootstrapWorkflow.progress, rpc_timeout=TEMPORAL_RPC_TIMEOUT
        )
    except WorkflowQueryFailedError:
        return True, None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:  # the one answer that means "none"
            return False, None
        # No worker answered in time, or Temporal is struggling: whether it exists is
        # not known (the read model may still answer); progress is shown as unknown.
        log.warning("progress of the bootstrap of %r unavailable: %s", slug, exc)
        return None, None
    # One that registered nothing may be followed by a new run: not final for its slug.
    if found.state in FINAL_STATES and not registered_nothing(found):
        final[slug] = found
        while len(final) > FINAL_PROGRESS_KEPT:
            final.popitem(last=False)
    return True, found


async def _view(request: Request, slug: str, *, started: bool = False) -> OrganizationView | None:
    """The organization's row and its bootstrap's progress; None when neither exists.
    ``started``: the caller knows its bootstrap exists (it just started or updated it)."""
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization_by_slug(slug))
    exists, progress = await _progress(request, slug)
    if exists is None:  # Temporal did not say
        if record is None and not started:
            # Only Temporal could say whether a bootstrap for it runs (one that has not
            # registered yet): neither found nor "not found" is known.
            raise unavailable("the workflow service did not answer: try again")
        exists = True  # shown, its progress unknown
    if record is None and not exists:
        return None
    return OrganizationView(
        id=organization_id(slug),
        slug=slug,
        organization=Organization.of(record) if record is not None else None,
        progress=progress,
    )


def masked_for_members(view: OrganizationView) -> OrganizationView:
    """The view for a plain member: invitees' addresses in progress masked."""
    if view.progress is None:
        return view
    errors = [
        e.model_copy(update={"email": mask_email(e.email)}) if e.email else e
        for e in view.progress.errors
    ]
    return view.model_copy(update={"progress": view.progress.model_copy(update={"errors": errors})})


@router.get(
    "/organizations/{slug}",
    response_model=OrganizationView,
    summary="Get an organization and its bootstrap's progress",
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
async def get_organization(slug: str, request: Request, caller: Caller) -> OrganizationView:
    """The read model's row and the bootstrap workflow's live progress. Any member of
    the organization may read it (addresses in full only for owners and admins)."""
    org_id = await organization_for(request, caller, slug, Action.READ)
    view = await _view(request, slug)
    if view is None:
        raise not_found(slug)
    return view if await may_see_emails(request, caller, org_id) else masked_for_members(view)


@router.get(
    "/organizations",
    response_model=OrganizationList,
    summary="List organizations",
    responses={**COMMON_ERRORS},
)
async def list_organizations(
    request: Request,
    caller: Caller,
    tag: Annotated[str | None, Query(max_length=63)] = None,
    status: OrganizationStatus | None = None,
) -> OrganizationList:
    """Every organization for a platform operator; an organization's key sees its own;
    a person sees the organizations they are a member of. Filtered by ``tag`` and
    ``status`` when given. Only those rows are read (never every tenant's)."""
    ids: list[UUID] | None = None
    member: str | None = None
    if not caller.operator:
        if caller.organization_id is not None:
            ids = [caller.organization_id]
        else:
            member = caller.subject
    records = await api_app.gateway_of(request).read(
        lambda rm: rm.organizations(status=status, tag=tag, ids=ids, member=member)
    )
    return OrganizationList(organizations=[Organization.of(r) for r in records])


# --- onboarding -------------------------------------------------------------------------


async def _started_with(request: Request, slug: str) -> BootstrapInput | None:
    """The input the bootstrap of ``slug`` was started with; None if there is none."""
    client = api_app.gateway_of(request).client
    handle = bootstrap_handle(client, slug)
    try:
        async for event in handle.fetch_history_events(
            page_size=1, rpc_timeout=TEMPORAL_RPC_TIMEOUT
        ):
            payloads = event.workflow_execution_started_event_attributes.input.payloads
            # The client's converter: it opens payloads sealed with the payload keys.
            [found] = await client.data_converter.decode(payloads, [BootstrapInput])
            assert isinstance(found, BootstrapInput)
            return found
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None


def _differences(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (old.get(k), new.get(k)) for k in sorted(new) if old.get(k) != new.get(k)}


def _conflict(slug: str, differences: dict[str, tuple[Any, Any]]) -> OrganizationConflict:
    return OrganizationConflict(
        f"slug {slug!r} is already taken by a different request "
        f"(different {', '.join(sorted(differences))})",
        differences,
    )


def _registration(record: OrganizationRecord) -> dict[str, Any]:
    fields = record.model_dump(include=set(REGISTRATION_FIELDS))
    fields["tags"] = sorted(fields["tags"])
    return fields


def _registration_of(spec: BootstrapInput) -> dict[str, Any]:
    return spec.model_dump(include=set(REGISTRATION_FIELDS))


async def _refuse_early(request: Request, spec: BootstrapInput) -> None:
    """What the register step would refuse, refused before anything starts."""
    gateway = api_app.gateway_of(request)
    if spec.parent_id is not None:
        parent_id = spec.parent_id
        parent = await gateway.read(lambda rm: rm.organization(parent_id))
        if parent is None:
            raise InvalidCommand(
                "OnboardRequest", [{"field": "parent_id", "message": "no organization has this id"}]
            )
        if is_inactive(parent.status):
            raise OrganizationInactive(f"parent organization {parent.slug!r} is {parent.status}")
    if spec.domain is not None:
        domain = spec.domain
        holders = await gateway.read(lambda rm: rm.organizations())
        if any(
            o.slug != spec.slug and domain in (o.domain, o.fqdn) and not is_inactive(o.status)
            for o in holders
        ):
            raise DomainTaken(domain)


def _require_inside_zone(spec: BootstrapInput, zone: str) -> None:
    """The worker publishes records only below its zone (DNS_ZONE, which the API shares)."""
    if spec.domain is not None and not inside_zone(spec.domain, zone):
        raise InvalidCommand(
            "OnboardRequest", [{"field": "domain", "message": f"must be a name below {zone}"}]
        )


async def _registered_nothing(request: Request, spec: BootstrapInput) -> bool:
    """Whether the last bootstrap of ``spec.slug`` ended having registered nothing, so a
    new one may start (the same request or a corrected one)."""
    _, progress = await _progress(request, spec.slug)
    return progress is not None and registered_nothing(progress)


@router.post(
    "/organizations",
    response_model=OrganizationView,
    status_code=202,
    summary="Onboard an organization (platform operators)",
    responses={
        **written(200, "The same request was made before", location=True, model=OrganizationView),
        **written(202, "Onboarding started; follow it with GET (Location)", location=True),
        **COMMON_ERRORS,
        **UNREADABLE_BODY,
        **FORBIDDEN,
        **CONFLICT,
    },
)
async def onboard(
    body: OnboardRequest, request: Request, response: Response, caller: Caller
) -> OrganizationView:
    """Start the bootstrap workflow: register, DNS (with ``domain``), invite and mail the
    ``invitees``, activate. Answers 202 once started (``progress`` shows how far it is),
    200 with the organization for the same request again, 409 for a different request
    on a slug already taken or a domain another organization holds.
    ``A4C-Consistent`` says whether the read models already show what was written."""
    require_operator(caller)
    settings = api_app.settings_of(request)
    try:
        spec = BootstrapInput.model_validate(
            {**body.bootstrap_fields(), "resends": settings.resend_limit}
        )
    except ValidationError as exc:
        raise invalid("OnboardRequest", exc) from None
    _require_inside_zone(spec, settings.dns_zone)
    gateway = api_app.gateway_of(request)
    client = gateway.client  # 503 now, before anything else, if Temporal is not reachable
    record = await gateway.read(lambda rm: rm.organization_by_slug(spec.slug))
    # Not the request's: this replica's limit, which another may have set otherwise.
    wanted = spec.model_dump(mode="json", exclude={"resends"})
    if record is not None and (diff := _differences(_registration(record), _registration_of(spec))):
        raise _conflict(spec.slug, diff)
    started = await _started_with(request, spec.slug)
    again = record is None and started is not None and await _registered_nothing(request, spec)
    if again or (started is None and record is None):
        await _refuse_early(request, spec)
        try:
            await start_bootstrap(client, spec, gateway.task_queue, after_failure=again)
            response.status_code = 202
        except WorkflowAlreadyStartedError:  # another request started it, and it ended
            response.status_code = 200
        # Another request may have started it first (the start then joined it).
        started = await _started_with(request, spec.slug)
    else:
        response.status_code = 200
    if started is not None:
        diff = _differences(started.model_dump(mode="json", exclude={"resends"}), wanted)
        if diff:
            raise _conflict(spec.slug, diff)
    # The same request again wrote nothing: it does not wait.
    await caught_up(request, response, caller, wrote=response.status_code == 202)
    response.headers["Location"] = str(request.url_for("get_organization", slug=spec.slug).path)
    view = await _view(request, spec.slug, started=True)
    return view or OrganizationView(
        id=organization_id(spec.slug), slug=spec.slug, organization=None, progress=None
    )


@router.post(
    "/organizations/{slug}/cancel",
    response_model=OrganizationView,
    summary="Cancel a bootstrap in progress (platform operators)",
    responses={
        **written(200, "Cancelled and undone: the final progress"),
        **COMMON_ERRORS,
        **UNREADABLE_BODY,
        **NOT_FOUND,
        **FORBIDDEN,
        **CONFLICT,
    },
)
async def cancel(
    slug: str, body: CancelBody, request: Request, response: Response, caller: Caller
) -> OrganizationView:
    """Ask the bootstrap to stop and undo what it did (revoke the invitations, remove
    the DNS record, deactivate); answers once it has, with the final progress. 409 once
    the bootstrap is past the point of no return or has ended."""
    await organization_for(request, caller, slug, Action.OPERATE)
    gateway = api_app.gateway_of(request)
    handle = bootstrap_handle(gateway.client, slug)
    try:
        progress = await handle.execute_update(
            OrganizationBootstrapWorkflow.request_cancel, body.reason
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == CANCEL_REFUSED:
            raise problem(409, cause.message, kind="cancel-refused") from None
        raise refusal(exc) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # No running bootstrap: it has ended, or there never was one.
        if await _view(request, slug) is None:
            raise not_found(slug) from None
        raise problem(
            409, f"the bootstrap of {slug!r} has ended: too late to cancel", kind="cancel-refused"
        ) from None
    await caught_up(request, response, caller)
    view = await _view(request, slug, started=True)
    assert view is not None  # the workflow exists
    return view.model_copy(update={"progress": progress})
