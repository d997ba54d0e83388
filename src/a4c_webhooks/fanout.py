# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""The fan-out: public events become deliveries, one per matching endpoint, exactly once.

It tails ``public_events`` (the rows the projector wrote with its position: the same
no-skip feed ``GET /v1/events`` serves) from its own position in ``webhook_fanout``, and
writes the deliveries and the new position in one transaction: a crash before the commit
leaves both as they were, after it both are there.

An endpoint matches an event when it is enabled, was enabled before the event
(``enabled_since < position``), its organization filter admits the event's organization
and its types (if any) the event's type. Endpoints are read as the projector has them
when the batch is fanned out.
"""

from __future__ import annotations

from dataclasses import dataclass

from a4c_projector.dialects.base import Database
from a4c_webhooks.store import ENDPOINTS, EVENTS, FANOUT_NAME, MATCHES

FANOUT_BATCH = 500  # public events per fan-out transaction


@dataclass(frozen=True)
class Fanout:
    events: int  # public events read
    deliveries: int  # delivery rows written
    position: int  # the fan-out's position after the batch


def fan_out(db: Database, limit: int = FANOUT_BATCH) -> Fanout:
    """Turn up to ``limit`` public events after the fan-out position into deliveries, one
    per enabled endpoint that matches, and advance the position, in one transaction.

    The projector commits public events in position order (one writer, positions rising
    with each transaction), so every position below the highest one read is already
    there: reading on from it never skips one.
    """
    with db.transaction():
        db.execute(
            "INSERT INTO webhook_fanout (name, position) VALUES (%s, 0) ON CONFLICT DO NOTHING",
            (FANOUT_NAME,),
        )
        (after,) = db.execute(
            "SELECT position FROM webhook_fanout WHERE name = %s FOR UPDATE", (FANOUT_NAME,)
        )[0]
        upper, count = db.execute(
            f"SELECT max(position), count(*) FROM (SELECT position FROM {EVENTS} "
            "WHERE position > %s ORDER BY position LIMIT %s) AS batch",
            (after, limit),
        )[0]
        if not count:
            return Fanout(0, 0, int(after))
        rows = db.execute(
            "WITH written AS (INSERT INTO webhook_deliveries "
            "(endpoint_id, position, organization_id, event_id, type) "
            "SELECT e.id, p.position, p.organization_id, p.event_id, p.type "
            f"FROM {EVENTS} p JOIN {ENDPOINTS} e ON e.status = 'enabled' "
            f"AND p.position > e.enabled_since AND {MATCHES} "
            "WHERE p.position > %s AND p.position <= %s "
            "ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM written",
            (after, upper),
        )
        db.execute("UPDATE webhook_fanout SET position = %s WHERE name = %s", (upper, FANOUT_NAME))
        return Fanout(int(count), int(rows[0][0]), int(upper))


def catch_up(db: Database, max_batches: int = 20) -> Fanout:
    """Fan out batch after batch until no event is waiting (or ``max_batches``, so the
    caller's loop still beats and delivers during a long backlog)."""
    total_events = total_deliveries = 0
    for _ in range(max_batches):
        batch = fan_out(db)
        total_events += batch.events
        total_deliveries += batch.deliveries
        if batch.events < FANOUT_BATCH:
            break
    return Fanout(total_events, total_deliveries, batch.position)


__all__ = ["FANOUT_BATCH", "Fanout", "catch_up", "fan_out"]
