"""The invitation's page and its Accept button (see docs/design/pages.md).

``GET ACCEPT_PATH?token=`` keeps the token in the session and redirects to the bare
path, which shows what the read models say of the invitation (:func:`classify`); an
unknown token and a malformed one get the same page. ``POST ACCEPT_PATH`` accepts
through the invitation's workflow, every outcome counted in
``a4c_api_invitation_accepts{outcome}``; the API writes nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable
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
from a4c_domain.organization import is_inactive
from a4c_projector.queries import OrganizationRecord, ReadModel
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


def _state_page(
    request: Request,
    state: State,
    match: TokenMatch | None,
    organization: OrganizationRecord | None,
) -> Response:
    signed_in = identity.current(request)
    if state != "pending" or match is None or organization is None:
        name = organization.name if organization is not None and state != "unknown" else None
        return notice(request, state, organization_name=name)
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


def _count(request: Request, outcome: Outcome) -> None:
    api.metrics_of(request).accepts.labels(outcome).inc()


def _csrf_failed(request: Request) -> None:
    _count(request, "csrf_failed")


# The Accept button's form; a refused CSRF token is an accept outcome too.
AcceptForm = Annotated[dict[str, str], Depends(csrf_checked(on_refusal=_csrf_failed))]


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
        return unavailable(request)
    return _state_page(request, state, match, organization)


@router.post(ACCEPT_PATH)
async def accept(request: Request, form: AcceptForm) -> Response:
    """The Accept button: who, rate limits, the right person, then the workflow."""

    def counted(outcome: Outcome, response: Response) -> Response:
        _count(request, outcome)
        return response

    person = identity.current(request)
    if person is None:
        return counted("signed_out", redirect(ACCEPT_PATH))
    throttle = throttle_of(request, api.settings_of(request))
    if refusal := await throttle.client(client_address(request)):
        return counted("rate_limited", throttled(request, refusal))
    try:
        state, match, organization = await _look_up(request)
    except Exception:
        log.exception("reading the invitation failed")
        return counted("unavailable", unavailable(request))
    if state != "pending" or match is None or organization is None:
        return counted("not_pending", _state_page(request, state, match, organization))
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
        await accept_invitation(gateway.client, invitation.id, token, person.sub)
    except WorkflowUpdateFailedError as exc:
        return await _refused(request, exc.cause, invitation.id, person.sub, counted)
    except (ProblemError, RPCError):
        log.warning("accepting invitation %s failed", invitation.id, exc_info=True)
        return counted("unavailable", unavailable(request))
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
        return counted("rate_limited", throttled(request, Throttled(retry_after)))
    if found is not None and issubclass(found, errors.InvalidToken):
        # The read model had it as current: a re-send raced this accept.
        return counted("invalid_token", notice(request, "superseded"))
    if found is not None and issubclass(
        found, errors.InvitationNotPending | errors.OrganizationInactive
    ):
        # The workflow is ahead of the projection: wait for it, then show what it says.
        try:
            await api.gateway_of(request).catch_up(principal)
            state, match, organization = await _look_up(request)
        except Exception:
            log.exception("reading the invitation failed")
            return counted("unavailable", unavailable(request))
        if state == "pending":
            state = _STATE_OF_REFUSAL.get(found, "expired")
        return counted("not_pending", _state_page(request, state, match, organization))
    log.error("accepting invitation %s failed: %s", invitation_id, kind)
    return counted("unavailable", unavailable(request))


_STATE_OF_REFUSAL: dict[type[errors.A4CError], State] = {
    errors.InvitationAlreadyAccepted: "accepted",
    errors.InvitationRevoked: "revoked",
    errors.InvitationExpired: "expired",
    errors.OrganizationInactive: "inactive",
}
