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
What each route does is :mod:`a4c_api.v1.webhook_endpoints`, once for both owners.
"""

from __future__ import annotations

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
WRITE_ERRORS: Responses = {**ERRORS, **UNREADABLE_BODY, **CONFLICT}
CREATED: Responses = {
    **written(201, "Created (or again after a delete): the secret, this once", location=True),
    **written(
        200, "It exists with these settings: no secret", location=True, model=WebhookEndpoint
    ),
}

ORG = "/organizations/{slug}/webhook-endpoints"
ORG_ONE = ORG + "/{name}"
PLATFORM = "/webhook-endpoints"
PLATFORM_ONE = PLATFORM + "/{name}"
_DELETED = written(200, "Deleted: nothing is delivered to it any more")
_DISABLED = written(200, "Disabled: nothing is delivered to it until it is enabled")
_ENABLED = written(200, "Enabled: events from now on are delivered")
_ROTATED = written(200, "The new secret, this once")
_CHANGED = written(200, "Changed (or already so: then nothing was written)")


# --- an organization's ------------------------------------------------------------------


@router.post(
    ORG,
    response_model=WebhookEndpointSecret,
    status_code=201,
    summary="Create an organization's webhook endpoint",
    responses={**CREATED, **WRITE_ERRORS},
)
async def create_webhook_endpoint(
    body: EndpointSettings,
    request: Request,
    response: Response,
    owner: OrganizationOwner,
    caller: Caller,
) -> JSONResponse:
    """It gets the organization's events (those of ``event_types``, or every type).
    201 with the signing secret, shown this once; 200 without it when the same endpoint
    exists; 409 naming the fields when one of that name has other settings; 422 for a
    URL the rules refuse."""
    return await create(request, response, caller, owner, body, owner.id)


@router.get(
    ORG,
    response_model=WebhookEndpointList,
    summary="List an organization's webhook endpoints",
    responses=ERRORS,
)
async def list_webhook_endpoints(request: Request, owner: OrganizationOwner) -> WebhookEndpointList:
    """By name; deleted ones are not listed."""
    return await list_of(request, owner)


@router.get(
    ORG_ONE,
    response_model=WebhookEndpoint,
    summary="Get an organization's webhook endpoint",
    responses=ERRORS,
)
async def get_webhook_endpoint(
    name: Name, request: Request, owner: OrganizationOwner
) -> WebhookEndpoint:
    return await answer_of(request, await endpoint_row(request, owner, name))


@router.patch(
    ORG_ONE,
    response_model=WebhookEndpoint,
    summary="Change an organization's webhook endpoint",
    responses={**_CHANGED, **WRITE_ERRORS},
)
async def update_webhook_endpoint(
    name: Name,
    body: EndpointChanges,
    request: Request,
    response: Response,
    owner: OrganizationOwner,
    caller: Caller,
) -> WebhookEndpoint:
    """Its URL (checked as on create), event types or description; the name stays."""
    return await update(request, response, caller, owner, name, body, owner.id)


@router.delete(
    ORG_ONE,
    response_model=WebhookEndpoint,
    summary="Delete an organization's webhook endpoint",
    responses={**_DELETED, **ERRORS},
)
async def delete_webhook_endpoint(
    name: Name, request: Request, response: Response, owner: OrganizationOwner, caller: Caller
) -> WebhookEndpoint:
    """Gone from lists and reads (404); creating it again under its name brings it
    back, with a new secret."""
    return await answer_of(request, await change(request, response, caller, owner, name, "delete"))


@router.post(
    ORG_ONE + "/disable",
    response_model=WebhookEndpoint,
    summary="Disable an organization's webhook endpoint",
    responses={**_DISABLED, **WRITE_ERRORS},
)
async def disable_webhook_endpoint(
    name: Name,
    body: DisableBody,
    request: Request,
    response: Response,
    owner: OrganizationOwner,
    caller: Caller,
) -> WebhookEndpoint:
    """Events that happen while it is disabled are not sent later (replay them if wanted)."""
    view = await change(request, response, caller, owner, name, "disable", reason=body.reason)
    return await answer_of(request, view)


@router.post(
    ORG_ONE + "/enable",
    response_model=WebhookEndpoint,
    summary="Enable an organization's webhook endpoint",
    responses={**_ENABLED, **ERRORS},
)
async def enable_webhook_endpoint(
    name: Name, request: Request, response: Response, owner: OrganizationOwner, caller: Caller
) -> WebhookEndpoint:
    return await answer_of(request, await change(request, response, caller, owner, name, "enable"))


@router.post(
    ORG_ONE + "/rotate-secret",
    response_model=RotatedWebhookEndpoint,
    summary="Rotate the signing secret of an organization's webhook endpoint",
    responses={**_ROTATED, **WRITE_ERRORS},
)
async def rotate_webhook_secret(
    name: Name,
    body: RotateBody,
    request: Request,
    response: Response,
    owner: OrganizationOwner,
    caller: Caller,
) -> RotatedWebhookEndpoint:
    """A new secret, shown this once; the previous one signs too (a second signature in
    ``webhook-signature``) for ``overlap_seconds``, so receivers can switch over."""
    return await rotate(request, response, caller, owner, name, body)


# --- the platform's (operators) -----------------------------------------------------------


@router.post(
    PLATFORM,
    response_model=WebhookEndpointSecret,
    status_code=201,
    summary="Create a platform webhook endpoint (operators)",
    responses={**CREATED, **WRITE_ERRORS},
)
async def create_platform_webhook_endpoint(
    body: PlatformEndpointSettings,
    request: Request,
    response: Response,
    owner: PlatformOwner,
    caller: Caller,
) -> JSONResponse:
    """It gets every organization's events, or ``organization``'s only; answers as an
    organization's create does."""
    organization = await organization_filter(request, body.organization)
    return await create(request, response, caller, owner, body, organization)


@router.get(
    PLATFORM,
    response_model=WebhookEndpointList,
    summary="List every webhook endpoint (operators)",
    responses=ERRORS,
)
async def list_platform_webhook_endpoints(
    request: Request, owner: PlatformOwner
) -> WebhookEndpointList:
    """Every endpoint, the platform's first, then each organization's (``owner``), by
    name; deleted ones are not listed."""
    return await list_of(request, owner)


@router.get(
    PLATFORM_ONE,
    response_model=WebhookEndpoint,
    summary="Get a platform webhook endpoint (operators)",
    responses=ERRORS,
)
async def get_platform_webhook_endpoint(
    name: Name, request: Request, owner: PlatformOwner
) -> WebhookEndpoint:
    return await answer_of(request, await endpoint_row(request, owner, name))


@router.patch(
    PLATFORM_ONE,
    response_model=WebhookEndpoint,
    summary="Change a platform webhook endpoint (operators)",
    responses={**_CHANGED, **WRITE_ERRORS},
)
async def update_platform_webhook_endpoint(
    name: Name,
    body: PlatformEndpointChanges,
    request: Request,
    response: Response,
    owner: PlatformOwner,
    caller: Caller,
) -> WebhookEndpoint:
    """Its URL (checked as on create), event types, organization or description."""
    organization = await organization_filter(request, body.organization)
    return await update(request, response, caller, owner, name, body, organization)


@router.delete(
    PLATFORM_ONE,
    response_model=WebhookEndpoint,
    summary="Delete a platform webhook endpoint (operators)",
    responses={**_DELETED, **ERRORS},
)
async def delete_platform_webhook_endpoint(
    name: Name, request: Request, response: Response, owner: PlatformOwner, caller: Caller
) -> WebhookEndpoint:
    return await answer_of(request, await change(request, response, caller, owner, name, "delete"))


@router.post(
    PLATFORM_ONE + "/disable",
    response_model=WebhookEndpoint,
    summary="Disable a platform webhook endpoint (operators)",
    responses={**_DISABLED, **WRITE_ERRORS},
)
async def disable_platform_webhook_endpoint(
    name: Name,
    body: DisableBody,
    request: Request,
    response: Response,
    owner: PlatformOwner,
    caller: Caller,
) -> WebhookEndpoint:
    view = await change(request, response, caller, owner, name, "disable", reason=body.reason)
    return await answer_of(request, view)


@router.post(
    PLATFORM_ONE + "/enable",
    response_model=WebhookEndpoint,
    summary="Enable a platform webhook endpoint (operators)",
    responses={**_ENABLED, **ERRORS},
)
async def enable_platform_webhook_endpoint(
    name: Name, request: Request, response: Response, owner: PlatformOwner, caller: Caller
) -> WebhookEndpoint:
    return await answer_of(request, await change(request, response, caller, owner, name, "enable"))


@router.post(
    PLATFORM_ONE + "/rotate-secret",
    response_model=RotatedWebhookEndpoint,
    summary="Rotate the signing secret of a platform webhook endpoint (operators)",
    responses={**_ROTATED, **WRITE_ERRORS},
)
async def rotate_platform_webhook_secret(
    name: Name,
    body: RotateBody,
    request: Request,
    response: Response,
    owner: PlatformOwner,
    caller: Caller,
) -> RotatedWebhookEndpoint:
    return await rotate(request, response, caller, owner, name, body)
