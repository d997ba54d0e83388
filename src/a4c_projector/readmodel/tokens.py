# ruff: noqa: S608 - SQL identifiers come from code (TableSet names); values are bound
"""The invitation-tokens read model: one row per token generation ever issued.

The invitation row holds only its current token's hash; the accept page must also know
a token superseded by a re-send ("this link was replaced by a newer one") from one that
was never issued. Every ``Invited`` and ``TokenReissued`` event's change carries the
token's hash and generation, so each becomes a row here: taken from the batch's changes
*before* they are folded per invitation (a fold of a re-send with the invitation keeps
only the last hash). The organization comes from the invitation row, written earlier in
the same statement group (``TokenReissued`` does not carry it).

A row is a fact: written once, with its issuing event's bookkeeping, and version-guarded
like every write, so a replay or a rebuild writes the same rows.

A projection that ran before this table existed has only the current hashes in its
invitation rows: :func:`backfill_tokens` (run when the projector connects) reads those
invitations' events from the store and writes what replaying them would have written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import head, read_log
from a4c_projector.readmodel.handlers import RowChange, RowHandlers
from a4c_projector.readmodel.staging import copy_rows, ensure_stage
from a4c_projector.schema import INVITATION_TOKENS

if TYPE_CHECKING:  # tables.py is above this module (it ensures the schema)
    from a4c_projector.readmodel.tables import TableSet

# Events read per statement while backfilling.
BACKFILL_WINDOW = 5000

# The statements take the organization from the invitation row, and rely on this order.
assert INVITATION_TOKENS.column_names[:5] == (
    "token_hash",
    "invitation_id",
    "organization_id",
    "token_generation",
    "issued_at",
), "the token row's columns moved: update the statements"


# What a token row takes from its change: every column but the organization's.
FROM_CHANGE = tuple(c for c in INVITATION_TOKENS.column_names if c != "organization_id")
_UPSERT = (
    "ON CONFLICT (token_hash) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INVITATION_TOKENS.column_names[1:])
    + " WHERE t.version < excluded.version"
)


def _statement(tables: TableSet) -> str:
    """One token row (``FROM_CHANGE`` values), its organization from the invitation row."""
    columns = ", ".join(INVITATION_TOKENS.column_names)
    values = ", ".join(["%s"] * (len(FROM_CHANGE) - 2))
    return (
        f'INSERT INTO "{tables.invitation_tokens}" AS t ({columns}) '
        f'SELECT %s, id, organization_id, {values} FROM "{tables.invitations}" WHERE id = %s '
        + _UPSERT
    )


def _from_stage(tables: TableSet, stage: str) -> str:
    """Every staged token row at once, its organization from the invitation row."""
    columns = ", ".join(INVITATION_TOKENS.column_names)
    values = ", ".join(f"s.{c}" for c in INVITATION_TOKENS.column_names[3:])
    return (
        f'INSERT INTO "{tables.invitation_tokens}" AS t ({columns}) '
        f"SELECT s.token_hash, i.id, i.organization_id, {values} "
        f'FROM "{stage}" s JOIN "{tables.invitations}" i ON i.id = s.invitation_id ' + _UPSERT
    )


def token_rows(changes: Iterable[RowChange], now: datetime) -> list[list[Any]]:
    """The ``FROM_CHANGE`` values of each change that issues a token."""
    rows = []
    for change in changes:
        if change.table == "invitations" and "token_hash" in change.columns:
            rows.append(
                [
                    change.columns["token_hash"],
                    change.id,
                    change.columns["token_generation"],
                    change.modified_at,  # issued_at: the event's time
                    change.modified_at,
                    change.version,
                    change.event_id,
                    change.position,
                    now,
                ]
            )
    return rows


def write_tokens(
    db: Database, tables: TableSet, changes: Sequence[RowChange], copy_threshold: int
) -> None:
    """Write the token rows of a batch's (unfolded) changes; after their invitations.

    From ``copy_threshold`` rows on PostgreSQL, staged and written by one statement
    (as the writer does: a catch-up issues thousands); otherwise one ``executemany``.
    """
    rows = token_rows(changes, datetime.now(UTC))
    if isinstance(db, PostgresDatabase) and len(rows) >= copy_threshold:
        stage = ensure_stage(db.conn, tables.invitation_tokens)
        db.execute(f'DELETE FROM "{stage}"')  # of an earlier write in this transaction
        copy_rows(db.conn, stage, 0, FROM_CHANGE, rows)
        db.execute(_from_stage(tables, stage))
    elif rows:
        db.executemany(_statement(tables), [[*row[:1], *row[2:], row[1]] for row in rows])


def backfill_tokens(
    db: Database, tables: TableSet, decoder: EventDecoder, copy_threshold: int
) -> None:
    """Write the token rows of invitations whose current token has none (idempotent:
    one indexed query, and nothing else, on a projection whose tokens are complete).

    Each such invitation's events up to its row's version are read from the store and
    handled as the projector would: exactly the rows a replay would have written.
    Inside the caller's transaction.
    """
    invitations, tokens = tables.invitations, tables.invitation_tokens
    missing = db.execute(
        f'SELECT id, version FROM "{invitations}" i WHERE NOT EXISTS '
        f'(SELECT 1 FROM "{tokens}" t WHERE t.token_hash = i.token_hash)'
    )
    if not missing:
        return
    versions = {UUID(str(row[0])): int(row[1]) for row in missing}
    handlers = RowHandlers()
    changes: list[RowChange] = []
    position, last = 0, head(db)
    while position < last:
        upper = min(position + BACKFILL_WINDOW, last)
        notifications, _ = read_log(db, position, upper, BACKFILL_WINDOW)
        for row in notifications:
            if row.originator_version <= versions.get(row.originator_id, 0):
                change = handlers.changes(decoder.decode(row))
                if change is not None:
                    change.position = row.notification_id
                    changes.append(change)
        position = upper
    write_tokens(db, tables, changes, copy_threshold)
