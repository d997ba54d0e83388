"""The aggregate and event base classes shared by Organization and Invitation.

Adds two things to eventsourcing's ``Aggregate``: every event carries ``metadata``
(the current :class:`~a4c_domain.cause.Cause`) and a deterministic ``event_id``.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import Aggregate, CanInitAggregate, CanMutateAggregate

from a4c_domain.cause import current_cause
from a4c_domain.ids import event_id


class DomainAggregate(Aggregate):
    """Base aggregate: stamps the cause on every event it records."""

    class Event(Aggregate.Event):
        metadata: dict[str, str]

        @property
        def event_id(self) -> UUID:
            return event_id(self.originator_id, self.originator_version)

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _create(
        cls,
        event_class: type[CanInitAggregate[UUID]],
        *,
        id: UUID | None = None,  # eventsourcing's parameter name
        **kwargs: Any,
    ) -> Any:
        kwargs.setdefault("metadata", current_cause().as_metadata())
        return cast(Any, super())._create(event_class, id=id, **kwargs)

    def trigger_event(
        self,
        event_class: type[CanMutateAggregate[UUID]],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("metadata", current_cause().as_metadata())
        super().trigger_event(event_class, **kwargs)
