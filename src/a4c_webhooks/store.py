# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""The delivery state in PostgreSQL (``sql/110_webhook_delivery.sql``), and every query on it.

Three tables, owned by the daemon: ``webhook_fanout`` (how far the public events were
turned into deliveries), ``webhook_deliveries`` (one row per endpoint and event, kept
after delivery as the record of it) and ``webhook_streams`` (the streams that fail:
since when, and whether they are parked). Endpoints are read from the projector's
``webhook_endpoints`` read model, bodies from its ``public_events``: both are written
with the projector's position, so everything read here is an applied, no-skip fact.

A stream is one endpoint and one organization. Its *head* is its earliest delivery not
yet delivered; only the head is ever sent, so a stream never has two requests in flight
and never sends an event while an earlier one is pending or parked.

Every function takes an open :class:`~a4c_projector.dialects.base.Database` and runs in
a transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.sqldir import find_sql_dir

DDL_FILE = "110_webhook_delivery.sql"
FANOUT_NAME = "default"
ENDPOINTS = "webhook_endpoints"  # the projector's read model
EVENTS = "public_events"  # the projector's read model
# Which endpoints get which events: its organization filter (an organization's own
# endpoint has organization_id = owner_id), its types (NULL: all), enabled before it.
MATCHES = (
    "(e.organization_id IS NULL OR e.organization_id = p.organization_id) "
    "AND (e.owner_id IS NULL OR e.owner_id = p.organization_id) "
    "AND (e.event_types IS NULL OR jsonb_exists(e.event_types::jsonb, p.type))"
)


def ensure_tables(db: Database, sql_dir: Path | None = None) -> None:
    """Apply the delivery DDL (idempotent); concurrent starts wait for each other."""
    path = find_sql_dir(sql_dir or db.location.sql_dir) / DDL_FILE
    with db.transaction():
        db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"a4c_webhooks_ddl:{db.location.schema}",),
        )
        db.execute(path.read_text())


def missing_read_models(db: Database) -> list[str]:
    """The projector's tables the daemon reads that do not exist (yet): the projector
    creates them when it starts."""
    with db.transaction():
        rows = db.execute(
            "SELECT name FROM unnest(%s::text[]) AS name "
            "WHERE to_regclass(quote_ident(name)) IS NULL",
            ([EVENTS, ENDPOINTS],),
        )
    return [str(row[0]) for row in rows]


@dataclass(frozen=True)
class Due:
    """A stream's head, due now: what to send where, and the stream's state."""

    endpoint_id: UUID
    organization_id: UUID
    position: int
    event_id: UUID
    type: str
    owner_id: UUID | None  # the endpoint's owner: whose admins hear of a disable
    attempts: int
    occurred_at: datetime
    body: str = field(repr=False)
    url: str = field(repr=False)  # a query string may hold a token
    secret: str = field(repr=False)  # sealed
    previous_secret: str | None = field(repr=False)  # sealed
    previous_secret_expires_at: datetime | None
    failing_since: datetime | None
    enabled_since: int  # the endpoint's: which enabling of it this head is sent under

    @property
    def stream(self) -> tuple[UUID, UUID]:
        return (self.endpoint_id, self.organization_id)


# Each stream's head: a loose index scan of webhook_deliveries_stream_idx, one probe per
# stream (a DISTINCT ON would read every undelivered row: a long outage's backlog on
# every beat of the loop).
_HEADS = (
    "heads AS ((SELECT endpoint_id, organization_id, position FROM webhook_deliveries "
    "WHERE state <> 'delivered' ORDER BY endpoint_id, organization_id, position LIMIT 1) "
    "UNION ALL SELECT n.endpoint_id, n.organization_id, n.position FROM heads h "
    "CROSS JOIN LATERAL (SELECT endpoint_id, organization_id, position "
    "FROM webhook_deliveries d WHERE d.state <> 'delivered' "
    "AND (d.endpoint_id, d.organization_id) > (h.endpoint_id, h.organization_id) "
    "ORDER BY endpoint_id, organization_id, position LIMIT 1) n)"
)


def due(
    db: Database,
    busy: set[tuple[UUID, UUID]],
    limit: int,
    skip_owners: frozenset[UUID] = frozenset(),
) -> list[Due]:
    """Up to ``limit`` stream heads due now, the longest waiting first, but none of the
    ``busy`` streams (in flight), nor of parked streams or endpoints not enabled, nor of
    ``skip_owners``' endpoints (an organization's id, or a platform endpoint's own: owners
    at their cap of deliveries in flight, so they cannot fill the page)."""
    with db.transaction():
        rows = db.execute(
            f"WITH RECURSIVE {_HEADS} "
            "SELECT h.endpoint_id, h.organization_id, h.position, d.event_id, d.type, "
            "e.owner_id, d.attempts, p.occurred_at, p.body, e.url, e.secret, e.previous_secret, "
            "e.previous_secret_expires_at, s.failing_since, e.enabled_since "
            "FROM heads h JOIN webhook_deliveries d "
            "ON d.endpoint_id = h.endpoint_id AND d.position = h.position "
            f"JOIN {EVENTS} p ON p.position = h.position "
            f"JOIN {ENDPOINTS} e ON e.id = h.endpoint_id AND e.status = 'enabled' "
            "LEFT JOIN webhook_streams s ON s.endpoint_id = h.endpoint_id "
            "AND s.organization_id = h.organization_id "
            "WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND s.parked_at IS NULL "
            "AND coalesce(e.owner_id, e.id) <> ALL(%s::uuid[]) "
            "ORDER BY d.next_attempt_at, h.position LIMIT %s",
            (sorted(skip_owners), limit + len(busy)),
        )
    found = [Due(*row) for row in rows]
    return [d for d in found if d.stream not in busy][:limit]


def record_delivered(db: Database, head: Due, status: int) -> None:
    """The head got a 2xx: delivered; the stream is healthy again."""
    with db.transaction():
        db.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = attempts + 1, "
            "last_status = %s, last_error = NULL, delivered_at = now() "
            "WHERE endpoint_id = %s AND position = %s",
            (status, head.endpoint_id, head.position),
        )
        db.execute(
            "UPDATE webhook_streams SET failing_since = NULL "
            "WHERE endpoint_id = %s AND organization_id = %s AND failing_since IS NOT NULL",
            (head.endpoint_id, head.organization_id),
        )


def record_failure(
    db: Database, head: Due, status: int | None, error: str, retry_in: float | None
) -> datetime:
    """The head failed: try again in ``retry_in`` seconds, or (None) park its stream.
    Returns since when the stream has been failing."""
    park = retry_in is None
    with db.transaction():
        db.execute(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = %s, "
            "last_error = %s, state = %s, "
            "next_attempt_at = now() + make_interval(secs => %s) "
            "WHERE endpoint_id = %s AND position = %s",
            (
                status,
                error[:500],
                "parked" if park else "pending",
                retry_in or 0.0,
                head.endpoint_id,
                head.position,
            ),
        )
        rows = db.execute(
            "INSERT INTO webhook_streams AS s (endpoint_id, organization_id, failing_since, "
            "parked_at, parked_reason, enabled_since) VALUES (%s, %s, now(), "
            "CASE WHEN %s THEN now() END, CASE WHEN %s THEN %s END, %s) "
            "ON CONFLICT (endpoint_id, organization_id) DO UPDATE SET "
            "failing_since = coalesce(s.failing_since, now()), "
            "parked_at = coalesce(EXCLUDED.parked_at, s.parked_at), "
            "parked_reason = coalesce(EXCLUDED.parked_reason, s.parked_reason) "
            "RETURNING failing_since",
            (head.endpoint_id, head.organization_id, park, park, error[:500], head.enabled_since),
        )
    since: datetime = rows[0][0]
    return since


@dataclass(frozen=True)
class Stream:
    """A stream that fails or is parked (``a4c-webhooks streams``)."""

    endpoint_id: UUID
    endpoint_name: str | None
    organization_id: UUID
    failing_since: datetime | None
    parked_at: datetime | None
    parked_reason: str | None
    pending: int
    head_position: int | None
    head_attempts: int | None
    last_status: int | None
    last_error: str | None

    @property
    def state(self) -> str:
        return "parked" if self.parked_at is not None else "failing"


def troubled_streams(db: Database) -> list[Stream]:
    """Parked and failing streams, parked first, then the longest failing."""
    with db.transaction():
        rows = db.execute(
            "SELECT s.endpoint_id, e.name, s.organization_id, s.failing_since, s.parked_at, "
            "s.parked_reason, "
            "(SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = s.endpoint_id "
            "AND d.organization_id = s.organization_id AND d.state <> 'delivered'), "
            "h.position, h.attempts, h.last_status, h.last_error "
            "FROM webhook_streams s "
            f"LEFT JOIN {ENDPOINTS} e ON e.id = s.endpoint_id "
            "LEFT JOIN LATERAL (SELECT position, attempts, last_status, last_error "
            "FROM webhook_deliveries d WHERE d.endpoint_id = s.endpoint_id "
            "AND d.organization_id = s.organization_id AND d.state <> 'delivered' "
            "ORDER BY position LIMIT 1) h ON true "
            "WHERE s.parked_at IS NOT NULL OR s.failing_since IS NOT NULL "
            "ORDER BY s.parked_at IS NULL, s.parked_at, s.failing_since, "
            "s.endpoint_id, s.organization_id"
        )
    return [Stream(*row) for row in rows]


def unpark(db: Database, endpoint_id: UUID, organization_id: UUID | None = None) -> int:
    """Unpark the endpoint's streams (or one organization's): their heads are due now,
    with a full schedule of attempts. Returns how many streams were unparked."""
    where, params = "endpoint_id = %s", [endpoint_id]
    if organization_id is not None:
        where += " AND organization_id = %s"
        params.append(organization_id)
    with db.transaction():
        rows = db.execute(
            "UPDATE webhook_streams SET parked_at = NULL, parked_reason = NULL, "
            f"failing_since = NULL WHERE {where} AND parked_at IS NOT NULL "
            "RETURNING organization_id",
            params,
        )
        db.execute(
            "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, "
            f"next_attempt_at = now() WHERE {where} AND state = 'parked'",
            params,
        )
    return len(rows)


def restart_reenabled(db: Database) -> int:
    """Streams of endpoints enabled again since they began to fail start afresh: unparked,
    their failure clock forgotten, their undelivered events due now with a full schedule
    (whoever enabled the endpoint has fixed what failed, or says to try again). Returns
    how many streams restarted."""
    with db.transaction():
        rows = db.execute(
            "WITH stale AS (DELETE FROM webhook_streams s "
            f"USING {ENDPOINTS} e WHERE e.id = s.endpoint_id AND e.status = 'enabled' "
            "AND e.enabled_since > s.enabled_since "
            "RETURNING s.endpoint_id, s.organization_id), "
            "restarted AS (UPDATE webhook_deliveries d SET state = 'pending', attempts = 0, "
            "next_attempt_at = now() FROM stale WHERE d.endpoint_id = stale.endpoint_id "
            "AND d.organization_id = stale.organization_id AND d.state <> 'delivered' "
            "RETURNING 1) "
            "SELECT (SELECT count(*) FROM stale), (SELECT count(*) FROM restarted)"
        )
    return int(rows[0][0])


def endpoint_exists(db: Database, endpoint_id: UUID) -> bool:
    with db.transaction():
        return bool(db.execute(f"SELECT 1 FROM {ENDPOINTS} WHERE id = %s", (endpoint_id,)))


def replay(db: Database, endpoint_id: UUID, after: int, until: int | None) -> int:
    """Send the endpoint every matching public event in positions ``(after, until]``
    again (or for the first time), with the same ids: each becomes pending with a fresh
    schedule. Its streams then send them in order before anything later. Returns how
    many deliveries were queued."""
    upper = "AND p.position <= %s" if until is not None else ""
    params: list[Any] = [endpoint_id, after]
    if until is not None:
        params.append(until)
    with db.transaction():
        rows = db.execute(
            "WITH queued AS (INSERT INTO webhook_deliveries AS d "
            "(endpoint_id, position, organization_id, event_id, type) "
            "SELECT e.id, p.position, p.organization_id, p.event_id, p.type "
            f"FROM {EVENTS} p JOIN {ENDPOINTS} e ON e.id = %s AND e.status <> 'deleted' "
            f"AND {MATCHES} WHERE p.position > %s {upper} "
            "ON CONFLICT (endpoint_id, position) DO UPDATE SET state = 'pending', "
            "attempts = 0, next_attempt_at = now(), last_status = NULL, last_error = NULL, "
            "delivered_at = NULL RETURNING 1) SELECT count(*) FROM queued",
            params,
        )
    return int(rows[0][0])


def position_at(db: Database, when: datetime, *, start: bool) -> int:
    """The position a time range begins after (``start``: the first event that occurred
    at or after ``when``, less one) or ends at (the last that occurred before it)."""
    with db.transaction():
        if start:
            rows = db.execute(
                f"SELECT coalesce((SELECT min(position) - 1 FROM {EVENTS} "
                f"WHERE occurred_at >= %s), (SELECT max(position) FROM {EVENTS}), 0)",
                (when,),
            )
        else:
            rows = db.execute(
                f"SELECT coalesce(max(position), 0) FROM {EVENTS} WHERE occurred_at < %s",
                (when,),
            )
    return int(rows[0][0])


def long_failing(db: Database, seconds: float) -> list[tuple[UUID, UUID | None, int]]:
    """Enabled endpoints (id, owner, enabled_since) with a stream failing (parked or not)
    for longer than ``seconds`` since their last enabling: the ones to disable."""
    with db.transaction():
        rows = db.execute(
            "SELECT DISTINCT e.id, e.owner_id, e.enabled_since FROM webhook_streams s "
            f"JOIN {ENDPOINTS} e ON e.id = s.endpoint_id AND e.status = 'enabled' "
            "AND e.enabled_since <= s.enabled_since "
            "WHERE s.failing_since < now() - make_interval(secs => %s)",
            (seconds,),
        )
    return [(row[0], row[1], int(row[2])) for row in rows]


@dataclass(frozen=True)
class Gauges:
    fanout_lag: int  # public events not yet fanned out
    parked_streams: int
    failing_streams: int
    disabled_endpoints: int
    pending: int  # deliveries to enabled endpoints not yet delivered (parked ones too)


def gauges(db: Database) -> Gauges:
    with db.transaction():
        row = db.execute(
            f"SELECT coalesce((SELECT max(position) FROM {EVENTS}), 0) - coalesce("
            "(SELECT position FROM webhook_fanout WHERE name = %s), 0), "
            "(SELECT count(*) FROM webhook_streams WHERE parked_at IS NOT NULL), "
            "(SELECT count(*) FROM webhook_streams WHERE failing_since IS NOT NULL "
            "AND parked_at IS NULL), "
            f"(SELECT count(*) FROM {ENDPOINTS} WHERE status = 'disabled'), "
            f"(SELECT count(*) FROM webhook_deliveries d JOIN {ENDPOINTS} e "
            "ON e.id = d.endpoint_id AND e.status = 'enabled' WHERE d.state <> 'delivered')",
            (FANOUT_NAME,),
        )[0]
    return Gauges(*(int(v) for v in row))


__all__ = [
    "DDL_FILE",
    "ENDPOINTS",
    "EVENTS",
    "FANOUT_NAME",
    "MATCHES",
    "Due",
    "Gauges",
    "Stream",
    "due",
    "endpoint_exists",
    "ensure_tables",
    "gauges",
    "long_failing",
    "missing_read_models",
    "position_at",
    "record_delivered",
    "record_failure",
    "replay",
    "troubled_streams",
    "unpark",
]
