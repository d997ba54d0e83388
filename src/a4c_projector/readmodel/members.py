# ruff: noqa: S608 - SQL identifiers come from code (TableSet names); values are bound
"""The members read model: every accepted invitation's row, as who joined which organization.

A member row is a function of its invitation's row alone (which is the fold of the
invitation's own event stream): the organization, ``accepted_by`` as ``user_id``, the
invited address, role and name, ``accepted_at`` as ``joined_at``, and the invitation
row's bookkeeping (version, last event, position). So it is derived in SQL from the
invitation row, in the transaction that wrote it, for every invitation a batch touched;
it is never computed from an event alone (``Invitation.Accepted`` carries only the user
id). Carrying the invitation's version makes the derivation version-guarded like every
other write, and makes a member row the same however the events were batched (a late
``EmailSent`` after the acceptance moves both rows on together), so a rebuild equals the
live tables.

The same statement without an id list fills the table from every accepted invitation:
:func:`backfill_members`, run by whoever ensures the schema, right after it, is how a
projection that ran before this table existed gets the members of invitations accepted
back then. It is
exactly what replaying those events would have written, because the invitation rows
already hold the state at the projection's position.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import TableSet
from a4c_projector.schema import MEMBERS

# Each member column and the invitation column it is taken from (MEMBERS' order).
FROM_INVITATION = {
    "invitation_id": "id",
    "organization_id": "organization_id",
    "user_id": "accepted_by",
    "email": "email",
    "role": "role",
    "first_name": "first_name",
    "last_name": "last_name",
    "joined_at": "accepted_at",
    "modified_at": "modified_at",
    "version": "version",
    "last_event_id": "last_event_id",
    "last_position": "last_position",
    "updated_at": "updated_at",
    "issuer": "accepted_issuer",
    "subject": "accepted_subject",
}
assert tuple(FROM_INVITATION) == MEMBERS.column_names, "a members column has no source"


def _derive(tables: TableSet, condition: str) -> str:
    """Upsert the members of the accepted invitations matching ``condition``."""
    targets = ", ".join(FROM_INVITATION)
    sources = ", ".join(FROM_INVITATION.values())
    updates = ", ".join(f"{c} = excluded.{c}" for c in FROM_INVITATION if c != "invitation_id")
    return (
        f'INSERT INTO "{tables.members}" AS t ({targets}) '
        f"SELECT {sources} FROM \"{tables.invitations}\" WHERE status = 'accepted' AND "
        f"{condition} ON CONFLICT (invitation_id) DO UPDATE SET {updates} "
        "WHERE t.version < excluded.version"
    )


def write_members(db: Database, tables: TableSet, invitation_ids: Sequence[UUID]) -> None:
    """Bring the member rows of these (just written) invitations up to date: one
    statement, however many ids."""
    if invitation_ids:
        condition, wanted = db.in_list("id", invitation_ids)
        # executemany: sent without waiting for an answer (a batch's pipeline goes on).
        db.executemany(_derive(tables, condition), [(wanted,)])


def backfill_members(db: Database, tables: TableSet) -> None:
    """Derive the member row of every accepted invitation that has none or an older one
    (idempotent). Inside a transaction, after
    :func:`~a4c_projector.readmodel.tables.ensure_schema`.

    It runs beside the active replica's batches (every ``a4c-projector`` command and
    every starting replica runs it), so on members that are up to date it is one read
    and locks nothing: an upsert of every row would lock each in its own scan order,
    wait behind a batch writing one and could deadlock with it. Rows that do need it
    are written under a lock that admits one backfill at a time and no batch beside it.
    """
    behind = _behind(tables)
    if db.execute(f"SELECT EXISTS ({behind})")[0][0]:
        db.lock_against_writers([tables.members])
        db.execute(_derive(tables, f"id IN ({behind})"))


def _behind(tables: TableSet) -> str:
    """The accepted invitations whose member row is missing or older than they are."""
    return (
        f"SELECT i.id FROM \"{tables.invitations}\" i WHERE i.status = 'accepted' AND NOT EXISTS "
        f'(SELECT 1 FROM "{tables.members}" m '
        "WHERE m.invitation_id = i.id AND m.version >= i.version)"
    )
