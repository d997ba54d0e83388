"""The SSOConnection aggregate: an organization's own OpenID Connect provider for sign-in.

One per organization (its id derives from the organization's, :func:`sso_connection_id`).
It holds two configurations: the **active** one, in force for the organization's
sign-ins, and a **pending** one being tried. Each configuration (issuer, client id, the
client secret **sealed** by the caller under the platform's keys: the domain only ever
stores opaque cipher text) gets the next ``generation`` number, which every later step
names, so a test or an activation meant for a configuration that was replaced since is
refused instead of applied to the new one.

The pending configuration becomes active only once a test sign-in through it succeeded
(``Tested``: the tester's subject and e-mail domain, never the address) and it is then
activated. Until then, and when it is abandoned (a failed or timed-out test, a
cancellation), the active configuration stays in force untouched. Deactivating ends
the active one; the pending one, if any, is left to its own steps.

Command methods decide (no-op, refusal, new event); the ``@event`` methods only assign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.errors import SSOConfigurationNotPending, SSONotTested
from a4c_domain.ids import sso_connection_id

SSOStatus = Literal["inactive", "active"]


@dataclass(frozen=True)
class SSOClientCredentials:
    """How a4c signs in at one configuration's provider: for the worker's exchange of a
    sign-in's code only (never a view, a read model or an answer). The secret is sealed;
    opening it is the worker's (``SSO_SECRET_KEYS``)."""

    generation: int
    issuer: str
    client_id: str
    sealed_client_secret: str = field(repr=False)


class SSOConnection(DomainAggregate):
    """An organization's sign-in provider: the configuration in force, the one tried."""

    class Configured(DomainAggregate.Created):
        organization_id: UUID
        issuer: str
        client_id: str
        client_secret: str  # sealed; never the secret itself

    class Reconfigured(DomainAggregate.Event):
        generation: int
        issuer: str
        client_id: str
        client_secret: str  # sealed

    class Tested(DomainAggregate.Event):
        generation: int
        subject: str  # the tester's subject at the provider
        email_domain: str  # the domain of the tester's verified address; never the address

    class Activated(DomainAggregate.Event):
        generation: int
        # The configuration put in force, named so a reader of this event alone (the
        # projector's row) knows which provider now signs the organization's members in.
        issuer: str
        client_id: str
        # Where its members' browsers are sent to sign in (from the provider's discovery,
        # checked when the configuration was tried); None in events of earlier builds.
        authorization_endpoint: str | None = None

    class Abandoned(DomainAggregate.Event):
        generation: int
        reason: str

    class Deactivated(DomainAggregate.Event):
        reason: str

    @staticmethod
    def create_id(organization_id: UUID) -> UUID:
        return sso_connection_id(organization_id)

    @event(Configured)
    def __init__(
        self, organization_id: UUID, issuer: str, client_id: str, client_secret: str
    ) -> None:
        self.organization_id = organization_id
        self.active_generation: int | None = None
        self.active_issuer: str | None = None
        self.active_client_id: str | None = None
        self.active_client_secret: str | None = None
        self.active_authorization_endpoint: str | None = None
        self.deactivation_reason: str | None = None
        self.abandon_reason: str | None = None
        self._pend(1, issuer, client_id, client_secret)

    def _pend(self, generation: int, issuer: str, client_id: str, client_secret: str) -> None:
        self.generation = generation  # the latest configuration's number
        self.pending_generation: int | None = generation
        self.pending_issuer: str | None = issuer
        self.pending_client_id: str | None = client_id
        self.pending_client_secret: str | None = client_secret
        self.tested_subject: str | None = None
        self.tested_email_domain: str | None = None

    def _clear_pending(self) -> None:
        self.pending_generation = None
        self.pending_issuer = None
        self.pending_client_id = None
        self.pending_client_secret = None
        self.tested_subject = None
        self.tested_email_domain = None

    # --- queries on state -------------------------------------------------------------

    @property
    def status(self) -> SSOStatus:
        return "inactive" if self.active_generation is None else "active"

    @property
    def pending_tested(self) -> bool:
        return self.pending_generation is not None and self.tested_subject is not None

    def _pending_is(self, issuer: str, client_id: str, client_secret: str) -> bool:
        return self.pending_generation is not None and (
            self.pending_issuer,
            self.pending_client_id,
            self.pending_client_secret,
        ) == (issuer, client_id, client_secret)

    def _active_is(self, issuer: str, client_id: str, client_secret: str) -> bool:
        return self.active_generation is not None and (
            self.active_issuer,
            self.active_client_id,
            self.active_client_secret,
        ) == (issuer, client_id, client_secret)

    def credentials(self, generation: int) -> SSOClientCredentials:
        """Configuration ``generation``'s client, if it is the one tried or the one in
        force; else :class:`SSOConfigurationNotPending`."""
        if generation == self.pending_generation:
            issuer, client_id, secret = (
                self.pending_issuer,
                self.pending_client_id,
                self.pending_client_secret,
            )
        elif generation == self.active_generation:
            issuer, client_id, secret = (
                self.active_issuer,
                self.active_client_id,
                self.active_client_secret,
            )
        else:
            raise SSOConfigurationNotPending(generation)
        assert issuer is not None and client_id is not None and secret is not None
        return SSOClientCredentials(generation, issuer, client_id, secret)

    # --- commands ---------------------------------------------------------------------

    def configure(self, issuer: str, client_id: str, client_secret: str) -> None:
        """Try a new configuration (the pending one it replaces is dropped; the active
        one stays in force). The one being tried, or the one in force with nothing
        being tried, again: a no-op (a retried command carries the same sealed secret)."""
        if self._pending_is(issuer, client_id, client_secret):
            return
        if self.pending_generation is None and self._active_is(issuer, client_id, client_secret):
            return
        self._reconfigured(
            generation=self.generation + 1,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
        )

    def record_test(self, generation: int, subject: str, email_domain: str) -> None:
        """A test sign-in through configuration ``generation`` succeeded. Once tested
        (or activated since), again is a no-op: the first test stands."""
        if generation == self.pending_generation:
            if self.tested_subject is None:
                self._tested(generation=generation, subject=subject, email_domain=email_domain)
            return
        if generation == self.active_generation:
            return
        raise SSOConfigurationNotPending(generation)

    def activate(self, generation: int, authorization_endpoint: str | None = None) -> None:
        """Put configuration ``generation`` in force; it must have passed its test.
        ``authorization_endpoint``: its provider's, as its check found it."""
        if generation == self.active_generation:  # numbers are never reused
            return
        if generation != self.pending_generation:
            raise SSOConfigurationNotPending(generation)
        if self.tested_subject is None or self.pending_issuer is None:
            raise SSONotTested(generation)
        assert self.pending_client_id is not None  # set with the issuer
        self._activated(
            generation=generation,
            issuer=self.pending_issuer,
            client_id=self.pending_client_id,
            authorization_endpoint=authorization_endpoint,
        )

    def abandon(self, generation: int, reason: str) -> None:
        """Stop trying configuration ``generation`` (its test failed, timed out or was
        cancelled); the active one stays. Not the one being tried (any more): a no-op."""
        if generation != self.pending_generation:
            return
        self._abandoned(generation=generation, reason=reason)

    def deactivate(self, reason: str) -> None:
        """End single sign-on for the organization (none in force: a no-op)."""
        if self.active_generation is None:
            return
        self._deactivated(reason=reason)

    # --- events: assignments only -----------------------------------------------------

    @event(Reconfigured)
    def _reconfigured(
        self, generation: int, issuer: str, client_id: str, client_secret: str
    ) -> None:
        self._pend(generation, issuer, client_id, client_secret)

    @event(Tested)
    def _tested(self, generation: int, subject: str, email_domain: str) -> None:
        self.tested_subject = subject
        self.tested_email_domain = email_domain

    @event(Activated)
    def _activated(
        self, generation: int, issuer: str, client_id: str, authorization_endpoint: str | None
    ) -> None:
        self.active_generation = generation
        self.active_issuer = issuer
        self.active_client_id = client_id
        self.active_authorization_endpoint = authorization_endpoint
        self.active_client_secret = self.pending_client_secret
        self.deactivation_reason = None
        self._clear_pending()

    @event(Abandoned)
    def _abandoned(self, generation: int, reason: str) -> None:
        self.abandon_reason = reason
        self._clear_pending()

    @event(Deactivated)
    def _deactivated(self, reason: str) -> None:
        self.active_generation = None
        self.active_issuer = None
        self.active_client_id = None
        self.active_client_secret = None
        self.active_authorization_endpoint = None
        self.deactivation_reason = reason
