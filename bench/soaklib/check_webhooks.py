"""The webhooks' promise, checked against the store: every matching event at least once,
exactly once by ``webhook-id``, signed, and in order per organization.

For each endpoint the soak created, what should have arrived is decided by the store:
every public event (:func:`soaklib.check_feed.public_events_of`) stored after the
endpoint was enabled (its ``enabled_since`` in the read model) and of a type it asked
for. What the receiver recorded (every request, repeats included, as the network
delivered them) must then hold:

- every expected event arrived, answered 2xx at least once; none arrived that should not;
- each request verified with the endpoint's secret (the ``standardwebhooks`` package);
- every copy of an event carried the same body, and that body is the events API's;
- per organization, the first arrivals follow store order: no event was sent while an
  earlier one of the same organization was still undelivered.

Repeats are allowed (at least once: a receiver's 500, a timeout, a killed daemon) and
counted; a receiver deduplicates them by ``webhook-id``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from soaklib.check import Violation
from soaklib.check_feed import PublicFact, public_events_of
from soaklib.check_store import StoreReading


@dataclass(frozen=True)
class Arrival:
    """One request the receiver got."""

    webhook_id: str
    body: bytes
    verified: bool  # its signature verified with the endpoint's secret
    accepted: bool  # the receiver answered it 2xx


@dataclass(frozen=True)
class EndpointFacts:
    name: str
    enabled_since: int  # the notification id from which events are delivered
    event_types: frozenset[str] | None  # None: every type
    arrivals: Sequence[Arrival]


def repeats(arrivals: Sequence[Arrival]) -> int:
    """Requests beyond the first of each event (allowed: at least once)."""
    return sum(n - 1 for n in Counter(a.webhook_id for a in arrivals).values())


def check_endpoint(
    endpoint: EndpointFacts, store: StoreReading, bodies: dict[UUID, str]
) -> list[Violation]:
    """``bodies``: the public-events read model's body of each event id."""
    name = f"webhooks ({endpoint.name})"
    expected = [
        fact
        for fact in public_events_of(store)
        if fact.position > endpoint.enabled_since
        and (endpoint.event_types is None or fact.type in endpoint.event_types)
    ]
    wanted = {str(fact.id): fact for fact in expected}
    found: list[Violation] = []
    unsigned = [a for a in endpoint.arrivals if not a.verified]
    if unsigned:
        found.append(Violation(name, f"{len(unsigned)} requests whose signature did not verify"))
    accepted = {a.webhook_id for a in endpoint.arrivals if a.accepted}
    missing = [fact for fact in expected if str(fact.id) not in accepted]
    if missing:
        first = missing[0]
        found.append(
            Violation(
                name,
                f"{len(missing)} events never delivered, the first at position "
                f"{first.position} ({first.type}, {first.id})",
            )
        )
    extra = {a.webhook_id for a in endpoint.arrivals} - wanted.keys()
    if extra:
        found.append(Violation(name, f"{len(extra)} events delivered that it did not ask for"))
    seen: dict[str, bytes] = {}
    for arrival in endpoint.arrivals:
        first_body = seen.setdefault(arrival.webhook_id, arrival.body)
        fact = wanted.get(arrival.webhook_id)
        if first_body != arrival.body:
            found.append(Violation(name, f"event {arrival.webhook_id} arrived with two bodies"))
        elif fact is not None and bodies.get(fact.id) != arrival.body.decode():
            found.append(
                Violation(name, f"event {arrival.webhook_id}'s body is not the events API's")
            )
    found.extend(_order(name, endpoint, wanted, bodies))
    return found


def _order(
    name: str, endpoint: EndpointFacts, wanted: dict[str, PublicFact], bodies: dict[UUID, str]
) -> list[Violation]:
    """Per organization, first arrivals in store order."""
    last: dict[str, int] = {}  # organization id -> position of its latest first arrival
    firsts: set[str] = set()
    for arrival in endpoint.arrivals:
        fact = wanted.get(arrival.webhook_id)
        if arrival.webhook_id in firsts or fact is None:
            continue
        firsts.add(arrival.webhook_id)
        organization = _organization(bodies.get(fact.id, ""))
        if fact.position < last.get(organization, 0):
            return [
                Violation(
                    name,
                    f"organization {organization}: event at position {fact.position} "
                    f"arrived after a later one (position {last[organization]})",
                )
            ]
        last[organization] = fact.position
    return []


def _organization(body: str) -> str:
    """The organization id in a public event's JSON."""
    try:
        return str(json.loads(body)["organization"]["id"])
    except (ValueError, KeyError, TypeError):
        return "?"


def check_webhooks(arrivals: dict[str, list[Arrival]], store: StoreReading) -> list[Violation]:
    """Each endpoint the soak followed (by name), against the store and the read models."""
    if not arrivals:
        return []
    with store.connect(autocommit=True) as conn:
        endpoints = {
            str(name): (int(since), None if types is None else frozenset(json.loads(types)))
            for name, since, types in conn.execute(
                "SELECT name, enabled_since, event_types FROM webhook_endpoints "
                "WHERE owner_id IS NULL"
            ).fetchall()
        }
        bodies = {
            UUID(str(event_id)): str(body)
            for event_id, body in conn.execute("SELECT event_id, body FROM public_events")
        }
    found: list[Violation] = []
    for name, got in arrivals.items():
        if name not in endpoints:
            found.append(Violation(f"webhooks ({name})", "the endpoint is not in the read model"))
            continue
        since, types = endpoints[name]
        found.extend(check_endpoint(EndpointFacts(name, since, types, got), store, bodies))
    return found
