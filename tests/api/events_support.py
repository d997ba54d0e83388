"""What the events-feed tests share: the store's own list of public events (what the
API is compared with, never the read model it reads) and a consumer following ``next``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
from eventsourcing.utils import resolve_topic

from a4c_api.v1.models import EventPage
from a4c_domain import OnboardingApplication
from a4c_domain.ids import event_id
from a4c_domain.public_events import Public, form_of

Event = dict[str, Any]


def public_ids(app: OnboardingApplication, after: int = 0) -> list[tuple[int, UUID]]:
    """(position, event id) of every public event stored after ``after``, in order."""
    found: list[tuple[int, UUID]] = []
    while True:
        batch = app.recorder.select_notifications(after + 1, 500)
        if not batch:
            return found
        for n in batch:
            if isinstance(form_of(resolve_topic(n.topic)), Public):
                found.append((n.id, event_id(UUID(str(n.originator_id)), n.originator_version)))
        after = batch[-1].id


def query(**params: Any) -> str:
    return "/v1/events?" + urlencode({k: v for k, v in params.items() if v is not None})


async def follow(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> tuple[list[Event], str]:
    """Every event a consumer gets following ``next`` until ``has_more`` is false; and
    the last ``next``."""
    events: list[Event] = []
    while True:
        response = await client.get(query(**params), headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        EventPage.model_validate(page)  # the stored bodies, spliced in, are PublicEvents
        limit = params.get("limit", 50)
        assert len(page["data"]) == limit if page["has_more"] else len(page["data"]) <= limit
        events.extend(page["data"])
        params = {**params, "after": page["next"], "range_start": None}
        if not page["has_more"]:
            return events, page["next"]


def ids(events: list[Event]) -> list[UUID]:
    return [UUID(e["id"]) for e in events]


def same_then_newer(found: list[Event], expected: list[Event], known: list[Event]) -> None:
    """``found`` is ``expected``, then only events newer than every one of ``known``
    (workflows of other tests may still write meanwhile, at the feed's end)."""
    assert found[: len(expected)] == expected
    seen = {e["id"] for e in known}
    assert not [e for e in found[len(expected) :] if e["id"] in seen]
