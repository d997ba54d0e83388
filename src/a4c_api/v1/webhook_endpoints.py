"""What the ``/v1`` webhook endpoint routes (:mod:`a4c_api.v1.webhooks`) do, once for
both owners: whose endpoints a route acts on (:class:`Owner`), reading them, and each
change through the endpoint's workflow.

Secrets: :func:`create` and :func:`rotate` generate one (:func:`a4c_webhooks.signing.new_secret`),
seal it at once with ``WEBHOOK_SECRET_KEYS`` and send only the sealed text; the secret
itself goes into their answer and nowhere else (no log line, no error, no workflow).

An organization has at most ``API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION`` endpoints (not
deleted): each multiplies every event of it into deliveries. :func:`create` counts them
on the read model with the ones this replica created that it does not show yet
(:func:`ledger_of`, :mod:`a4c_api.v1.books`), one create at a time per organization and
replica; across replicas, within the projection's lag, an organization gets at most
replicas times the limit. The platform's endpoints (the operators') are not limited.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError
from temporalio.client import WorkflowFailureError

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.problems import ProblemError, from_domain, problem
from a4c_api.v1.access import Action, not_found, organization_for, require_operator
from a4c_api.v1.books import OrganizationBook, OrganizationBooks, app_state
from a4c_api.v1.common import caught_up
from a4c_api.v1.webhook_models import (
    EndpointChanges,
    EndpointSettings,
    RotateBody,
    RotatedWebhookEndpoint,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointSecret,
)
from a4c_domain.errors import (
    InvalidCommand,
    WebhookEndpointConflict,
    WebhookEndpointDeleted,
    WebhookEndpointNotFound,
)
from a4c_domain.fields import EndpointName
from a4c_domain.ids import organization_id, webhook_endpoint_id
from a4c_domain.scope import ALL_ORGANIZATIONS
from a4c_domain.views import WebhookEndpointView
from a4c_outbound.transport import OutboundPolicy, UnsafeURL, check_destination
from a4c_projector.queries import ReadModel
from a4c_projector.webhook_queries import WebhookEndpointRow
from a4c_webhooks.sealing import SecretKeys
from a4c_webhooks.signing import new_secret
from a4c_worker.client import WebhookEndpointRefused, change_webhook_endpoint
from a4c_worker.workflows.models import WebhookEndpointChange

log = logging.getLogger(__name__)
# How long resolving an endpoint's host may take before the URL is refused (seconds).
RESOLVE_TIMEOUT = 5.0
_NAME: TypeAdapter[str] = TypeAdapter(EndpointName)
ENDPOINT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"  # EndpointName's
# What a domain conflict calls a field, in the request's terms.
_FIELD_NAMES = {"organization_id": "organization"}

# --- who, and whose endpoints ---------------------------------------------------------


def secret_keys(request: Request) -> SecretKeys | None:
    """The app's webhook secret keys, parsed once (None: webhooks are not configured)."""
    state = request.app.state
    if not hasattr(state, "webhook_secret_keys"):
        configured = api_app.settings_of(request).webhook_secret_keys
        state.webhook_secret_keys = (
            None if configured is None else SecretKeys.parse(configured.get_secret_value())
        )
    found: SecretKeys | None = state.webhook_secret_keys
    return found


async def webhook_caller(
    request: Request, caller: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """The authenticated caller, once webhooks are known to be configured (else 503)."""
    if secret_keys(request) is None:
        raise problem(
            503,
            "webhooks are not configured on this service (WEBHOOK_SECRET_KEYS)",
            kind="webhooks-not-configured",
        )
    return caller


Caller = Annotated[Principal, Depends(webhook_caller)]
Name = Annotated[
    str,
    Path(
        description="The endpoint's name: 1-63 of a-z, 0-9 and '-', not starting with '-'",
        max_length=63,
        pattern=ENDPOINT_NAME_PATTERN,
    ),
]


@dataclass(frozen=True)
class Owner:
    """Whose endpoints a route acts on: an organization's (its id and slug) or the
    platform's (``id`` None)."""

    id: UUID | None
    slug: str | None

    def endpoint_id(self, name: str) -> UUID:
        return webhook_endpoint_id(self.id, name)


async def organization_owner(slug: str, request: Request, caller: Caller) -> Owner:
    """Organization ``slug``, if the caller administers it (else the one 404, or 403)."""
    org_id = await organization_for(request, caller, slug, Action.ADMINISTER)
    found = await api_app.gateway_of(request).read(lambda rm: rm.organization(org_id))
    if found is None:
        raise not_found(slug)
    return Owner(id=org_id, slug=found.slug)


async def platform_owner(caller: Caller) -> Owner:
    require_operator(caller)
    return Owner(id=None, slug=None)


OrganizationOwner = Annotated[Owner, Depends(organization_owner)]
PlatformOwner = Annotated[Owner, Depends(platform_owner)]


# --- reading ------------------------------------------------------------------------------


def _not_found(name: str) -> ProblemError:
    return from_domain(WebhookEndpointNotFound(name))


async def endpoint_row(request: Request, owner: Owner, name: str) -> WebhookEndpointRow:
    """Endpoint ``name`` of ``owner`` (404 when unknown, deleted, or another owner's)."""
    try:
        valid = _NAME.validate_python(name)
    except ValidationError:
        raise _not_found(name) from None  # no endpoint can have it
    endpoint_id = owner.endpoint_id(valid)
    found = await api_app.gateway_of(request).read(lambda rm: rm.webhook_endpoint(endpoint_id))
    if found is None or found.status == "deleted" or found.owner_id != owner.id:
        raise _not_found(name)
    return found


async def _slugs(request: Request, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    wanted = sorted(ids)
    found = await api_app.gateway_of(request).read(lambda rm: rm.organizations(ids=wanted))
    return {o.id: o.slug for o in found}


def _answer(
    found: WebhookEndpointRow | WebhookEndpointView, slugs: dict[UUID, str]
) -> WebhookEndpoint:
    def slug(org_id: UUID | None) -> str | None:
        return None if org_id is None else slugs.get(org_id, str(org_id))

    created, updated = (
        (found.created_at, found.modified_at)
        if isinstance(found, WebhookEndpointRow)
        else (found.created_on, found.modified_on)
    )
    return WebhookEndpoint(
        id=found.id,
        name=found.name,
        owner=slug(found.owner_id),
        url=found.url,
        event_types=None if found.event_types is None else list(found.event_types),
        organization=slug(found.organization_id),
        description=found.description,
        status=found.status,
        disabled_reason=found.disabled_reason,
        disabled_automatically=found.disabled_automatically,
        created_at=created,
        updated_at=updated,
    )


async def _answers(
    request: Request, found: list[WebhookEndpointRow | WebhookEndpointView]
) -> list[WebhookEndpoint]:
    ids = {i for f in found for i in (f.owner_id, f.organization_id) if i is not None}
    slugs = await _slugs(request, ids)
    return [_answer(f, slugs) for f in found]


async def answer_of(
    request: Request, found: WebhookEndpointRow | WebhookEndpointView
) -> WebhookEndpoint:
    [answer] = await _answers(request, [found])
    return answer


async def list_of(request: Request, owner: Owner) -> WebhookEndpointList:
    whose = ALL_ORGANIZATIONS if owner.id is None else owner.id  # operators see every one
    rows = await api_app.gateway_of(request).read(lambda rm: rm.webhook_endpoints(whose))
    return WebhookEndpointList(webhook_endpoints=await _answers(request, list(rows)))


# --- writing ------------------------------------------------------------------------------


def _invalid(field: str, message: str) -> InvalidCommand:
    return InvalidCommand("WebhookEndpoint", [{"field": field, "message": message}])


async def _require_safe_url(request: Request, url: str) -> None:
    """The URL's rules (https unless in development; every address public unless
    allowed), the host resolved now: 422 naming the problem."""
    settings = api_app.settings_of(request)
    policy = OutboundPolicy(
        allow_http=not settings.production,
        allow_private=settings.webhook_allow_private_addresses,
    )
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            await check_destination(url, policy)
    except UnsafeURL as exc:
        raise _invalid("url", exc.reason) from None
    except TimeoutError:
        raise _invalid("url", f"the host did not resolve within {RESOLVE_TIMEOUT:g} s") from None


async def organization_filter(request: Request, slug: str | None) -> UUID | None:
    """The id of the organization a platform endpoint is narrowed to (422 if none has it)."""
    if slug is None:
        return None
    found = await api_app.gateway_of(request).read(lambda rm: rm.organization_by_slug(slug))
    if found is None:
        raise _invalid("organization", "no organization has this slug")
    return organization_id(slug)


async def _send(request: Request, change: WebhookEndpointChange) -> WebhookEndpointView:
    """The change, through the endpoint's workflow; a domain refusal as its problem."""
    gateway = api_app.gateway_of(request)
    name = change.name or ""
    try:
        return await change_webhook_endpoint(gateway.client, change, task_queue=gateway.task_queue)
    except WebhookEndpointRefused as exc:
        if exc.kind == "not_found":
            raise _not_found(name) from None
        if exc.kind == "conflict":
            differences = {_FIELD_NAMES.get(k, k): v for k, v in exc.differences.items()}
            raise from_domain(
                WebhookEndpointConflict(
                    f"webhook endpoint {name!r} already exists with different "
                    + ", ".join(sorted(differences)),
                    differences,
                )
            ) from None
        if exc.kind == "deleted":
            raise from_domain(WebhookEndpointDeleted(exc.message)) from None
        errors = [
            {**e, "field": _FIELD_NAMES.get(e.get("field", ""), e.get("field", ""))}
            for e in exc.errors
        ] or [{"field": "request", "message": exc.message}]
        raise from_domain(InvalidCommand("WebhookEndpoint", errors)) from None
    except WorkflowFailureError as exc:  # not a refusal: the store stayed out of reach
        log.error("a webhook endpoint's workflow failed: %s", type(exc.cause).__name__)
        raise problem(
            502, "the workflow failed; see the service's logs", kind="workflow-failed"
        ) from None


def _location(request: Request, owner: Owner, name: str) -> str:
    if owner.slug is None:
        return str(request.url_for("get_platform_webhook_endpoint", name=name).path)
    return str(request.url_for("get_webhook_endpoint", slug=owner.slug, name=name).path)


def _json(answer: WebhookEndpoint, response: Response, status: int) -> JSONResponse:
    """``answer`` with the headers set on ``response`` (its model is chosen here, not by
    the route: a create's 201 holds the secret, its 200 does not)."""
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return JSONResponse(answer.model_dump(mode="json"), status_code=status, headers=headers)


@dataclass
class Creating(OrganizationBook):
    """One organization's creates on this replica: one at a time, and the endpoints they
    made that the read model did not show yet when they answered."""

    unshown: set[UUID] = field(default_factory=set)

    def empty(self) -> bool:
        return not self.unshown


def ledger_of(request: Request) -> OrganizationBooks[Creating]:
    """Per organization (one per replica), its creates in progress and the endpoints the
    read model does not show yet (at most the limit: each passed the check)."""
    return app_state(
        request, "webhook_create_ledger", lambda: OrganizationBooks(Creating), OrganizationBooks
    )


async def _require_room(request: Request, owner: Owner, book: Creating, endpoint_id: UUID) -> None:
    """Refuse a new endpoint of an organization that has as many as allowed (429
    ``too-many-webhook-endpoints`` naming the limit; deleting one makes room). The same
    create again, or another of an existing name, is the workflow's to answer."""
    org_id = owner.id
    assert org_id is not None  # the platform's are not limited
    unshown = sorted(book.unshown)

    def count(rm: ReadModel) -> tuple[set[UUID], set[UUID]]:
        rows = rm.webhook_endpoints(org_id)
        shown = {e for e in unshown if rm.webhook_endpoint(e) is not None}
        return {r.id for r in rows}, shown

    live, shown = await api_app.gateway_of(request).read(count)
    book.unshown -= shown
    live |= book.unshown
    limit = api_app.settings_of(request).api_max_webhook_endpoints_per_organization
    if endpoint_id not in live and len(live) >= limit:
        raise problem(
            429,
            f"organization {owner.slug!r} has {limit} webhook endpoints, as many as "
            "allowed; delete one first",
            kind="too-many-webhook-endpoints",
        )


async def create(
    request: Request,
    response: Response,
    caller: Principal,
    owner: Owner,
    body: EndpointSettings,
    organization: UUID | None,
) -> JSONResponse:
    await _require_safe_url(request, body.url)
    keys = secret_keys(request)
    assert keys is not None  # webhook_caller saw to it
    secret = new_secret()
    endpoint_id = owner.endpoint_id(body.name)
    adding = WebhookEndpointChange(
        action="add",
        scope=owner.id,
        endpoint_id=endpoint_id,
        owner_id=owner.id,
        name=body.name,
        url=body.url,
        event_types=body.event_types,
        organization_id=organization,
        description=body.description,
        secret=keys.seal(secret),
    )
    if owner.id is None:
        view = await _send(request, adding)
        created = view.position is not None  # else it existed with these settings
        await caught_up(request, response, caller, wrote=created)
    else:
        async with ledger_of(request).checking(owner.id) as book:
            await _require_room(request, owner, book, endpoint_id)
            view = await _send(request, adding)
            created = view.position is not None
            if not await caught_up(request, response, caller, wrote=created) and created:
                book.unshown.add(endpoint_id)  # counted until the read model shows it
    response.headers["Location"] = _location(request, owner, body.name)
    answer = await answer_of(request, view)
    if not created:
        return _json(answer, response, 200)
    shown = WebhookEndpointSecret(**answer.model_dump(), secret=secret)
    return _json(shown, response, 201)


async def change(
    request: Request,
    response: Response,
    caller: Principal,
    owner: Owner,
    name: str,
    action: str,
    **fields: Any,
) -> WebhookEndpointView:
    """One change to endpoint ``name`` through its workflow, then the wait for the read
    models; the endpoint as the change left it."""
    found = await endpoint_row(request, owner, name)
    view = await _send(
        request,
        WebhookEndpointChange.model_validate(
            {
                "action": action,
                "scope": owner.id,
                "endpoint_id": found.id,
                "owner_id": found.owner_id,
                "name": found.name,
                **fields,
            }
        ),
    )
    await caught_up(request, response, caller)
    return view


async def update(
    request: Request,
    response: Response,
    caller: Principal,
    owner: Owner,
    name: str,
    body: EndpointChanges,
    organization: UUID | None,
) -> WebhookEndpoint:
    """The endpoint with ``body``'s fields changed (``organization``: already resolved,
    used only when the body sets it). Nothing changed: nothing is written."""
    found = await endpoint_row(request, owner, name)
    given = body.model_fields_set
    recorded = None if found.event_types is None else list(found.event_types)
    url = found.url if body.url is None else body.url
    current: dict[str, Any] = {
        "url": found.url,
        "event_types": recorded,
        "organization_id": found.organization_id,
        "description": found.description,
    }
    wanted: dict[str, Any] = {
        "url": url,
        "event_types": body.event_types if "event_types" in given else recorded,
        "organization_id": organization if "organization" in given else found.organization_id,
        "description": found.description if body.description is None else body.description,
    }
    if wanted == current:
        await caught_up(request, response, caller, wrote=False)
        return await answer_of(request, found)
    if url != found.url:
        await _require_safe_url(request, url)
    view = await change(request, response, caller, owner, name, "change", **wanted)
    return await answer_of(request, view)


async def rotate(
    request: Request,
    response: Response,
    caller: Principal,
    owner: Owner,
    name: str,
    body: RotateBody,
) -> RotatedWebhookEndpoint:
    keys = secret_keys(request)
    assert keys is not None  # webhook_caller saw to it
    secret = new_secret()
    expires = datetime.now(UTC) + timedelta(seconds=body.overlap_seconds)
    view = await change(
        request,
        response,
        caller,
        owner,
        name,
        "rotate",
        secret=keys.seal(secret),
        previous_secret_expires_at=expires,
    )
    answer = await answer_of(request, view)
    return RotatedWebhookEndpoint(
        **answer.model_dump(), secret=secret, previous_secret_expires_at=expires
    )
