# ruff: noqa: S608 - SQL identifiers come from code (TableSet names); values are bound
"""The public-events read model: each applied event's public form, by notification id.

Every change a batch writes carries its event (:class:`RowChange.event
<a4c_projector.readmodel.handlers.RowChange>`); each whose class is public
(:data:`a4c_domain.public_events.PUBLIC_FORMS`) becomes one row: its notification id
(the events API's cursor), the deterministic event id, type, organization, subject,
time and the complete JSON body. The rows are written by the batch's own transaction,
with its tracking position, so a reader never sees a position the no-skip guard has not
passed; a replay writes nothing new (``ON CONFLICT (position) DO NOTHING``: a row is a
fact, never changed).

The body names the organization by id and slug. An organization event names its own
id, ``Invited`` its organization's; an invitation's later events and every slug are
found in this order: the batch's own ``Registered`` and ``Invited`` events, what this
connection learnt before, and the read model (organizations, invitations: one query
each, only for what is still unknown). What is learnt is kept per connection (bounded):
an organization's slug and an invitation's organization never change (their ids are
derived from them), so nothing learnt can go stale, not even from a batch rolled back
(its events stay in the store). An event whose organization the read model does not
know (its registration parked as a dead letter) cannot be written:
:class:`UnknownOrganization` is a write the read model refuses, found event by event
and handled as a poison event, like a constraint violation.

A projection that ran before this table existed starts with it empty:
:func:`backfill_public_events` (run when the projector connects) writes the rows of
every event up to the projection's position, as the batches would have.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from a4c_domain import Invitation, Organization
from a4c_domain.public_events import Public, form_of, organization_id_of, public_body
from a4c_projector.dialects.base import Database
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import read_log
from a4c_projector.readmodel.handlers import RowChange, RowHandlers
from a4c_projector.readmodel.tracking import read_position
from a4c_projector.schema import PUBLIC_EVENTS

if TYPE_CHECKING:  # tables.py is above this module (it ensures the schema)
    from a4c_projector.readmodel.tables import TableSet

# Entries learnt per connection before it forgets them all (a few lookups then).
FACTS_LIMIT = 100_000
# Events read per statement while backfilling.
BACKFILL_WINDOW = 5000

COLUMNS = PUBLIC_EVENTS.column_names
assert COLUMNS == (
    "position",
    "event_id",
    "type",
    "organization_id",
    "subject_id",
    "occurred_at",
    "body",
), "the public event row's columns moved: update public_event_rows"


class UnknownOrganization(LookupError):
    """The read model does not know the organization of an event (its registration is
    parked): the event's public form cannot be written."""


@dataclass
class Facts:
    """What never changes: organization id → slug, invitation id → organization id."""

    slugs: dict[UUID, str] = field(default_factory=dict)
    organizations: dict[UUID, UUID] = field(default_factory=dict)

    def learn(self, slugs: dict[UUID, str], organizations: dict[UUID, UUID]) -> None:
        self.slugs.update(slugs)
        self.organizations.update(organizations)

    def trim(self) -> None:
        """Forget everything once over :data:`FACTS_LIMIT` (between batches only: a
        batch needs what it learnt until its rows are written)."""
        if len(self.slugs) + len(self.organizations) > FACTS_LIMIT:
            self.slugs.clear()
            self.organizations.clear()


_facts: weakref.WeakKeyDictionary[Database, Facts] = weakref.WeakKeyDictionary()


def facts_of(db: Database) -> Facts:
    found = _facts.get(db)
    if found is None:
        found = _facts[db] = Facts()
    return found


# A public event's change, its form, and the organization it names itself (if it does).
Pending = tuple[RowChange, Public, UUID | None]


def _public(changes: Sequence[RowChange]) -> list[Pending]:
    """The changes whose event is public."""
    found = []
    for change in changes:
        event = change.event
        if event is not None:
            form = form_of(type(event))
            if isinstance(form, Public):
                found.append((change, form, organization_id_of(event)))
    return found


def _resolve(db: Database, tables: TableSet, public: Sequence[Pending]) -> Facts:
    """Learn the organization and slug of every event (see the module's docstring)."""
    facts = facts_of(db)
    facts.trim()
    slugs: dict[UUID, str] = {}
    organizations: dict[UUID, UUID] = {}
    for change, _, _ in public:
        event = change.event
        if isinstance(event, Organization.Registered):
            slugs[event.originator_id] = event.slug
        elif isinstance(event, Invitation.Invited):
            organizations[event.originator_id] = event.organization_id
    facts.learn(slugs, organizations)
    wanted = {c.id for c, _, named in public if named is None and c.id not in facts.organizations}
    if wanted:
        condition, param = db.in_list("id", sorted(wanted))
        found = db.execute(
            f'SELECT id, organization_id FROM "{tables.invitations}" WHERE {condition}', (param,)
        )
        facts.learn({}, {UUID(str(r[0])): UUID(str(r[1])) for r in found})
    unknown = {
        org
        for c, _, named in public
        if (org := named or facts.organizations.get(c.id)) is not None and org not in facts.slugs
    }
    if unknown:
        condition, param = db.in_list("id", sorted(unknown))
        found = db.execute(
            f'SELECT id, slug FROM "{tables.organizations}" WHERE {condition}', (param,)
        )
        facts.learn({UUID(str(r[0])): str(r[1]) for r in found}, {})
    return facts


def public_event_rows(
    db: Database, tables: TableSet, changes: Sequence[RowChange]
) -> list[list[Any]]:
    """The ``public_events`` row of each public event among ``changes`` (unfolded)."""
    public = _public(changes)
    if not public:
        return []
    facts = _resolve(db, tables, public)
    slugs, organizations = facts.slugs, facts.organizations
    rows = []
    for change, form, named in public:
        event = change.event
        organization = named or organizations.get(change.id)
        slug = None if organization is None else slugs.get(organization)
        if organization is None or slug is None:
            raise UnknownOrganization(
                f"no organization known for event {change.position} "
                f"({type(event).__qualname__} of {change.id} version {change.version}): "
                "is its registration parked?"
            )
        event_id = change.event_id
        body = public_body(
            event, organization_id=organization, organization_slug=slug, event_id=event_id
        )
        rows.append(
            [change.position, event_id, form.type, organization, change.id, event.timestamp, body]
        )
    return rows


_INSERT = (
    f"INSERT INTO {{table}} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
    "ON CONFLICT (position) DO NOTHING"
)
# The columns' types as PostgreSQL names them, for a binary COPY.
_COPY_TYPES = ("int8", "uuid", "text", "uuid", "uuid", "timestamptz", "text")


def write_public_events(
    db: Database, tables: TableSet, changes: Sequence[RowChange], copy_threshold: int
) -> int:
    """Write the public events among a batch's (unfolded) changes, after the row
    changes; how many.

    From ``copy_threshold`` rows on PostgreSQL, ``COPY`` straight into the table (a
    catch-up writes thousands; through a stage, as the other tables' rows go, would
    write each row twice). A row is only ever written by the batch that moves the
    position past it, so none of a batch's rows can exist yet; should one (a replay
    nobody foresaw), the duplicate key fails the batch, which is then written event
    by event (:data:`a4c_projector.engine.projector.WRITE_ERRORS`) through the
    ``executemany`` below, which skips a row already there.
    """
    rows = public_event_rows(db, tables, changes)
    if isinstance(db, PostgresDatabase) and len(rows) >= copy_threshold:
        statement = (
            f'COPY "{tables.public_events}" ({", ".join(COLUMNS)}) FROM STDIN (FORMAT BINARY)'
        )
        with db.conn.cursor() as cur, cur.copy(statement.encode()) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
    elif rows:
        db.executemany(_INSERT.format(table=f'"{tables.public_events}"'), rows)
    return len(rows)


def backfill_public_events(
    db: Database, tables: TableSet, decoder: EventDecoder, projection: str, copy_threshold: int
) -> int:
    """Write the public events of a projection that ran before the table existed: every
    applied event up to its position (parked ones stay parked), as its batches would
    have. Only when the table is empty and the position is not 0 (every save holds a
    public event, so an applied projection with none has never written them): one
    cheap query otherwise. Inside the caller's transaction; the rows written."""
    if db.execute(f'SELECT EXISTS (SELECT 1 FROM "{tables.public_events}")')[0][0]:
        return 0
    last = read_position(db, projection)
    if last == 0:
        return 0
    parked = {
        int(r[0])
        for r in db.execute(
            f'SELECT notification_id FROM "{tables.dead_letters}" WHERE notification_id <= %s',
            (last,),
        )
    }
    handlers, written, position = RowHandlers(), 0, 0
    while position < last:
        upper = min(position + BACKFILL_WINDOW, last)
        notifications, _ = read_log(db, position, upper, BACKFILL_WINDOW)
        changes = []
        for row in notifications:
            if row.notification_id not in parked:
                change = handlers.changes(decoder.decode(row))
                if change is not None:
                    change.position = row.notification_id
                    changes.append(change)
        written += write_public_events(db, tables, changes, copy_threshold)
        position = upper
    return written
