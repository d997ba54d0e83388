"""``GET /v1/events``: the public events, in the order they were stored, after a cursor.

The rows come from the projector's ``public_events`` read model, which it writes in the
same transaction as its tracking position: a row is there only once the no-skip guard
has proven that no event before it can still commit. So a consumer that passes each
answer's ``next`` back as ``after`` sees every event exactly once, in position order,
whatever the writers do (a retried request may see a page again: deduplicate by ``id``).

Who sees what (as the rest of ``/v1``, :mod:`a4c_api.v1.access`): a platform operator
every organization's events (``organization`` narrows them); an organization's API key
its organization's; a person the organizations they own or administer (403 for one who
administers none; ``organization`` naming one they do not administer: 404, or 403
inside their own organization). Another tenant's events are never read.

``next`` is the cursor of the last row answered; on an empty page it is the projection's
position read before the page was (every row up to it was visible to the page's read,
so none is skipped), or ``after`` if that is further, so a consumer filtering for rare
types does not read the same stretch again and again. Retention is unlimited: the rows
are the event store's, projected.
"""

from __future__ import annotations

import heapq
import json
import re
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AfterValidator, WithJsonSchema

from a4c_api import context as api_app
from a4c_api.auth import Principal, authenticate
from a4c_api.v1.access import ADMIN_ROLES, Action, forbidden, not_found, organization_for
from a4c_api.v1.common import COMMON_ERRORS, FORBIDDEN, NOT_FOUND
from a4c_api.v1.cursor import Cursor, Instant, encode_cursor
from a4c_api.v1.models import EventPage
from a4c_domain.public_events import PUBLIC_EVENT_TYPES
from a4c_projector.queries import ReadModel

router: APIRouter = APIRouter(tags=["events"])
Caller = Annotated[Principal, Depends(authenticate)]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
_TYPE = "|".join(re.escape(t) for t in sorted(PUBLIC_EVENT_TYPES))
# Exactly what ``types`` may be, so the document allows no value the service refuses.
TYPES_PATTERN = rf"^(?:{_TYPE})(?:,(?:{_TYPE}))*$"
TYPES_MAX_LENGTH = 1024

Row = tuple[int, str]  # (position, the PublicEvent's JSON)


def known_types(raw: str) -> str:
    """``types`` as given, if it names only public types: each unknown one is named in
    the 422."""
    unknown = sorted(set(raw.split(",")) - PUBLIC_EVENT_TYPES)
    if unknown:
        raise ValueError("unknown event type " + ", ".join(repr(t) for t in unknown))
    return raw


# A string (a set would make FastAPI take the parameter repeated, not comma-separated).
EventTypes = Annotated[
    str,
    AfterValidator(known_types),
    WithJsonSchema({"type": "string", "pattern": TYPES_PATTERN}),
]


async def _scope(request: Request, caller: Principal, slug: str | None) -> list[UUID] | None:
    """The organizations whose events ``caller`` reads: None for every one (operators)."""
    if slug is not None:
        person = not caller.operator and caller.organization_id is None
        org_id = await organization_for(
            request, caller, slug, Action.ADMINISTER if person else Action.READ
        )
        if not person:
            # A person is a member of an organization that exists; for a key, say whether
            # it does (a bootstrap whose registration the projection does not show yet
            # is not found either: it has no events yet).
            record = await api_app.gateway_of(request).read(lambda rm: rm.organization(org_id))
            if record is None:
                raise not_found(slug)
        return [org_id]
    if caller.operator:
        return None
    if caller.organization_id is not None:
        return [caller.organization_id]
    memberships = await api_app.gateway_of(request).read(lambda rm: rm.memberships(caller.subject))
    administered = sorted({m.organization_id for m in memberships if m.role in ADMIN_ROLES})
    if not administered:
        raise forbidden(Action.ADMINISTER)
    return administered


def _page(
    rm: ReadModel,
    after: int,
    limit: int,
    types: frozenset[str] | None,
    scope: list[UUID] | None,
    since: datetime | None,
) -> tuple[int, list[Row]]:
    """The projection's position (read first), then up to ``limit`` rows after ``after``
    (``since``: from the first at or after it) of ``scope``'s organizations."""
    position = rm.position()
    if scope is None:
        return position, rm.public_events(after, limit, types, None, since)
    # A person administering several organizations: each one's first rows, merged (the
    # first ``limit`` of the union are among them).
    pages = [rm.public_events(after, limit, types, org_id, since) for org_id in scope]
    return position, list(heapq.merge(*pages))[:limit]


def _body(rows: list[Row], next_cursor: str, has_more: bool) -> bytes:
    """The page's JSON, the stored bodies spliced in as they are: each was a validated
    ``PublicEvent`` when the projector wrote it, so parsing it again would only cost."""
    data = ",".join(body for _, body in rows)
    tail = json.dumps({"next": next_cursor, "has_more": has_more}, separators=(",", ":"))[1:]
    return f'{{"data":[{data}],{tail}'.encode()


@router.get(
    "/events",
    response_model=EventPage,
    summary="Public events after a cursor, in order",
    responses={**COMMON_ERRORS, **NOT_FOUND, **FORBIDDEN},
)
async def list_events(
    request: Request,
    caller: Caller,
    after: Annotated[
        Cursor | None,
        Query(description="`next` of the previous answer; from the first event when left out"),
    ] = None,
    types: Annotated[
        EventTypes | None,
        Query(
            max_length=TYPES_MAX_LENGTH,
            description="Comma-separated event types, any of: "
            + ", ".join(sorted(PUBLIC_EVENT_TYPES)),
        ),
    ] = None,
    organization: Annotated[
        str | None, Query(max_length=63, description="An organization's slug")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    range_start: Annotated[
        Instant | None,
        Query(
            description="Without `after`: start at the first event that occurred at or after "
            "this time (RFC 3339); ignored with `after`"
        ),
    ] = None,
) -> Response:
    """Up to ``limit`` public events (oldest first) after ``after``, of the given
    ``types`` and ``organization``. Follow ``next``: every event comes exactly once, in
    the order it was stored; ``has_more`` says whether another page is there now. A
    consumer keeps the highest ``subject.version`` it applied per ``subject.id`` and
    drops an event with a lower one."""
    wanted = frozenset(types.split(",")) if types is not None else None
    scope = await _scope(request, caller, organization)
    start = after if after is not None else 0
    since = range_start if after is None else None
    position, rows = await api_app.gateway_of(request).read(
        lambda rm: _page(rm, start, limit + 1, wanted, scope, since)
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if rows else max(start, position)
    return Response(_body(rows, encode_cursor(last), has_more), media_type="application/json")
