"""The events feed's promise, checked against the store: every public event, once, in order.

What the store holds decides what should have been served: each stored event whose class
has a public form (:func:`a4c_domain.public_events.form_of`), in notification-id order,
named by its deterministic id. The consumer (:class:`~soaklib.feed.FeedConsumer`)
followed ``GET /v1/events`` through every fault; what it received must be exactly that
list — none missing, none extra, none twice (it appends only answered pages and moves its
cursor with each, so even a repeat would be the API's fault), and in the same order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import resolve_topic

from a4c_domain.ids import event_id
from a4c_domain.public_events import Public, form_of
from soaklib.check import Violation
from soaklib.check_store import StoreReading


@dataclass(frozen=True)
class PublicFact:
    position: int
    id: UUID
    type: str
    organization_id: UUID | None  # None: the store alone does not say (the checker may not need it)


def public_events_of(store: StoreReading) -> list[PublicFact]:
    """The public events the store holds, in store order."""
    found: list[PublicFact] = []
    forms: dict[str, Public | None] = {}
    for row in store.events:
        if row.topic not in forms:
            form = form_of(resolve_topic(row.topic))
            forms[row.topic] = form if isinstance(form, Public) else None
        public = forms[row.topic]
        if public is not None:
            found.append(
                PublicFact(
                    row.notification_id,
                    event_id(row.originator_id, row.originator_version),
                    public.type,
                    None,
                )
            )
    return found


def check_feed(received: Sequence[dict[str, Any]], store: StoreReading) -> list[Violation]:
    """What the consumer received against what the store holds."""
    expected = public_events_of(store)
    got = [UUID(str(event["id"])) for event in received]
    found: list[Violation] = []
    repeated = [i for i, n in Counter(got).items() if n > 1]
    if repeated:
        found.append(Violation("feed", f"{len(repeated)} events served twice, e.g. {repeated[0]}"))
    wanted = {fact.id for fact in expected}
    served = set(got)
    missing = [fact for fact in expected if fact.id not in served]
    extra = [i for i in got if i not in wanted]
    if missing:
        first = missing[0]
        found.append(
            Violation(
                "feed",
                f"{len(missing)} public events never served, the first at position "
                f"{first.position} ({first.type}, {first.id})",
            )
        )
    if extra:
        found.append(Violation("feed", f"{len(extra)} served events the store does not hold"))
    order = [i for i in dict.fromkeys(got) if i in wanted]
    if not missing and order != [fact.id for fact in expected]:
        at = next(n for n, (a, b) in enumerate(zip(order, expected, strict=True)) if a != b.id)
        found.append(Violation("feed", f"served out of store order from event number {at + 1} on"))
    types = {fact.id: fact.type for fact in expected}
    wrong = [e for e in received if types.get(UUID(str(e["id"])), e["type"]) != e["type"]]
    if wrong:
        found.append(Violation("feed", f"{len(wrong)} events served with another type"))
    return found
