"""``/v1/organizations/{slug}/sso`` and ``…/email-domains``: an organization's own
identity provider, and the e-mail domains it proves it owns.

Who: the organization's owners and admins (and its API key) for their own organization,
platform operators for any (:mod:`a4c_api.v1.access`, ``Action.ADMINISTER``).

``PUT …/sso`` seals the client secret at once with ``SSO_SECRET_KEYS`` (the format and
sealing of ``WEBHOOK_SECRET_KEYS``: :mod:`a4c_webhooks.sealing`; unset: the SSO routes
answer 503) and starts the organization's ``SSOConfigurationWorkflow`` with the sealed
text only; no answer, log line or error carries the secret, sealed or not. It then
waits (bounded) for the provider's check: a refusal is a 422 whose type names it
(``urn:a4c:problem:issuer-mismatch``, ``no-usable-key``, ``provider-too-slow``…, the
:class:`a4c_sso.errors.ProviderRefused` tree); a check still running (a slow provider
retried) answers 202 all the same, and ``GET`` shows how it ends. One configuration
runs at a time: another ``PUT`` meanwhile is a 409 ``sso-configuration-running``
(``DELETE`` cancels it). ``DELETE …/sso`` cancels a configuration being tried (it is
abandoned; the one in force stays) and ends the one in force.

``POST …/email-domains`` records the organization's request for a domain and answers
the TXT record to publish (``_a4c-challenge.<domain>``; the challenge is public);
``POST …/email-domains/{domain}/verify`` then checks the domain's DNS for it, with
back-off (``EmailDomainVerificationWorkflow``), and the domain is the organization's
once found. A domain another organization owns is a 409 ``email-domain-taken``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.problems import ProblemError, from_domain, from_workflow_refusal, problem
from a4c_api.v1.access import ADMIN_ROLES, Action, not_found, organization_for
from a4c_api.v1.common import (
    COMMON_ERRORS,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    UNREADABLE_BODY,
    Responses,
    caught_up,
    written,
)
from a4c_api.v1.organizations import TEMPORAL_RPC_TIMEOUT
from a4c_api.v1.sso_models import (
    EmailDomain,
    EmailDomainList,
    EmailDomainRequest,
    SSOConnection,
    SSOSettings,
)
from a4c_domain.commands import Reason
from a4c_domain.errors import EmailDomainNotFound, OrganizationInactive
from a4c_domain.organization import is_inactive
from a4c_worker.config import SSO_SECRET_KEYS_VARIABLE
from a4c_worker.sealing import SecretKeys
from a4c_worker.sso_client import (
    SSOConfigurationRunning,
    SSOHandle,
    deactivate_sso,
    request_email_domain,
    sso_configuration_handle,
    start_email_domain_verification,
    start_sso_configuration,
)
from a4c_worker.workflows.models import MAX_ADMINS
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_models import (
    EmailDomainVerificationInput,
    SSOConfigurationInput,
    SSOConfigurationProgress,
    SSODeactivationInput,
)

router: APIRouter = APIRouter(tags=["single sign-on"])
log = logging.getLogger(__name__)
# How long PUT waits for the provider's check before answering 202 anyway (seconds).
CHECK_WAIT_SECONDS = 20.0
_CHECK_POLL_SECONDS = 0.1
DEFAULT_DEACTIVATION_REASON = "single sign-on ended by request"
# The states in which a configuration run is still going (DELETE cancels it).
_RUNNING = frozenset({"checking_provider", "configuring", "waiting_for_test", "activating"})


def sso_secret_keys(request: Request) -> SecretKeys | None:
    """The app's SSO key ring, parsed once (None: single sign-on is not configured)."""
    state = request.app.state
    if not hasattr(state, "sso_secret_keys"):
        configured = api_app.settings_of(request).sso_secret_keys
        state.sso_secret_keys = (
            None
            if configured is None
            else SecretKeys.parse(configured.get_secret_value(), SSO_SECRET_KEYS_VARIABLE)
        )
    found: SecretKeys | None = state.sso_secret_keys
    return found


async def sso_caller(
    request: Request, caller: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """The authenticated caller, once single sign-on is known to be configured (else 503)."""
    if sso_secret_keys(request) is None:
        raise problem(
            503,
            "single sign-on is not configured on this service (SSO_SECRET_KEYS)",
            kind="sso-not-configured",
        )
    return caller


Caller = Annotated[Principal, Depends(sso_caller)]
DomainPath = Annotated[
    str, Path(description="An e-mail domain the organization asked to own", max_length=254)
]


async def _administered(request: Request, caller: Principal, slug: str) -> tuple[str, UUID]:
    """The organization (slug, id) ``caller`` administers; refused when it is missing
    (404) or has ended (409 ``organization-inactive``)."""
    org_id = await organization_for(request, caller, slug, Action.ADMINISTER)
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization(org_id))
    if record is None:
        raise not_found(slug)
    if is_inactive(record.status):
        raise from_domain(OrganizationInactive(f"organization {slug!r} is {record.status}"))
    return record.slug, org_id


async def _progress(request: Request, org_id: UUID) -> SSOConfigurationProgress | None:
    """The latest configuration run's progress; None when there is none, it failed
    before its first step, or it cannot be read now (the read model still answers)."""
    gateway = api_app.gateway_of(request)
    if not gateway.connected:
        return None
    handle = sso_configuration_handle(gateway.client, org_id)
    try:
        return await handle.query(
            SSOConfigurationWorkflow.progress, rpc_timeout=TEMPORAL_RPC_TIMEOUT
        )
    except WorkflowQueryFailedError:
        return None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            log.warning("progress of an SSO configuration unavailable: %s", exc.status)
        return None


async def _view(request: Request, slug: str, org_id: UUID) -> SSOConnection:
    row = await api_app.gateway_of(request).read(lambda rm: rm.sso_connection(org_id))
    return SSOConnection.of(slug, row, await _progress(request, org_id))


async def _checked(handle: SSOHandle) -> None:
    """Wait (bounded) until the provider's check is over; its refusal as the 422 that
    names it. Still checking after :data:`CHECK_WAIT_SECONDS`: nothing raised."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CHECK_WAIT_SECONDS
    while loop.time() < deadline:
        try:
            progress = await handle.query(
                SSOConfigurationWorkflow.progress, rpc_timeout=TEMPORAL_RPC_TIMEOUT
            )
        except WorkflowQueryFailedError:
            progress = None  # not run its first step yet
        except RPCError as exc:  # a busy worker: ask again until the deadline, then 202
            log.warning("an SSO configuration's check not readable yet: %s", exc.status)
            progress = None
        if progress is not None and progress.state == "refused":
            try:
                await handle.result(rpc_timeout=TEMPORAL_RPC_TIMEOUT)
            except RPCError:
                return  # its refusal shows in GET
            except WorkflowFailureError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError):
                    raise from_workflow_refusal(cause.type, cause.message) from None
                raise
            return
        if progress is not None and progress.state != "checking_provider":
            return
        await asyncio.sleep(_CHECK_POLL_SECONDS)


_RESPONSES: Responses = {**COMMON_ERRORS, **NOT_FOUND, **FORBIDDEN}
_NOT_CONFIGURED: Responses = {
    503: {
        "description": "Single sign-on is not configured on this service (SSO_SECRET_KEYS), "
        "or a part the request needs did not answer (Retry-After)",
        "model": COMMON_ERRORS[503]["model"],
        "content": COMMON_ERRORS[503]["content"],
    }
}


@router.put(
    "/organizations/{slug}/sso",
    response_model=SSOConnection,
    status_code=202,
    summary="Configure the organization's own identity provider (its admins, operators)",
    responses={
        **written(202, "Checked (or still being checked) and waiting for its test sign-in"),
        **_RESPONSES,
        **CONFLICT,
        **UNREADABLE_BODY,
        **_NOT_CONFIGURED,
    },
)
async def put_sso(
    slug: str, body: SSOSettings, request: Request, response: Response, caller: Caller
) -> SSOConnection:
    """Check the provider (its discovery document and keys; a refusal is a 422 whose
    ``type`` names the problem: ``issuer-mismatch``, ``no-usable-key``,
    ``provider-too-slow``…), record it as pending, and wait for an admin's test sign-in
    through it; only then is it in force (the one in force until then stays). The
    client secret is sealed at once and never shown. 409 ``sso-configuration-running``
    while another configuration runs (``DELETE`` cancels it)."""
    slug, org_id = await _administered(request, caller, slug)
    keys = sso_secret_keys(request)
    assert keys is not None  # sso_caller
    gateway = api_app.gateway_of(request)
    # Told once it is active: the organization's owners and admins, as the offboarding's.
    admins = await gateway.read(
        lambda rm: sorted({m.email for m in rm.members(org_id) if m.role in ADMIN_ROLES})
    )
    spec = SSOConfigurationInput(
        organization_id=org_id,
        issuer=body.issuer,
        client_id=body.client_id,
        client_secret=keys.seal(body.client_secret.get_secret_value()),
        admins=admins[:MAX_ADMINS],
    )
    try:
        handle = await start_sso_configuration(
            gateway.client, spec, slug=slug, task_queue=gateway.task_queue
        )
    except SSOConfigurationRunning:
        raise problem(
            409,
            f"a single sign-on configuration of {slug!r} is running: DELETE it, or wait "
            "for it to end",
            kind="sso-configuration-running",
        ) from None
    await _checked(handle)
    response.headers["Location"] = str(request.url_for("get_sso", slug=slug).path)
    await caught_up(request, response, caller)
    return await _view(request, slug, org_id)


@router.get(
    "/organizations/{slug}/sso",
    response_model=SSOConnection,
    summary="The organization's single sign-on (its admins, operators)",
    responses={**_RESPONSES, **_NOT_CONFIGURED},
)
async def get_sso(slug: str, request: Request, caller: Caller) -> SSOConnection:
    """What the read model shows (the provider in force, the one being tried) and the
    latest configuration run's live progress (its provider's endpoints once checked, why
    it was refused or abandoned). Never a client secret."""
    org_id = await organization_for(request, caller, slug, Action.ADMINISTER)
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization(org_id))
    if record is None:
        raise not_found(slug)
    return await _view(request, record.slug, org_id)


@router.delete(
    "/organizations/{slug}/sso",
    response_model=SSOConnection,
    summary="End the organization's single sign-on, or cancel the one being tried",
    responses={
        **written(200, "Ended (or nothing to end)"),
        **_RESPONSES,
        **CONFLICT,
        **_NOT_CONFIGURED,
    },
)
async def delete_sso(
    slug: str,
    request: Request,
    response: Response,
    caller: Caller,
    reason: Annotated[Reason, Query()] = DEFAULT_DEACTIVATION_REASON,
) -> SSOConnection:
    """Cancel a configuration being tried (it is abandoned) and end the one in force:
    the organization's members sign in through the platform's provider again. Nothing
    of either: nothing changes (200)."""
    slug, org_id = await _administered(request, caller, slug)
    gateway = api_app.gateway_of(request)
    progress = await _progress(request, org_id)
    if progress is not None and progress.state in _RUNNING:
        handle = sso_configuration_handle(gateway.client, org_id)
        await handle.cancel()
        with suppress(WorkflowFailureError):  # cancelled: it abandoned the configuration
            await handle.result()
    row = await gateway.read(lambda rm: rm.sso_connection(org_id))
    if row is not None and row.status == "active":
        await deactivate_sso(
            gateway.client,
            SSODeactivationInput(organization_id=org_id, reason=reason),
            slug=slug,
            task_queue=gateway.task_queue,
        )
    await caught_up(request, response, caller)
    return await _view(request, slug, org_id)


# --- e-mail domains -------------------------------------------------------------------


def _refused(exc: WorkflowFailureError) -> ProblemError:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return from_workflow_refusal(cause.type, cause.message)
    return from_workflow_refusal(None, str(cause))


@router.post(
    "/organizations/{slug}/email-domains",
    response_model=EmailDomain,
    status_code=202,
    summary="Ask to own an e-mail domain: the TXT record to publish",
    responses={
        **written(202, "Requested: publish `record`, then POST …/verify", location=True),
        **_RESPONSES,
        **CONFLICT,
        **UNREADABLE_BODY,
        **_NOT_CONFIGURED,
    },
)
async def post_email_domain(
    slug: str, body: EmailDomainRequest, request: Request, response: Response, caller: Caller
) -> EmailDomain:
    """The TXT record (``_a4c-challenge.<domain>``) the organization publishes in the
    domain's DNS to prove it owns it; asked again, the same one. Then ``POST
    …/email-domains/{domain}/verify``. A domain another organization owns: 409
    ``email-domain-taken``."""
    slug, org_id = await _administered(request, caller, slug)
    gateway = api_app.gateway_of(request)
    try:
        outcome = await request_email_domain(
            gateway.client, org_id, body.domain, slug=slug, task_queue=gateway.task_queue
        )
    except WorkflowFailureError as exc:
        raise _refused(exc) from None
    assert outcome.challenge is not None  # the request activity always gives it
    response.headers["Location"] = str(request.url_for("list_email_domains", slug=slug).path)
    await caught_up(request, response, caller, wrote=outcome.written)
    return EmailDomain.build(outcome.domain, outcome.status, outcome.challenge)


@router.get(
    "/organizations/{slug}/email-domains",
    response_model=EmailDomainList,
    summary="The e-mail domains the organization asked to own",
    responses={**_RESPONSES, **_NOT_CONFIGURED},
)
async def list_email_domains(slug: str, request: Request, caller: Caller) -> EmailDomainList:
    """Each with its TXT record and whether it is verified."""
    org_id = await organization_for(request, caller, slug, Action.ADMINISTER)
    record, rows = await api_app.gateway_of(request).read(
        lambda rm: (rm.organization(org_id), rm.email_domains(org_id))
    )
    if record is None:
        raise not_found(slug)
    return EmailDomainList(
        organization=record.slug, email_domains=[EmailDomain.of(r) for r in rows]
    )


@router.post(
    "/organizations/{slug}/email-domains/{domain}/verify",
    response_model=EmailDomain,
    status_code=202,
    summary="Check the e-mail domain's DNS for its TXT record",
    responses={
        **written(202, "Checking, with back-off (GET the list to see it verified)"),
        **written(200, "Verified already", model=EmailDomain),
        **_RESPONSES,
        **CONFLICT,
        **_NOT_CONFIGURED,
    },
)
async def verify_email_domain(
    slug: str, domain: DomainPath, request: Request, response: Response, caller: Caller
) -> EmailDomain:
    """Look for the record in the domain's DNS now and then with back-off (about an
    hour and a half); found, the domain is the organization's. A check already running
    is joined; once one gave up, asking again checks again."""
    slug, org_id = await _administered(request, caller, slug)
    gateway = api_app.gateway_of(request)
    row = await gateway.read(lambda rm: rm.email_domain(org_id, domain))
    if row is None:
        raise from_domain(EmailDomainNotFound(domain.lower()))
    if row.status == "verified":
        response.status_code = 200
        await caught_up(request, response, caller, wrote=False)
        return EmailDomain.of(row)
    await start_email_domain_verification(
        gateway.client,
        EmailDomainVerificationInput(organization_id=org_id, domain=row.domain),
        slug=slug,
        task_queue=gateway.task_queue,
    )
    await caught_up(request, response, caller, wrote=False)
    return EmailDomain.of(row)
