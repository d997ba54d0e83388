"""What the event store and the read models must say of each other.

- ``read-models``: a fresh build of the projection from position 0, brought exactly to
  the live position, equals the live tables row for row (all columns but
  ``updated_at``). Built into a table set of the checker's own (``__soakcheck``) the way
  ``a4c-projector rebuild`` builds (its compare phase, without the swap), then dropped:
  the live tables are never touched.
- ``audit``: every committed event up to the position was applied or parked
  (:func:`a4c_projector.maintenance.audit.audit`), and the projection reached the head.
- ``duplicate-events``: no two rows by (aggregate, version) (the store's key: checked
  anyway, a restored or hand-made store may lack it), none by a4c's event id (uuid5 of
  the same pair: not stored, computed here as every consumer computes it), every read
  model row's ``last_event_id`` is that of a stored event, and no once-only fact twice
  (an organization activated twice, a mail recorded sent twice for one token...): what a
  write retried after an unknown commit outcome would leave if it were not idempotent.
- ``members``: every accepted invitation is a member (by the user who accepted), and
  every member row stands for an accepted invitation.
"""

from __future__ import annotations

from collections import Counter
from uuid import UUID

from a4c_domain.ids import event_id
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.source import head
from a4c_projector.maintenance.audit import audit
from a4c_projector.maintenance.compare import differing_rows
from a4c_projector.readmodel.tables import LIVE, TableSet, drop_tables, ensure_schema
from a4c_projector.readmodel.tracking import forget_projection, read_position
from soaklib.check import Violation
from soaklib.check_store import StoreReading

CHECK_SUFFIX = "__soakcheck"
SHOWN = 10  # differences named in a violation; the count says how many in all
# Facts an aggregate records at most once; a second is a duplicated write.
ONCE = frozenset(
    {"DNSConfigured", "DNSVerified", "DNSRemoved", "Activated", "Deactivated"}
    | {"Accepted", "Revoked", "Expired"}
)


def check_read_models(store: StoreReading) -> list[Violation]:
    fresh = TableSet(CHECK_SUFFIX)
    projection = store.projection + CHECK_SUFFIX
    with connect(store.location, purpose="soak-check") as setup:
        drop_tables(setup, fresh)
        ensure_schema(setup, fresh)
        with setup.transaction():
            forget_projection(setup, projection)
    builder = Projector(store.location, store.mapper, projection=projection, tables=fresh)
    try:
        db = builder.db
        with db.snapshot():  # the live position and both table sets at one moment
            target = read_position(db, store.projection)
            while True:
                result = builder.run_batch(stop=target)
                if result.position >= target or result.size == 0:
                    break
            if result.position != target:
                return [
                    Violation(
                        "read-models",
                        f"a fresh build stopped at position {result.position}, short of the "
                        f"live position {target}",
                    )
                ]
            differences = differing_rows(db, LIVE, fresh)
    finally:
        builder.close()
        with connect(store.location, purpose="soak-check") as cleanup:
            drop_tables(cleanup, fresh)
            with cleanup.transaction():
                forget_projection(cleanup, projection)
    if not differences:
        return []
    shown = "; ".join(differences[:SHOWN])
    return [
        Violation(
            "read-models",
            f"{len(differences)} read-model rows differ from a fresh build at position "
            f"{target}: {shown}",
        )
    ]


def check_audit(store: StoreReading) -> list[Violation]:
    with connect(store.location, purpose="soak-check") as db:
        report = audit(db, store.projection)
        with db.transaction():
            top = head(db)
    found = []
    if report.missing:
        shown = "; ".join(
            f"{m.notification_id} ({m.topic.rsplit('.', 1)[-1]} of {m.originator_id})"
            for m in report.missing[:SHOWN]
        )
        found.append(
            Violation(
                "audit",
                f"{len(report.missing)} events at or below the position {report.position} "
                f"were never applied nor parked: {shown}",
            )
        )
    if report.position < top:
        found.append(
            Violation(
                "audit",
                f"the projection is at {report.position}, {top - report.position} events "
                f"behind the head {top} after the settle",
            )
        )
    if report.parked:
        found.append(Violation("audit", f"{report.parked} events are parked as dead letters"))
    return found


def check_duplicates(store: StoreReading) -> list[Violation]:
    found: list[Violation] = []
    keys = Counter((e.originator_id, e.originator_version) for e in store.events)
    for (aggregate, version), count in sorted(keys.items(), key=str):
        if count > 1:
            found.append(
                Violation(
                    "duplicate-events",
                    f"{count} events at version {version} of aggregate {aggregate}",
                )
            )
    ids = Counter(event_id(e.originator_id, e.originator_version) for e in store.events)
    for eid, count in sorted(ids.items(), key=str):
        if count > 1:
            found.append(Violation("duplicate-events", f"{count} events with event id {eid}"))
    once = Counter((e.originator_id, e.kind) for e in store.events if e.kind in ONCE)
    once.update(
        (sent.invitation_id, f"EmailSent of token {sent.token_generation}")
        for sent in store.emails_sent
    )
    for (aggregate, kind), count in sorted(once.items(), key=str):
        if count > 1:
            found.append(
                Violation("duplicate-events", f"{kind} recorded {count} times on {aggregate}")
            )
    found.extend(_last_event_ids(store, set(ids)))
    return found


def _last_event_ids(store: StoreReading, stored: set[UUID]) -> list[Violation]:
    """Each projected row names, as its last event, the deterministic id of a stored
    event: the one at the row's version of the aggregate that wrote it."""
    found = []
    tables = (
        ("organizations", store.organizations),
        ("invitations", store.invitations),
        ("members", store.members),
    )
    for table, rows in tables:
        for key, row in rows.items():
            expected = event_id(key, int(row["version"]))
            if row["last_event_id"] != expected or expected not in stored:
                found.append(
                    Violation(
                        "duplicate-events",
                        f"{table} row {key} names last event {row['last_event_id']}, not the "
                        f"stored event at its version {row['version']}",
                    )
                )
    return found


def check_members(store: StoreReading) -> list[Violation]:
    found = []
    for key, invitation in sorted(store.invitations.items(), key=str):
        if invitation["status"] != "accepted":
            continue
        member = store.members.get(key)
        if member is None:
            found.append(Violation("members", f"accepted invitation {key} has no member row"))
        elif (member["user_id"], member["organization_id"]) != (
            invitation["accepted_by"],
            invitation["organization_id"],
        ):
            found.append(
                Violation(
                    "members",
                    f"the member row of invitation {key} names another user or organization "
                    "than the one that accepted",
                )
            )
    for key in sorted(store.members.keys() - store.invitations.keys(), key=str):
        found.append(Violation("members", f"member row {key} has no invitation"))
    for key in sorted(store.members.keys() & store.invitations.keys(), key=str):
        if store.invitations[key]["status"] != "accepted":
            status = store.invitations[key]["status"]
            found.append(
                Violation("members", f"member row {key} stands for an invitation that is {status}")
            )
    return found
