"""The WebhookEndpoint aggregate: where, and for which events, a4c delivers webhooks.

An endpoint is owned by one organization (its admins manage it, and it only ever gets
that organization's events) or by the platform (``owner_id`` None: operators manage it;
it gets every organization's events, or one organization's when ``organization_id`` is
set). Its id derives from the owner and a name the owner chose (:func:`webhook_endpoint_id`),
so creating it again is a no-op and a retried create lands on the same aggregate; the
URL can change, the name cannot.

The signing secret is recorded **sealed** (cipher text under the platform's webhook
secret keys, sealed at the edge that generated it): the domain never sees it in clear.
A rotation keeps the previous secret until ``previous_secret_expires_at``, so both sign
during the overlap and a receiver can switch over without losing a delivery.

Disabled endpoints get nothing until enabled again; a deleted one is gone until it is
added again under the same name (``Reinstated``: a new secret, a new life, the same id).
Command methods decide (no-op, conflict, new event); the ``@event`` methods only assign.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypedDict, Unpack
from uuid import UUID

from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.errors import WebhookEndpointConflict, WebhookEndpointDeleted
from a4c_domain.ids import webhook_endpoint_id

WebhookEndpointStatus = Literal["enabled", "disabled", "deleted"]


class EndpointSettings(TypedDict):
    """What an owner sets on an endpoint and may change (the name and secret aside):
    the keywords every settings command takes, and the fields of ``Changed``."""

    url: str
    event_types: list[str] | None  # None: every public event type
    organization_id: UUID | None  # only this organization's events (an owner's own)
    description: str


# Their names, in the order a conflict's differences list them.
_SETTINGS: tuple[str, ...] = tuple(EndpointSettings.__annotations__)


class WebhookEndpoint(DomainAggregate):
    """One receiver of webhooks, and what it receives."""

    class Added(DomainAggregate.Created):
        owner_id: UUID | None  # the owning organization; None: the platform's (operators')
        name: str
        url: str
        event_types: list[str] | None  # None: every public event type
        organization_id: UUID | None  # only this organization's events (an owner's own)
        description: str
        secret: str  # sealed; never the secret itself

    class Changed(DomainAggregate.Event):
        url: str
        event_types: list[str] | None
        organization_id: UUID | None
        description: str

    class SecretRotated(DomainAggregate.Event):
        secret: str  # sealed
        previous_secret: str  # sealed: the one replaced (the read model keeps it too)
        previous_secret_expires_at: datetime

    class Disabled(DomainAggregate.Event):
        reason: str
        automatic: bool  # by the delivery daemon (failing for days, or 410 Gone)

    class Enabled(DomainAggregate.Event):
        pass

    class Deleted(DomainAggregate.Event):
        pass

    class Reinstated(DomainAggregate.Event):
        url: str
        event_types: list[str] | None
        organization_id: UUID | None
        description: str
        secret: str  # sealed

    @staticmethod
    def create_id(owner_id: UUID | None, name: str) -> UUID:
        return webhook_endpoint_id(owner_id, name)

    @event(Added)
    def __init__(
        self,
        owner_id: UUID | None,
        name: str,
        url: str,
        event_types: list[str] | None,
        organization_id: UUID | None,
        description: str,
        secret: str,
    ) -> None:
        self.owner_id = owner_id
        self.name = name
        self._begin(url, event_types, organization_id, description, secret)

    def _begin(
        self,
        url: str,
        event_types: list[str] | None,
        organization_id: UUID | None,
        description: str,
        secret: str,
    ) -> None:
        """A new life (added, or added again once deleted): these settings and secret,
        no previous secret, enabled."""
        self._assign(url, event_types, organization_id, description)
        self.secret = secret
        self.previous_secret: str | None = None
        self.previous_secret_expires_at: datetime | None = None
        self._set_enabled()

    def _assign(
        self,
        url: str,
        event_types: list[str] | None,
        organization_id: UUID | None,
        description: str,
    ) -> None:
        self.url = url
        self.event_types = None if event_types is None else list(event_types)
        self.organization_id = organization_id
        self.description = description

    def _set_enabled(self) -> None:
        self.status: WebhookEndpointStatus = "enabled"
        self.disabled_reason: str | None = None
        self.disabled_automatically = False

    # --- queries on state -------------------------------------------------------------

    def settings_differences(self, **given: Unpack[EndpointSettings]) -> dict[str, tuple[Any, Any]]:
        """Fields where the given settings differ from the recorded ones."""
        values: Mapping[str, object] = given  # read by name (a TypedDict takes literals only)
        return {
            k: (getattr(self, k), values[k]) for k in _SETTINGS if getattr(self, k) != values[k]
        }

    def require_not_deleted(self, action: str) -> None:
        if self.status == "deleted":
            raise WebhookEndpointDeleted(
                f"webhook endpoint {self.name!r} is deleted; cannot {action}"
            )

    # --- commands ---------------------------------------------------------------------

    def reinstate(self, *, secret: str, **settings: Unpack[EndpointSettings]) -> bool:
        """Create again under the same name: a no-op (False) unless it was deleted."""
        if self.status != "deleted":
            differences = self.settings_differences(**settings)
            if differences:
                raise WebhookEndpointConflict(
                    f"webhook endpoint {self.name!r} already exists with different "
                    f"{', '.join(sorted(differences))}",
                    differences,
                )
            return False
        self._reinstated(**settings, secret=secret)
        return True

    def change(self, **settings: Unpack[EndpointSettings]) -> None:
        self.require_not_deleted("change it")
        if not self.settings_differences(**settings):
            return
        self._changed(**settings)

    def rotate_secret(self, secret: str, previous_secret_expires_at: datetime) -> None:
        """The same sealed secret again is a no-op (a retried rotation)."""
        self.require_not_deleted("rotate its secret")
        if secret == self.secret:
            return
        self._secret_rotated(
            secret=secret,
            previous_secret=self.secret,
            previous_secret_expires_at=previous_secret_expires_at,
        )

    def disable(self, reason: str, automatic: bool) -> None:
        self.require_not_deleted("disable it")
        if self.status == "disabled":
            return
        self._disabled(reason=reason, automatic=automatic)

    def enable(self) -> None:
        self.require_not_deleted("enable it")
        if self.status == "enabled":
            return
        self._enabled()

    def delete(self) -> None:
        if self.status == "deleted":
            return
        self._deleted()

    # --- events: assignments only -----------------------------------------------------

    @event(Changed)
    def _changed(
        self,
        url: str,
        event_types: list[str] | None,
        organization_id: UUID | None,
        description: str,
    ) -> None:
        self._assign(url, event_types, organization_id, description)

    @event(SecretRotated)
    def _secret_rotated(
        self, secret: str, previous_secret: str, previous_secret_expires_at: datetime
    ) -> None:
        self.previous_secret = previous_secret
        self.previous_secret_expires_at = previous_secret_expires_at
        self.secret = secret

    @event(Disabled)
    def _disabled(self, reason: str, automatic: bool) -> None:
        self.status = "disabled"
        self.disabled_reason = reason
        self.disabled_automatically = automatic

    @event(Enabled)
    def _enabled(self) -> None:
        self._set_enabled()

    @event(Deleted)
    def _deleted(self) -> None:
        self.status = "deleted"

    @event(Reinstated)
    def _reinstated(
        self,
        url: str,
        event_types: list[str] | None,
        organization_id: UUID | None,
        description: str,
        secret: str,
    ) -> None:
        self._begin(url, event_types, organization_id, description, secret)
