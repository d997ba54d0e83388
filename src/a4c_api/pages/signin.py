"""Signing in and out on the pages: the dev sign-in, OpenID Connect (to the provider and
back), sign-out (at the provider too where it offers that). A method this instance does
not offer is 404 before anything else is looked at; every way in or out renews the CSRF
token. Who a sign-in establishes is :mod:`a4c_api.pages.identity`'s to say."""

from __future__ import annotations

import re

from fastapi import Depends, Request
from starlette.responses import Response

from a4c_api import context as api
from a4c_api.pages import identity
from a4c_api.pages.forms import CheckedForm, checked_form
from a4c_api.pages.notices import Answered, log, notice, page_router, unavailable
from a4c_api.pages.paths import (
    OIDC_CALLBACK_PATH,
    PATHS,
    SIGN_IN_DEV_PATH,
    SIGN_IN_OIDC_PATH,
    SIGN_OUT_PATH,
    SSO_TEST_PATH,
)
from a4c_api.pages.rendering import page, redirect, renew_csrf, secured
from a4c_worker.config import ACCEPT_PATH

router = page_router()
NEXT_SESSION_KEY = "next"  # a4c_api.pages.sso_test's
_SSO_TEST_NEXT = re.compile(re.escape(SSO_TEST_PATH) + r"/[a-z0-9-]{1,63}")
# What a failed OpenID round trip shows (why goes to the log).
_DID_NOT_COMPLETE = "The sign-in did not complete."


def _next(request: Request) -> str:
    """Where a sign-in returns to: the SSO test page it started from, else the
    invitation (never anywhere else: the value is ours, and checked all the same)."""
    wanted = request.session.pop(NEXT_SESSION_KEY, None)
    if isinstance(wanted, str) and _SSO_TEST_NEXT.fullmatch(wanted):
        return wanted
    return ACCEPT_PATH


def dev_sign_in_offered(request: Request) -> None:
    """Dependency: the dev sign-in is switched on here, else the not-found page."""
    if not api.settings_of(request).dev_sign_in:
        raise Answered(notice(request, "not_found"))


def oidc_offered(request: Request) -> None:
    """Dependency: an OpenID provider is configured here, else the not-found page."""
    if not api.settings_of(request).oidc_enabled:
        raise Answered(notice(request, "not_found"))


def _sign_in_refused(request: Request, method: str, exc: identity.IdentityError) -> Response:
    """The refusal page, and why in the log (the reason in words, never who)."""
    log.info("%s sign-in refused: %s", method, exc.reason)
    return notice(request, "sign_in_failed", reason=str(exc))


# Offered first, then the form: a sign-in not offered reads nothing of the request.
@router.post(SIGN_IN_DEV_PATH, dependencies=[Depends(dev_sign_in_offered)])
async def sign_in_dev(request: Request, form: CheckedForm) -> Response:
    """Development: sign in as the address typed (no password, no check)."""
    address = form.get("email")
    try:
        person = identity.dev_identity(address if isinstance(address, str) else "")
    except identity.IdentityError as exc:
        return _sign_in_refused(request, "dev", exc)
    identity.sign_in(request, person)
    renew_csrf(request)
    return redirect(_next(request))


@router.get(SIGN_IN_OIDC_PATH, dependencies=[Depends(oidc_offered)])
async def sign_in_oidc(request: Request) -> Response:
    """Off to the OpenID provider (authorization code flow with PKCE)."""
    settings = api.settings_of(request)
    # After a sign-out at a provider offering no logout: let the person pick an account.
    choose = request.session.pop(identity.SELECT_ACCOUNT_SESSION_KEY, False)
    extra = {"prompt": identity.SELECT_ACCOUNT} if choose else {}
    try:
        client = await identity.oidc_client(request, settings)
        response: Response = await client.authorize_redirect(
            request, settings.api_public_url + OIDC_CALLBACK_PATH, **extra
        )
    except identity.ProviderError as exc:
        log.error("the OpenID provider cannot be used: %s", exc)
        return unavailable(request)
    except Exception:
        log.warning("the OpenID provider could not be reached", exc_info=True)
        return unavailable(request)
    return secured(response)


@router.get(OIDC_CALLBACK_PATH, dependencies=[Depends(oidc_offered)])
async def oidc_callback(request: Request) -> Response:
    """Back from the provider: Authlib checks state, the code exchange and the ID token."""
    from authlib.integrations.base_client import OAuthError

    try:
        client = await identity.oidc_client(request, api.settings_of(request))
        person, id_token = await identity.oidc_sign_in(request, client)
    except identity.IdentityError as exc:
        return _sign_in_refused(request, "OpenID", exc)
    except OAuthError as exc:
        # The provider's error code and Authlib's description (e.g. a state mismatch).
        log.info("OpenID sign-in refused: %s (%s)", exc.error, exc.description)
        return notice(request, "sign_in_failed", reason=_DID_NOT_COMPLETE)
    except Exception:
        log.warning("OpenID sign-in failed", exc_info=True)
        return notice(request, "sign_in_failed", reason=_DID_NOT_COMPLETE)
    identity.sign_in(request, person, id_token)
    renew_csrf(request)
    return redirect(_next(request))


@router.post(SIGN_OUT_PATH, dependencies=[Depends(checked_form)])
async def sign_out(request: Request) -> Response:
    """Sign out here and, for an OpenID sign-in, at the provider too (RP-initiated logout)
    where it offers that; else its next sign-in lets the person choose an account."""
    person = identity.current(request)
    id_token = identity.sign_out(request)
    renew_csrf(request)
    if person is None or person.method != "oidc":
        return redirect(ACCEPT_PATH)
    settings = api.settings_of(request)
    try:
        client = await identity.oidc_client(request, settings)
        logout = await identity.logout_url(client, id_token, settings.api_public_url + ACCEPT_PATH)
    except Exception:
        log.warning("the OpenID provider's logout could not be found", exc_info=True)
        logout = None
    if logout is None:
        request.session[identity.SELECT_ACCOUNT_SESSION_KEY] = True
        return redirect(ACCEPT_PATH)
    # A page that moves on (Refresh), not a redirect: browsers hold a form's redirects to
    # the page's CSP form-action ('self'), which the provider is not.
    return page(
        request,
        "signed_out.html",
        headers={"Refresh": f"0; url={logout}"},
        paths=PATHS,
        logout_url=logout,
        signed_in=None,
    )
