"""``/v1/…/webhook-endpoints``: where a4c delivers webhooks, and for which events.

Two owners, the same routes: an organization's endpoints
(``/v1/organizations/{slug}/webhook-endpoints``: its owners, admins and API key; they get
its events only; another organization's is the 404 of a missing one, a plain member's
request a 403) and the platform's (``/v1/webhook-endpoints``: operators; every
organization's events, or one organization's). An endpoint is named by its owner; its id
follows from owner and name (:func:`a4c_domain.ids.webhook_endpoint_id`), so a create is
idempotent: the same settings again answer 200 (no secret), others 409 naming the fields.
The platform's list shows every endpoint, the organizations' too; its other routes act
on the platform's own endpoints (an organization's through the nested routes).

The signing secret is generated here, sealed with ``WEBHOOK_SECRET_KEYS`` at once and
sent on sealed; it is in exactly one answer, the 201 of a create or a rotation's, never
in a GET, a log line or an error. Without ``WEBHOOK_SECRET_KEYS`` every route answers
503. A URL is checked where it is set: https (http in development only), a host whose
every address is public (``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` lifts that); the delivery
daemon checks again at each connection, against DNS rebinding. Writes go through the
endpoint's workflow, then wait for the read models like any write (``A4C-Consistent``).
What each route does is :mod:`a4c_api.v1.webhook_endpoints`, once for both owners; the
routes themselves are written once too (:func:`add_routes`), each owner (:class:`OwnerKind`)
giving only its paths, route names, OpenAPI words and body models.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from a4c_api.v1.common import (
    COMMON_ERRORS,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    UNREADABLE_BODY,
    Responses,
    written,
)
from a4c_api.v1.webhook_endpoints import (
    Caller,
    Name,
    OrganizationOwner,
    Owner,
    PlatformOwner,
    answer_of,
    change,
    create,
    endpoint_row,
    list_of,
    organization_filter,
    rotate,
    update,
)
from a4c_api.v1.webhook_models import (
    DisableBody,
    EndpointChanges,
    EndpointSettings,
    PlatformEndpointChanges,
    PlatformEndpointSettings,
    RotateBody,
    RotatedWebhookEndpoint,
    WebhookEndpoint,
    WebhookEndpointList,
    WebhookEndpointSecret,
)

router: APIRouter = APIRouter(tags=["webhooks"])

# OpenAPI: what the webhook routes may answer besides their success.
NOT_CONFIGURED: Responses = {
    503: {
        "description": "Webhooks are not configured on this service (WEBHOOK_SECRET_KEYS), "
        "or a part the request needs did not answer (Retry-After)",
        "model": COMMON_ERRORS[503]["model"],
        "content": COMMON_ERRORS[503]["content"],
    }
}
ERRORS: Responses = {**COMMON_ERRORS, **NOT_CONFIGURED, **NOT_FOUND, **FORBIDDEN}
# An organization's create past API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION (no Retry-After:
# nothing frees a place but a delete).
TOO_MANY_ENDPOINTS: Responses = {
    429: {
        "description": "The organization has as many webhook endpoints as allowed "
        "(API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION): delete one first",
        "model": COMMON_ERRORS[422]["model"],
        "content": COMMON_ERRORS[422]["content"],
    }
}
WRITE_ERRORS: Responses = {**ERRORS, **UNREADABLE_BODY, **CONFLICT}
CREATED: Responses = {
    **written(201, "Created (or again after a delete): the secret, this once", location=True),
    **written(
        200, "It exists with these settings: no secret", location=True, model=WebhookEndpoint
    ),
}

ORG = "/organizations/{slug}/webhook-endpoints"
PLATFORM = "/webhook-endpoints"
ONE = "/{name}"
_DELETED = written(200, "Deleted: nothing is delivered to it any more")
_DISABLED = written(200, "Disabled: nothing is delivered to it until it is enabled")
_ENABLED = written(200, "Enabled: events from now on are delivered")
_ROTATED = written(200, "The new secret, this once")
_CHANGED = written(200, "Changed (or already so: then nothing was written)")


# The body of a create or an update, whichever owner's.
Body = EndpointSettings | EndpointChanges
Route = TypeVar("Route", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class OwnerKind:
    """What one owner's routes have of their own; all else they share (:func:`add_routes`)."""

    path: str  # the endpoints' collection
    owner: Any  # the type of a route's ``owner``: an :class:`Owner`, with the dependency giving it
    prefix: str  # in each route's name (so its operationId and url_for name), after the verb
    one: str  # an endpoint, in the summaries
    every: str  # the endpoints listed, in the list's summary
    settings: type[EndpointSettings]  # a create's body
    changes: type[EndpointChanges]  # an update's body
    # Whose events the endpoint gets, from a create's or an update's body.
    organization: Callable[[Request, Owner, Body], Awaitable[UUID | None]]
    # A route's OpenAPI description, by the route's verb (cleaned as a docstring is); a verb
    # not here has none.
    descriptions: Mapping[str, str]
    # What a create may answer besides what every owner's may (an organization's limit).
    create_errors: Responses


async def _its_own(request: Request, owner: Owner, body: Body) -> UUID | None:
    """An organization's endpoint gets that organization's events, whatever the body."""
    return owner.id


async def _named(request: Request, owner: Owner, body: Body) -> UUID | None:
    """A platform endpoint gets the events of the organization its body names (422 if
    none has that slug), or every organization's."""
    assert isinstance(body, PlatformEndpointSettings | PlatformEndpointChanges)
    return await organization_filter(request, body.organization)


ORGANIZATION_OWNED = OwnerKind(
    path=ORG,
    owner=OrganizationOwner,
    prefix="",
    one="an organization's webhook endpoint",
    every="an organization's webhook endpoints",
    settings=EndpointSettings,
    changes=EndpointChanges,
    organization=_its_own,
    create_errors=TOO_MANY_ENDPOINTS,
    descriptions={
        "create": """
            It gets the organization's events (those of ``event_types``, or every type).
            201 with the signing secret, shown this once; 200 without it when the same endpoint
            exists; 409 naming the fields when one of that name has other settings; 422 for a
            URL the rules refuse; 429 when the organization has as many endpoints as
            allowed (``API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION``).""",
        "list": "By name; deleted ones are not listed.",
        "update": "Its URL (checked as on create), event types or description; the name stays.",
        "delete": """
            Gone from lists and reads (404); creating it again under its name brings it
            back, with a new secret.""",
        "disable": """
            Events that happen while it is disabled are not sent later (replay them if wanted).""",
        "rotate": """
            A new secret, shown this once; the previous one signs too (a second signature in
            ``webhook-signature``) for ``overlap_seconds``, so receivers can switch over.""",
    },
)
PLATFORM_OWNED = OwnerKind(
    path=PLATFORM,
    owner=PlatformOwner,
    prefix="platform_",
    one="a platform webhook endpoint (operators)",
    every="every webhook endpoint (operators)",
    settings=PlatformEndpointSettings,
    changes=PlatformEndpointChanges,
    organization=_named,
    create_errors={},
    descriptions={
        "create": """
            It gets every organization's events, or ``organization``'s only; answers as an
            organization's create does.""",
        "list": """
            Every endpoint, the platform's first, then each organization's (``owner``), by
            name; deleted ones are not listed.""",
        "update": "Its URL (checked as on create), event types, organization or description.",
    },
)


def add_routes(router: APIRouter, kind: OwnerKind) -> None:
    """``kind``'s eight routes on ``router``, what they do being
    :mod:`a4c_api.v1.webhook_endpoints`'. Each function is named as the organization's
    route is (``kind`` renames it) and has no docstring: its OpenAPI description is
    ``kind``'s."""

    def route(
        method: str, path: str, summary: str, *, body: type[Any] | None = None, **options: Any
    ) -> Callable[[Route], Route]:
        def register(endpoint: Route) -> Route:
            verb, rest = endpoint.__name__.split("_", 1)
            name = f"{verb}_{kind.prefix}{rest}"
            # FastAPI reads the owner's dependency and the body's model from the annotations.
            endpoint.__annotations__["owner"] = kind.owner
            if body is not None:
                endpoint.__annotations__["body"] = body
            endpoint.__name__ = endpoint.__qualname__ = name
            router.add_api_route(
                kind.path + path,
                endpoint,
                methods=[method],
                name=name,
                summary=summary,
                description=inspect.cleandoc(kind.descriptions.get(verb, "")),
                **options,
            )
            return endpoint

        return register

    @route(
        "POST",
        "",
        f"Create {kind.one}",
        body=kind.settings,
        response_model=WebhookEndpointSecret,
        status_code=201,
        responses={**CREATED, **WRITE_ERRORS, **kind.create_errors},
    )
    async def create_webhook_endpoint(
        body: EndpointSettings, request: Request, response: Response, owner: Owner, caller: Caller
    ) -> JSONResponse:
        organization = await kind.organization(request, owner, body)
        return await create(request, response, caller, owner, body, organization)

    @route("GET", "", f"List {kind.every}", response_model=WebhookEndpointList, responses=ERRORS)
    async def list_webhook_endpoints(request: Request, owner: Owner) -> WebhookEndpointList:
        return await list_of(request, owner)

    @route("GET", ONE, f"Get {kind.one}", response_model=WebhookEndpoint, responses=ERRORS)
    async def get_webhook_endpoint(name: Name, request: Request, owner: Owner) -> WebhookEndpoint:
        return await answer_of(request, await endpoint_row(request, owner, name))

    @route(
        "PATCH",
        ONE,
        f"Change {kind.one}",
        body=kind.changes,
        response_model=WebhookEndpoint,
        responses={**_CHANGED, **WRITE_ERRORS},
    )
    async def update_webhook_endpoint(
        name: Name,
        body: EndpointChanges,
        request: Request,
        response: Response,
        owner: Owner,
        caller: Caller,
    ) -> WebhookEndpoint:
        organization = await kind.organization(request, owner, body)
        return await update(request, response, caller, owner, name, body, organization)

    @route(
        "DELETE",
        ONE,
        f"Delete {kind.one}",
        response_model=WebhookEndpoint,
        responses={**_DELETED, **ERRORS},
    )
    async def delete_webhook_endpoint(
        name: Name, request: Request, response: Response, owner: Owner, caller: Caller
    ) -> WebhookEndpoint:
        view = await change(request, response, caller, owner, name, "delete")
        return await answer_of(request, view)

    @route(
        "POST",
        ONE + "/disable",
        f"Disable {kind.one}",
        response_model=WebhookEndpoint,
        responses={**_DISABLED, **WRITE_ERRORS},
    )
    async def disable_webhook_endpoint(
        name: Name,
        body: DisableBody,
        request: Request,
        response: Response,
        owner: Owner,
        caller: Caller,
    ) -> WebhookEndpoint:
        view = await change(request, response, caller, owner, name, "disable", reason=body.reason)
        return await answer_of(request, view)

    @route(
        "POST",
        ONE + "/enable",
        f"Enable {kind.one}",
        response_model=WebhookEndpoint,
        responses={**_ENABLED, **ERRORS},
    )
    async def enable_webhook_endpoint(
        name: Name, request: Request, response: Response, owner: Owner, caller: Caller
    ) -> WebhookEndpoint:
        view = await change(request, response, caller, owner, name, "enable")
        return await answer_of(request, view)

    @route(
        "POST",
        ONE + "/rotate-secret",
        f"Rotate the signing secret of {kind.one}",
        response_model=RotatedWebhookEndpoint,
        responses={**_ROTATED, **WRITE_ERRORS},
    )
    async def rotate_webhook_secret(
        name: Name,
        body: RotateBody,
        request: Request,
        response: Response,
        owner: Owner,
        caller: Caller,
    ) -> RotatedWebhookEndpoint:
        return await rotate(request, response, caller, owner, name, body)


add_routes(router, ORGANIZATION_OWNED)
add_routes(router, PLATFORM_OWNED)
