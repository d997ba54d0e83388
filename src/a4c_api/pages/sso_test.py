"""The single sign-on test page: an organization's admin completes a real sign-in through
the organization's provider while its configuration waits for the test.

``GET /sso/test/{slug}``: an admin (owner or admin in the members read model) signed in
through the usual a4c sign-in gets the link to the pending provider's authorization
endpoint (the code flow with ``state``, ``nonce`` and PKCE ``S256``: kept in the sealed
session cookie the pages already use). Anyone else signs in first (then comes back here) or is
told they are not an admin. ``GET /sso/callback``: back from the provider, the code and
the PKCE verifier go to the configuration's workflow (``test_sign_in``), whose worker
exchanges and verifies them; the page shows the connection active, or the typed failure
(the run keeps waiting, so the admin may try again). Register ``API_PUBLIC_URL`` +
``/sso/callback`` as a redirect URI at the organization's provider.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import Request
from starlette.responses import Response
from temporalio.service import RPCError

from a4c_api import context as api
from a4c_api.pages import identity, sso_flight
from a4c_api.pages.notices import log, page_router, unavailable
from a4c_api.pages.paths import PATHS, SSO_CALLBACK_PATH, SSO_TEST_PATH
from a4c_api.pages.rendering import page
from a4c_api.pages.signin import NEXT_SESSION_KEY
from a4c_api.pages.sso_accept import SSO_ACCEPT_SESSION_KEY, finish_accept
from a4c_api.v1.access import ADMIN_ROLES
from a4c_domain.ids import organization_id
from a4c_domain.organization import is_inactive
from a4c_worker.sso_client import (
    SSOSignInFailed,
    SSOTestRefused,
    report_sso_test,
    sso_configuration_progress,
)
from a4c_worker.workflows.sso_models import SSOTestSignIn

router = page_router()
# The session entry of a test sign-in in flight (state, nonce, PKCE verifier...).
SSO_TEST_SESSION_KEY = "sso_test"
_STATUS = {
    "sign_in": 200,
    "ready": 200,
    "active": 200,
    "failed": 400,
    "not_admin": 403,
    "not_pending": 409,
}


def _page(request: Request, state: str, **context: Any) -> Response:
    return page(
        request,
        "sso_test.html",
        _STATUS[state],
        state=state,
        paths=PATHS,
        signed_in=identity.current(request),
        **context,
    )


async def _admin_of(request: Request, slug: str, person: identity.Identity) -> tuple[UUID, str]:
    """The organization's id and name if ``person`` administers it (else a ValueError)."""
    org_id = organization_id(slug)
    member, organization = await api.gateway_of(request).read(
        lambda rm: (rm.member(org_id, person.sub), rm.organization(org_id))
    )
    if (
        member is None
        or organization is None
        or member.role not in ADMIN_ROLES
        or is_inactive(organization.status)
    ):
        raise ValueError("not an admin of an active organization")
    return org_id, organization.name


@router.get(SSO_TEST_PATH + "/{slug}")
async def sso_test(request: Request, slug: str) -> Response:
    """Off to the organization's pending provider, once an admin is signed in."""
    settings = api.settings_of(request)
    person = identity.current(request)
    if person is None:
        request.session[NEXT_SESSION_KEY] = f"{SSO_TEST_PATH}/{slug}"
        return _page(
            request,
            "sign_in",
            organization_name=slug,
            oidc_sign_in=settings.oidc_enabled,
            dev_sign_in=settings.dev_sign_in,
        )
    try:
        org_id, name = await _admin_of(request, slug, person)
    except ValueError:
        return _page(request, "not_admin")
    gateway = api.gateway_of(request)
    if not gateway.connected:
        return unavailable(request)
    try:
        progress = await sso_configuration_progress(gateway.client, org_id)
    except RPCError:
        log.warning("the workflow service did not answer the SSO test page", exc_info=True)
        return unavailable(request)
    if (
        progress is None
        or progress.state != "waiting_for_test"
        or progress.authorization_endpoint is None
        or progress.generation is None
    ):
        return _page(request, "not_pending", organization_name=name)
    target = sso_flight.start(
        request,
        SSO_TEST_SESSION_KEY,
        authorization_endpoint=progress.authorization_endpoint,
        client_id=progress.client_id,
        keep={"slug": slug, "generation": progress.generation},
    )
    # A link, not a redirect: this page is often reached by the sign-in form's redirect,
    # and the pages' CSP (form-action 'self') rightly stops a form's redirect chain from
    # leaving for another origin.
    return _page(request, "ready", organization_name=name, issuer=progress.issuer, authorize=target)


@router.get(SSO_CALLBACK_PATH)
async def sso_callback(
    request: Request, code: str | None = None, state: str | None = None, error: str | None = None
) -> Response:
    """Back from the organization's provider: an invitee's acceptance (their flight), else
    an admin's test, its code to the configuration's workflow."""
    if (accepting := sso_flight.take(request, SSO_ACCEPT_SESSION_KEY, state)) is not None:
        return await finish_accept(request, accepting, code, error)
    flight = sso_flight.take(request, SSO_TEST_SESSION_KEY, state)
    if flight is None:
        return _page(request, "not_pending")
    slug = str(flight["slug"])
    again = f"{SSO_TEST_PATH}/{slug}"
    if error is not None or code is None:
        log.info("SSO test sign-in refused by the provider: %s", (error or "no code")[:40])
        return _page(
            request,
            "failed",
            failure_type="ProviderDenied",
            reason="the provider did not sign you in",
            again=again,
        )
    gateway = api.gateway_of(request)
    if not gateway.connected:
        return unavailable(request)
    sign_in = SSOTestSignIn(
        generation=int(flight["generation"]), **sso_flight.sign_in_code(flight, code).model_dump()
    )
    org_id = organization_id(slug)
    try:
        progress = await report_sso_test(gateway.client, org_id, sign_in)
    except SSOSignInFailed as exc:
        return _page(
            request, "failed", failure_type=exc.type or "SignInFailed", reason=str(exc), again=again
        )
    except SSOTestRefused:
        return _page(request, "not_pending")
    except RPCError:
        # The workflow service did not answer: the code may not have been spent, but the
        # person starts again from the test page (a code is good once, and briefly).
        log.warning("the workflow service did not take the SSO test sign-in", exc_info=True)
        return unavailable(request)
    if progress.state != "active":
        return _page(
            request,
            "failed",
            failure_type="NotActivated",
            reason=progress.error or progress.state,
            again=again,
        )
    return _page(request, "active", organization_name=slug, issuer=progress.issuer)
