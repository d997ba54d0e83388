"""Accepting an invitation by signing in through the organization's own provider.

Where an organization's single sign-on is in force and it verified the invited
address's e-mail domain, the invitation page offers only that provider (the platform's
sign-in and the dev sign-in are refused for this invitee, by the page and by the domain).
``GET SIGN_IN_SSO_PATH`` starts the code flow for the session's invitation (a link, so
the browser may leave for the provider; :mod:`.sso_flight` keeps ``state``, ``nonce``
and the PKCE verifier in the sealed session). Back at ``SSO_CALLBACK_PATH``, the code
goes to the invitation's workflow (``accept_with_sso``), whose worker exchanges and
verifies it; the domain accepts if the verified address is the invited one. The person
is then signed in as the provider said (method ``sso``). Every outcome is counted in
``a4c_api_invitation_accepts{outcome}``; the accept limits (per client, per
invitation) hold as for the Accept button.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from a4c_api import context as api
from a4c_api.pages import accept, identity, sso_flight
from a4c_api.pages.notices import log, notice, page_router, throttled, unavailable
from a4c_api.pages.paths import SIGN_IN_SSO_PATH
from a4c_api.pages.rendering import redirect, renew_csrf, secured
from a4c_api.pages.throttle import client_address, throttle_of
from a4c_api.privacy import mask_email
from a4c_api.problems import ProblemError
from a4c_domain.errors import SSOConfigurationNotPending, SSOConnectionNotFound
from a4c_sso.errors import CodeRejected, EmailNotVerified, InvalidIDToken
from a4c_worker.client import accept_invitation_with_sso
from a4c_worker.config import ACCEPT_PATH

router = page_router()
# The session entry of an invitee's sign-in in flight.
SSO_ACCEPT_SESSION_KEY = "sso_accept"
# Refusals that mean the sign-in proved nothing: the person may simply try again.
_SIGN_IN_FAILED = frozenset(e.__name__ for e in (CodeRejected, InvalidIDToken, EmailNotVerified))
_DID_NOT_COMPLETE = "The sign-in did not complete."
# The organization has no provider in force any more (deactivated meanwhile).
_NO_PROVIDER_IN_FORCE = frozenset(
    e.__name__ for e in (SSOConfigurationNotPending, SSOConnectionNotFound)
)


@router.get(SIGN_IN_SSO_PATH)
async def sign_in_sso(request: Request) -> Response:
    """Off to the organization's provider, for the invitation in this session."""
    try:
        found = await accept.look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return unavailable(request)
    sso, match = found.sso, found.match
    if found.state != "pending" or match is None or sso is None:
        return redirect(ACCEPT_PATH)  # the invitation's page says what there is to do
    if sso.authorization_endpoint is None:
        log.error("the organization's provider has no known authorization endpoint")
        return unavailable(request)
    target = sso_flight.start(
        request,
        SSO_ACCEPT_SESSION_KEY,
        authorization_endpoint=sso.authorization_endpoint,
        client_id=sso.client_id,
        keep={"invitation_id": str(match.invitation.id), "issuer": sso.issuer},
    )
    return secured(redirect(target))


async def finish_accept(
    request: Request, flight: dict[str, Any], code: str | None, error: str | None
) -> Response:
    """Back from the provider with the invitee's sign-in: accept through the workflow."""
    counted = accept.counter(request)
    if error is not None or code is None:
        log.info("SSO sign-in refused by the provider: %s", (error or "no code")[:40])
        return counted("sign_in_failed", _sign_in_failed(request))
    throttle = throttle_of(request, api.settings_of(request))
    if refusal := await throttle.client(client_address(request)):
        return counted("rate_limited", throttled(request, refusal))
    try:
        found = await accept.look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return counted("unavailable", unavailable(request))
    match, organization = found.match, found.organization
    if found.state != "pending" or match is None or organization is None:
        return counted("not_pending", accept.state_page(request, found))
    invitation = match.invitation
    if flight.get("invitation_id") != str(invitation.id):
        return counted("stale_form", redirect(ACCEPT_PATH))  # another link opened since
    if refusal := await throttle.invitation(invitation.id):
        return counted("rate_limited", throttled(request, refusal))
    gateway = api.gateway_of(request)
    token = request.session[accept.TOKEN_SESSION_KEY]
    sign_in = sso_flight.sign_in_code(flight, code)
    try:
        status = await accept_invitation_with_sso(gateway.client, invitation.id, token, sign_in)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        kind = cause.type if isinstance(cause, ApplicationError) else None
        if kind == "IdentityMismatch":
            invited = mask_email(invitation.email)
            return counted("wrong_person", notice(request, "wrong_person", invited=invited))
        if kind in _SIGN_IN_FAILED:
            log.info("SSO sign-in proved nothing: %s", kind)
            return counted("sign_in_failed", _sign_in_failed(request))
        if kind in _NO_PROVIDER_IN_FORCE:
            # Single sign-on ended while the person was at the provider: the page now
            # offers the other sign-ins.
            return counted("stale_form", redirect(ACCEPT_PATH))
        return await accept.refused(request, cause, invitation.id, str(invitation.id), counted)
    except (ProblemError, RPCError):
        log.warning("accepting invitation %s failed", invitation.id, exc_info=True)
        return counted("unavailable", unavailable(request))
    email = identity.normalised_email(invitation.email) or invitation.email
    assert status.accepted_by is not None and status.accepted_issuer is not None
    assert status.accepted_subject is not None
    person = identity.Identity(
        sub=status.accepted_by,
        email=email,
        method="sso",
        issuer=status.accepted_issuer,
        subject=status.accepted_subject,
    )
    identity.sign_in(request, person)
    renew_csrf(request)
    await gateway.catch_up(person.sub)  # within the person's own bound of waits
    return counted("accepted", accept.joined(request, organization, invitation.role, person))


def _sign_in_failed(request: Request) -> Response:
    return notice(request, "sign_in_failed", reason=_DID_NOT_COMPLETE)
