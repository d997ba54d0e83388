# ruff: noqa: S608 - SQL identifiers come from code; values are bound
"""The public event feed's reads (``GET /v1/events``), a part of :class:`ReadModel`.

Kept apart from the read models' other reads: the feed is read by position, not by
aggregate, and its one promise (never a position the no-skip guard has not proven)
rests on the projector writing these rows with its position, nothing done here.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from a4c_projector.dialects.base import Database
from a4c_projector.readmodel.tables import TableSet


class PublicEventReads:
    """Mixed into :class:`a4c_projector.queries.ReadModel`, which provides these."""

    _db: Database
    tables: TableSet

    def _read(self) -> AbstractContextManager[None]:
        raise NotImplementedError  # ReadModel's

    def public_events(
        self,
        after: int,
        limit: int,
        types: frozenset[str] | None = None,
        organization_id: UUID | None = None,
        since: datetime | None = None,
    ) -> list[tuple[int, str]]:
        """Up to ``limit`` public events after position ``after``, in position order, as
        (position, body: the ``PublicEvent`` JSON). Only positions the projection has
        applied (so the no-skip guard has passed) exist: a caller that goes on after the
        last position it got never misses one. ``types``: only these; ``organization_id``:
        only that organization's (None: every organization's; who may ask is the
        caller's to decide); ``since``: from the first event that occurred at or after it
        (:meth:`public_events_start`; with ``after``, whichever starts later)."""
        if since is not None:
            after = max(after, self.public_events_start(since))
        clauses, params = ["position > %s"], list[Any]([after])
        if types is not None:
            if not types:
                return []
            condition, wanted = self._db.in_list("type", sorted(types))
            clauses.append(condition)
            params.append(wanted)
        if organization_id is not None:
            clauses.append("organization_id = %s")
            params.append(organization_id)
        with self._read():
            rows = self._db.execute(
                f'SELECT position, body FROM "{self.tables.public_events}" '
                f"WHERE {' AND '.join(clauses)} ORDER BY position LIMIT %s",
                [*params, limit],
            )
        return [(int(r[0]), str(r[1])) for r in rows]

    def public_events_start(self, since: datetime) -> int:
        """The position to read after to start at the first public event (in feed order)
        that occurred at or after ``since``; when none has yet, the last position, so
        reading on from it misses nothing that comes later. A start, not a filter: every
        later event follows, even one whose writer's clock said a little earlier."""
        table = f'"{self.tables.public_events}"'
        with self._read():
            rows = self._db.execute(
                f"SELECT (SELECT min(position) FROM {table} WHERE occurred_at >= %s), "
                f"(SELECT max(position) FROM {table})",
                (since.astimezone(UTC),),  # SQLite compares the times as UTC text
            )
        first, last = rows[0]
        return int(first) - 1 if first is not None else int(last or 0)
