"""The ``/v1`` JSON API for organization admins, platform operators and other services.

Every route takes ``Authorization: Bearer <API key or JWT>`` (:mod:`a4c_api.auth`) and
answers errors as problem+json; who may do what is :mod:`a4c_api.v1.access`. Writes go
through the workflows and then wait, bounded, for the read models to show them: the
``A4C-Consistent`` header of a write's answer says whether they did. ``/v1/events``
(:mod:`a4c_api.v1.events`) is the public events feed other services follow; the
webhook endpoints it is also pushed to are managed under ``…/webhook-endpoints``
(:mod:`a4c_api.v1.webhooks`).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from a4c_api.v1 import events, invitations, offboarding, organizations, sso, webhooks
from a4c_api.v1.common import temporal_errors

router = APIRouter(prefix="/v1", dependencies=[Depends(temporal_errors)])
router.include_router(organizations.router)
router.include_router(offboarding.router)
router.include_router(invitations.router)
router.include_router(events.router)
router.include_router(webhooks.router)
router.include_router(sso.router)
