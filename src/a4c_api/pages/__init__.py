"""The invitee's pages (HTML): the accept link from the e-mail, sign-in, accept, done.

The link (``ACCEPT_PATH?token=...``) is answered by a redirect to the bare path, the
token kept in the session: it leaves the address bar, the browser's history and any
screenshot or shared screen at once, survives the sign-in round trip to the OpenID
provider without riding in its ``redirect_uri``, and is never re-sent in a URL (only
the first request carries it, and the access log drops query strings). The session
cookie is signed, HTTP-only and SameSite=Lax, and holds the token only as long as the
browser that opened the link keeps it.

What the bare path shows follows the read models (:func:`classify`): the invitation's
state decides the page; a token nobody was issued and a malformed one get the same page
and status, so a guesser learns nothing. Accepting goes through the invitation's
workflow (``a4c_worker.client.accept_invitation``): the API writes nothing itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from a4c_api import context as api
from a4c_api.pages import identity
from a4c_api.pages.forms import read_form
from a4c_api.pages.rendering import (
    CSRF_FIELD,
    csrf_valid,
    page,
    redirect,
    renew_csrf,
    secured,
)
from a4c_api.pages.throttle import Throttled, client_address, throttle_of
from a4c_api.privacy import mask_email
from a4c_api.problems import ERROR_TYPES, ProblemError
from a4c_domain import errors
from a4c_domain.commands import Token
from a4c_projector.queries import OrganizationRecord, ReadModel
from a4c_worker.client import accept_invitation
from a4c_worker.config import ACCEPT_PATH

if TYPE_CHECKING:
    from a4c_projector.queries import TokenMatch

router = APIRouter(include_in_schema=False)
log = logging.getLogger(__name__)

SIGN_IN_DEV_PATH = "/sign-in/dev"
SIGN_IN_OIDC_PATH = "/sign-in/oidc"
# Register ``API_PUBLIC_URL`` + this as the client's redirect URI at the provider.
OIDC_CALLBACK_PATH = "/sign-in/oidc/callback"
SIGN_OUT_PATH = "/sign-out"
STYLESHEET_PATH = "/assets/a4c.css"
PATHS = {
    "accept": ACCEPT_PATH,
    "sign_in_dev": SIGN_IN_DEV_PATH,
    "sign_in_oidc": SIGN_IN_OIDC_PATH,
    "sign_out": SIGN_OUT_PATH,
    "css": STYLESHEET_PATH,
}

# The session key of the token from the link; longer input is cut (it is no token anyway,
# and the cookie stays small).
TOKEN_SESSION_KEY = "invitation_token"  # noqa: S105 - a key's name, not a secret
MAX_TOKEN_INPUT = 64
_TOKEN: TypeAdapter[Any] = TypeAdapter(Token)

State = Literal["unknown", "inactive", "accepted", "revoked", "expired", "superseded", "pending"]
# What each page answers with; its wording is in templates/notice.html, by state.
NOTICE_STATUS: dict[str, int] = {
    "unknown": 404,  # unknown and malformed tokens alike
    "inactive": 410,
    "accepted": 410,
    "revoked": 410,
    "expired": 410,
    "superseded": 410,
    "wrong_person": 403,
    "csrf": 403,
    "rate_limited": 429,
    "sign_in_failed": 400,
    "not_found": 404,
    "unavailable": 503,
}
# Counted in ``a4c_api_invitation_accepts{outcome}``: a fixed set of outcomes.
Outcome = Literal[
    "accepted",
    "csrf_failed",
    "signed_out",
    "rate_limited",
    "wrong_person",
    "not_pending",
    "invalid_token",
    "stale_form",
    "unavailable",
]


def classify(
    match: TokenMatch | None, organization: OrganizationRecord | None, now: datetime
) -> State:
    """Which page a token's invitation gets, most final state first."""
    if match is None or organization is None:
        return "unknown"
    invitation = match.invitation
    if organization.status == "deactivated":
        return "inactive"
    if invitation.status == "accepted":
        return "accepted"
    if invitation.status == "revoked":
        return "revoked"
    if invitation.status == "expired" or _aware(invitation.expires_at) <= now:
        return "expired"  # the expiry is due; the workflow records it shortly
    if not match.current:
        return "superseded"
    return "pending"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _utc(moment: datetime) -> str:
    moment = _aware(moment).astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _well_formed(token: str) -> bool:
    try:
        _TOKEN.validate_python(token)
    except ValidationError:
        return False
    return True


def _find(token: str) -> Any:
    def query(read_model: ReadModel) -> tuple[TokenMatch | None, OrganizationRecord | None]:
        match = read_model.token_match(token)
        if match is None:
            return None, None
        return match, read_model.organization(match.invitation.organization_id)

    return query


async def _look_up(
    request: Request,
) -> tuple[State, TokenMatch | None, OrganizationRecord | None]:
    token = request.session.get(TOKEN_SESSION_KEY)
    if not isinstance(token, str) or not _well_formed(token):
        return "unknown", None, None
    match, organization = await api.gateway_of(request).read(_find(token))
    return classify(match, organization, datetime.now(UTC)), match, organization


def _notice(
    request: Request, state: str, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    return page(
        request,
        "notice.html",
        NOTICE_STATUS[state],
        headers=headers,
        state=state,
        paths=PATHS,
        signed_in=identity.current(request),
        **context,
    )


def _state_page(
    request: Request,
    state: State,
    match: TokenMatch | None,
    organization: OrganizationRecord | None,
) -> Response:
    signed_in = identity.current(request)
    if state != "pending" or match is None or organization is None:
        name = organization.name if organization is not None and state != "unknown" else None
        return _notice(request, state, organization_name=name)
    invitation = match.invitation
    settings = api.settings_of(request)
    return page(
        request,
        "invitation.html",
        paths=PATHS,
        organization_name=organization.name,
        role=invitation.role,
        invited=mask_email(invitation.email),
        expires=_utc(invitation.expires_at),
        invitation_id=str(invitation.id),
        signed_in=signed_in,
        is_invited=signed_in is not None and signed_in.is_invited(invitation.email),
        dev_sign_in=settings.dev_sign_in,
        oidc_sign_in=settings.oidc_enabled,
    )


def _unavailable(request: Request) -> Response:
    return _notice(request, "unavailable", headers={"Retry-After": "5"})


def _throttled(request: Request, throttled: Throttled) -> Response:
    return _notice(
        request,
        "rate_limited",
        headers={"Retry-After": str(throttled.retry_after)},
        retry_after=throttled.retry_after,
    )


@router.get(ACCEPT_PATH)
async def invitation_page(request: Request, token: str | None = None) -> Response:
    """The link from the e-mail (``?token=``) and, after the redirect, the bare page."""
    if token is not None:
        request.session[TOKEN_SESSION_KEY] = token[:MAX_TOKEN_INPUT]
        return redirect(ACCEPT_PATH)
    try:
        state, match, organization = await _look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return _unavailable(request)
    return _state_page(request, state, match, organization)


@router.post(ACCEPT_PATH)
async def accept(request: Request) -> Response:
    """The Accept button: CSRF, who, rate limits, the right person, then the workflow."""
    form = await read_form(request)
    metrics = api.metrics_of(request)

    def counted(outcome: Outcome, response: Response) -> Response:
        metrics.accepts.labels(outcome).inc()
        return response

    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return counted("csrf_failed", _notice(request, "csrf"))
    person = identity.current(request)
    if person is None:
        return counted("signed_out", redirect(ACCEPT_PATH))
    throttle = throttle_of(request, api.settings_of(request))
    if throttled := await throttle.client(client_address(request)):
        return counted("rate_limited", _throttled(request, throttled))
    try:
        state, match, organization = await _look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return counted("unavailable", _unavailable(request))
    if state != "pending" or match is None or organization is None:
        return counted("not_pending", _state_page(request, state, match, organization))
    invitation = match.invitation
    if form.get("invitation_id") != str(invitation.id):
        # The page was for another invitation (a second link opened in another tab since):
        # show the one this session now holds rather than accept something not shown.
        return counted("stale_form", redirect(ACCEPT_PATH))
    if throttled := await throttle.invitation(invitation.id):
        return counted("rate_limited", _throttled(request, throttled))
    if not person.is_invited(invitation.email):
        return counted(
            "wrong_person",
            _notice(request, "wrong_person", invited=mask_email(invitation.email)),
        )
    token = request.session[TOKEN_SESSION_KEY]
    gateway = api.gateway_of(request)
    try:
        await accept_invitation(gateway.client, invitation.id, token, person.sub)
    except WorkflowUpdateFailedError as exc:
        return await _refused(request, exc.cause, invitation.id, person.sub, counted)
    except (ProblemError, RPCError):
        log.warning("accepting invitation %s failed", invitation.id, exc_info=True)
        return counted("unavailable", _unavailable(request))
    await gateway.catch_up(person.sub)  # within the person's own bound of waits
    return counted(
        "accepted",
        page(
            request,
            "joined.html",
            paths=PATHS,
            organization_name=organization.name,
            role=invitation.role,
            signed_in=person,
        ),
    )


async def _refused(
    request: Request,
    cause: BaseException | None,
    invitation_id: UUID,
    principal: str,
    counted: Callable[[Outcome, Response], Response],
) -> Response:
    """The page for a refusal the workflow answered with (its ``ApplicationError`` type);
    ``principal``: who tried (the signed-in person's subject), whose waits are bounded."""
    kind = cause.type if isinstance(cause, ApplicationError) else None
    found = ERROR_TYPES.get(kind or "")
    if found is not None and issubclass(found, errors.TooManyAttempts):
        assert isinstance(cause, ApplicationError)
        wait = cause.details[0] if cause.details else 60
        retry_after = max(1, round(float(wait))) if isinstance(wait, int | float) else 60
        return counted("rate_limited", _throttled(request, Throttled(retry_after)))
    if found is not None and issubclass(found, errors.InvalidToken):
        # The read model had it as current: a re-send raced this accept.
        return counted("invalid_token", _notice(request, "superseded"))
    if found is not None and issubclass(
        found, errors.InvitationNotPending | errors.OrganizationInactive
    ):
        # The workflow is ahead of the projection: wait for it, then show what it says.
        try:
            await api.gateway_of(request).catch_up(principal)
            state, match, organization = await _look_up(request)
        except Exception:
            log.exception("reading the invitation failed")
            return counted("unavailable", _unavailable(request))
        if state == "pending":
            state = _STATE_OF_REFUSAL.get(found, "expired")
        return counted("not_pending", _state_page(request, state, match, organization))
    log.error("accepting invitation %s failed: %s", invitation_id, kind)
    return counted("unavailable", _unavailable(request))


_STATE_OF_REFUSAL: dict[type[errors.A4CError], State] = {
    errors.InvitationAlreadyAccepted: "accepted",
    errors.InvitationRevoked: "revoked",
    errors.InvitationExpired: "expired",
    errors.OrganizationInactive: "inactive",
}


# --- sign-in ---------------------------------------------------------------------------


@router.post(SIGN_IN_DEV_PATH)
async def sign_in_dev(request: Request) -> Response:
    """Development: sign in as the address typed (no password, no check)."""
    if not api.settings_of(request).dev_sign_in:
        return _notice(request, "not_found")
    form = await read_form(request)
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return _notice(request, "csrf")
    address = form.get("email")
    try:
        person = identity.dev_identity(address if isinstance(address, str) else "")
    except identity.IdentityError as exc:
        return _sign_in_refused(request, "dev", exc)
    identity.sign_in(request, person)
    renew_csrf(request)
    return redirect(ACCEPT_PATH)


def _sign_in_refused(request: Request, method: str, exc: identity.IdentityError) -> Response:
    """The refusal page, and why in the log (the reason in words, never who)."""
    log.info("%s sign-in refused: %s", method, exc.reason)
    return _notice(request, "sign_in_failed", reason=str(exc))


@router.get(SIGN_IN_OIDC_PATH)
async def sign_in_oidc(request: Request) -> Response:
    """Off to the OpenID provider (authorization code flow with PKCE)."""
    settings = api.settings_of(request)
    if not settings.oidc_enabled:
        return _notice(request, "not_found")
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
        return _unavailable(request)
    except Exception:
        log.warning("the OpenID provider could not be reached", exc_info=True)
        return _unavailable(request)
    return secured(response)


@router.get(OIDC_CALLBACK_PATH)
async def oidc_callback(request: Request) -> Response:
    """Back from the provider: Authlib checks state, the code exchange and the ID token."""
    from authlib.integrations.base_client import OAuthError

    settings = api.settings_of(request)
    if not settings.oidc_enabled:
        return _notice(request, "not_found")
    try:
        client = await identity.oidc_client(request, settings)
        person, id_token = await identity.oidc_sign_in(request, client)
    except identity.IdentityError as exc:
        return _sign_in_refused(request, "OpenID", exc)
    except OAuthError as exc:
        # The provider's error code and Authlib's description (e.g. a state mismatch).
        log.info("OpenID sign-in refused: %s (%s)", exc.error, exc.description)
        return _notice(request, "sign_in_failed", reason="The sign-in did not complete.")
    except Exception:
        log.warning("OpenID sign-in failed", exc_info=True)
        return _notice(request, "sign_in_failed", reason="The sign-in did not complete.")
    identity.sign_in(request, person, id_token)
    renew_csrf(request)
    return redirect(ACCEPT_PATH)


@router.post(SIGN_OUT_PATH)
async def sign_out(request: Request) -> Response:
    """Sign out here and, for an OpenID sign-in, at the provider too (RP-initiated logout)
    where it offers that; else its next sign-in lets the person choose an account."""
    form = await read_form(request)
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return _notice(request, "csrf")
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


@cache
def _stylesheet() -> bytes:
    return resources.files("a4c_api.pages").joinpath("static", "a4c.css").read_bytes()


@router.get(STYLESHEET_PATH)
async def stylesheet() -> Response:
    # Public and cacheable: the one response of these pages that carries nothing personal.
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
