"""The invitation's page and its Accept button (see docs/design/pages.md).

``GET ACCEPT_PATH?token=`` keeps the token in the session and redirects to the bare
path, which shows what the read models say of the invitation (:func:`classify`); an
unknown token and a malformed one get the same page. ``POST ACCEPT_PATH`` accepts
through the invitation's workflow, every outcome counted in
``a4c_api_invitation_accepts{outcome}``; the API writes nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from a4c_api import context as api
from a4c_api.pages import identity
from a4c_api.pages.forms import csrf_checked
from a4c_api.pages.notices import log, notice, page_router, throttled, unavailable
from a4c_api.pages.paths import PATHS
from a4c_api.pages.rendering import page, redirect
from a4c_api.pages.throttle import Throttled, client_address, throttle_of
from a4c_api.privacy import mask_email
from a4c_api.problems import ERROR_TYPES, ProblemError
from a4c_domain import errors
from a4c_domain.commands import Token
from a4c_domain.email_domains import email_domain_of
from a4c_domain.organization import is_inactive
from a4c_projector.queries import OrganizationRecord, ReadModel
from a4c_projector.sso_queries import InviteeSSO
from a4c_worker.client import accept_invitation
from a4c_worker.config import ACCEPT_PATH

if TYPE_CHECKING:
    from a4c_projector.queries import TokenMatch

router = page_router()

# The session key of the token from the link; longer input is cut (it is no token anyway,
# and the cookie stays small).
TOKEN_SESSION_KEY = "invitation_token"  # noqa: S105 - a key's name, not a secret
MAX_TOKEN_INPUT = 64
_TOKEN: TypeAdapter[Any] = TypeAdapter(Token)

State = Literal["unknown", "inactive", "accepted", "revoked", "expired", "superseded", "pending"]
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
    "sso_required",
    "sign_in_failed",
]


def classify(
    match: TokenMatch | None, organization: OrganizationRecord | None, now: datetime
) -> State:
    """Which page a token's invitation gets, most final state first."""
    if match is None or organization is None:
        return "unknown"
    invitation = match.invitation
    if is_inactive(organization.status):
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


@dataclass(frozen=True)
class LookedUp:
    """What the read models say of the session's invitation: its ``state``, the token's
    ``match`` and ``organization`` (None when unknown), and ``sso``: the provider its
    organization's single sign-on makes this invitee sign in through, if any."""

    state: State
    match: TokenMatch | None = None
    organization: OrganizationRecord | None = None
    sso: InviteeSSO | None = None


def _find(token: str) -> Callable[[ReadModel], LookedUp]:
    def query(read_model: ReadModel) -> LookedUp:
        match = read_model.token_match(token)
        if match is None:
            return LookedUp("unknown")
        invitation = match.invitation
        organization = read_model.organization(invitation.organization_id)
        sso = read_model.invitee_sso(invitation.organization_id, email_domain_of(invitation.email))
        state = classify(match, organization, datetime.now(UTC))
        return LookedUp(state, match, organization, sso)

    return query


async def look_up(request: Request) -> LookedUp:
    """The session's invitation, as the read models have it."""
    token = request.session.get(TOKEN_SESSION_KEY)
    if not isinstance(token, str) or not _well_formed(token):
        return LookedUp("unknown")
    return await api.gateway_of(request).read(_find(token))


def state_page(request: Request, found: LookedUp, state: State | None = None) -> Response:
    """The page for ``found`` (shown as ``state`` when given: what a refusal told)."""
    state = state or found.state
    match, organization = found.match, found.organization
    signed_in = identity.current(request)
    if state != "pending" or match is None or organization is None:
        name = organization.name if organization is not None and state != "unknown" else None
        return notice(request, state, organization_name=name)
    invitation = match.invitation
    settings = api.settings_of(request)
    sign_ins: dict[str, Any] = {
        "is_invited": signed_in is not None and signed_in.is_invited(invitation.email),
        "sso_state": None,
        "dev_sign_in": settings.dev_sign_in,
        "oidc_sign_in": settings.oidc_enabled,
    }
    if found.sso is not None:
        # Only the organization's provider, and signing in there is the acceptance.
        ready = found.sso.authorization_endpoint is not None
        sign_ins = {
            "is_invited": False,
            "sso_state": "ready" if ready else "unreachable",
            "dev_sign_in": False,
            "oidc_sign_in": False,
        }
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
        **sign_ins,
    )


def count(request: Request, outcome: Outcome) -> None:
    api.metrics_of(request).accepts.labels(outcome).inc()


def _csrf_failed(request: Request) -> None:
    count(request, "csrf_failed")


# The Accept button's form; a refused CSRF token is an accept outcome too.
AcceptForm = Annotated[dict[str, str], Depends(csrf_checked(on_refusal=_csrf_failed))]


@router.get(ACCEPT_PATH)
async def invitation_page(request: Request, token: str | None = None) -> Response:
    """The link from the e-mail (``?token=``) and, after the redirect, the bare page."""
    if token is not None:
        request.session[TOKEN_SESSION_KEY] = token[:MAX_TOKEN_INPUT]
        return redirect(ACCEPT_PATH)
    try:
        found = await look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return unavailable(request)
    return state_page(request, found)


@router.post(ACCEPT_PATH)
async def accept(request: Request, form: AcceptForm) -> Response:
    """The Accept button: who, rate limits, the right person, then the workflow."""

    counted = counter(request)

    person = identity.current(request)
    if person is None:
        return counted("signed_out", redirect(ACCEPT_PATH))
    throttle = throttle_of(request, api.settings_of(request))
    if refusal := await throttle.client(client_address(request)):
        return counted("rate_limited", throttled(request, refusal))
    try:
        found = await look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return counted("unavailable", unavailable(request))
    match, organization = found.match, found.organization
    if found.state != "pending" or match is None or organization is None:
        return counted("not_pending", state_page(request, found))
    if found.sso is not None:
        # Only a sign-in through the organization's provider accepts (the domain refuses
        # any other too): the page says so.
        return counted("sso_required", state_page(request, found))
    invitation = match.invitation
    if form.get("invitation_id") != str(invitation.id):
        # The page was for another invitation (a second link opened in another tab since):
        # show the one this session now holds rather than accept something not shown.
        return counted("stale_form", redirect(ACCEPT_PATH))
    if refusal := await throttle.invitation(invitation.id):
        return counted("rate_limited", throttled(request, refusal))
    if not person.is_invited(invitation.email):
        return counted(
            "wrong_person",
            notice(request, "wrong_person", invited=mask_email(invitation.email)),
        )
    token = request.session[TOKEN_SESSION_KEY]
    gateway = api.gateway_of(request)
    try:
        await accept_invitation(
            gateway.client,
            invitation.id,
            token,
            person.sub,
            person.sign_in_identity(api.settings_of(request)),
        )
    except WorkflowUpdateFailedError as exc:
        return await refused(request, exc.cause, invitation.id, person.sub, counted)
    except (ProblemError, RPCError):
        log.warning("accepting invitation %s failed", invitation.id, exc_info=True)
        return counted("unavailable", unavailable(request))
    await gateway.catch_up(person.sub)  # within the person's own bound of waits
    return counted("accepted", joined(request, organization, invitation.role, person))


def joined(
    request: Request, organization: OrganizationRecord, role: str, person: identity.Identity
) -> Response:
    """The page of someone who just joined ``organization`` as ``role``."""
    return page(
        request,
        "joined.html",
        paths=PATHS,
        organization_name=organization.name,
        role=role,
        signed_in=person,
    )


def counter(request: Request) -> Callable[[Outcome, Response], Response]:
    """Counts a response in ``a4c_api_invitation_accepts{outcome}`` and returns it."""

    def counted(outcome: Outcome, response: Response) -> Response:
        count(request, outcome)
        return response

    return counted


async def refused(
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
        return counted("rate_limited", throttled(request, Throttled(retry_after)))
    if found is not None and issubclass(found, errors.InvalidToken):
        # The read model had it as current: a re-send raced this accept.
        return counted("invalid_token", notice(request, "superseded"))
    if found is not None and issubclass(
        found, errors.InvitationNotPending | errors.OrganizationInactive | errors.SSORequired
    ):
        # The workflow is ahead of the projection: wait for it, then show what it says.
        try:
            await api.gateway_of(request).catch_up(principal)
            now = await look_up(request)
        except Exception:
            log.exception("reading the invitation failed")
            return counted("unavailable", unavailable(request))
        if issubclass(found, errors.SSORequired):
            return counted("sso_required", state_page(request, now))
        state = _STATE_OF_REFUSAL.get(found, "expired") if now.state == "pending" else None
        return counted("not_pending", state_page(request, now, state))
    log.error("accepting invitation %s failed: %s", invitation_id, kind)
    return counted("unavailable", unavailable(request))


_STATE_OF_REFUSAL: dict[type[errors.A4CError], State] = {
    errors.InvitationAlreadyAccepted: "accepted",
    errors.InvitationRevoked: "revoked",
    errors.InvitationExpired: "expired",
    errors.OrganizationInactive: "inactive",
}
