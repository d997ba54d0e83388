"""Event handlers: each domain event becomes the column values it sets on one row.

Handlers are pure (no I/O): ``RowHandlers().changes(event)`` returns a
:class:`RowChange`. The writer folds a batch's changes per aggregate and turns them into
version-guarded upserts, which is what makes replaying any range a no-op. Adding an
event type means adding one ``@handles(EventClass)`` method here; one that changes no
read-model row (a domain claim) returns None, and the event still counts as applied.

Dispatch is a dict lookup on the event's class, built once per class: this runs for
every event of a catch-up, and ``functools.singledispatchmethod`` rebuilt a bound
function on each call.

(Over 300 lines because it is one handler per event type, each a few lines: splitting
them would scatter the one table an event-type change has to be read against.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID, SafeUUID

from a4c_domain import DomainClaim, Invitation, Organization
from a4c_domain.base import DomainAggregate
from a4c_domain.email_domains import EmailDomainClaim, EmailDomainVerification
from a4c_domain.ids import EVENT_NAMESPACE
from a4c_domain.sso_connection import SSOConnection
from a4c_domain.webhook_endpoint import WebhookEndpoint

# A webhook endpoint row's columns while it is enabled (added, enabled, reinstated).
_ENDPOINT_ENABLED: Mapping[str, Any] = {
    "status": "enabled",
    "disabled_reason": None,
    "disabled_automatically": False,
}


class UnhandledEvent(Exception):
    """The projector has no handler for this event class."""


@dataclass(slots=True)
class RowChange:
    """What one event (or a fold of consecutive events) does to one read-model row."""

    table: str  # a TableSet property: "organizations", "invitations", ...
    id: UUID
    version: int
    modified_at: datetime
    columns: dict[str, Any] = field(default_factory=dict)
    creates: bool = False  # the row is created by this change (it carries every column)
    # Notification id of the (last) event folded into this change: see ``position``.
    notification_id: int = 0
    # The (last) event itself: its public form is written from the unfolded changes
    # (:mod:`a4c_projector.readmodel.public_events`).
    event: Any = None
    # Columns that record the notification id of this change's own event (a webhook
    # endpoint's ``enabled_since``): filled in when ``position`` is set.
    stamps: tuple[str, ...] = ()
    # ``event_id`` once computed: a catch-up needs each event's id up to three times
    # (its public event, its token row, its folded row), and a SHA-1 each time cost
    # about a tenth of the catch-up's CPU.
    known_event_id: UUID | None = field(default=None, repr=False, compare=False)

    @property
    def position(self) -> int:
        """Notification id of the (last) event folded into this change.

        Set by whoever read the event from the log, once it is handled: a handler is a
        function of the event alone and cannot know where the event was stored. Setting
        it also sets each column of ``stamps`` to it, so a handler can still record its
        event's position in a column.
        """
        return self.notification_id

    @position.setter
    def position(self, value: int) -> None:
        self.notification_id = value
        for column in self.stamps:
            self.columns[column] = value

    @property
    def event_id(self) -> UUID:
        """The id of the (last) event: computed when first asked for, then kept."""
        if self.known_event_id is None:
            self.known_event_id = fast_event_id(self.id, self.version)
        return self.known_event_id

    def then(self, later: RowChange) -> RowChange:
        """This change followed by ``later`` (same row), as one change (each already has
        its position: a stamp an earlier event wrote is kept unless ``later`` wrote it)."""
        assert later.id == self.id and later.version > self.version
        return RowChange(
            table=self.table,
            id=self.id,
            version=later.version,
            modified_at=later.modified_at,
            columns={**self.columns, **later.columns},
            creates=self.creates,
            notification_id=later.notification_id,
            event=later.event,
            stamps=later.stamps,
            known_event_id=later.event_id,  # the same event's: computed once for both
        )


_NAMESPACE_SHA1 = hashlib.sha1(EVENT_NAMESPACE.bytes)  # noqa: S324 - uuid5 is SHA-1
_VERSION_BITS_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_BITS_SET = (5 << 76) | (0x8000 << 48)  # uuid version 5, RFC 4122 variant
_HEX32 = "%032x"
_new_object = object.__new__
_set_attribute = object.__setattr__  # UUID is immutable: this is how it sets itself


def fast_event_id(originator_id: UUID, originator_version: int) -> UUID:
    """:func:`a4c_domain.ids.event_id`, computed in a third of the time.

    The same uuid5 (SHA-1 of the namespace and ``"<id>|<version>"``) without
    ``uuid.uuid5``'s per-call import, ``UUID.__str__`` and the ``UUID`` constructor's
    argument checks (the value is built valid: 128 bits, version and variant set); it
    runs once per row a catch-up writes. ``tests/projector/test_performance_paths.py``
    checks it against the domain's own function.
    """
    digits = _HEX32 % originator_id.int
    sha1 = _NAMESPACE_SHA1.copy()  # cheaper than hashing the namespace again
    sha1.update(
        f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
        f"|{originator_version}".encode()
    )
    value = int.from_bytes(sha1.digest()[:16], "big") & _VERSION_BITS_CLEAR | _VERSION_BITS_SET
    event_id = _new_object(UUID)
    _set_attribute(event_id, "int", value)
    _set_attribute(event_id, "is_safe", SafeUUID.unknown)
    return event_id


Handler = Callable[[Any, Any], RowChange | None]
THandler = TypeVar("THandler", bound=Handler)


def handles(event_class: type[DomainAggregate.Event]) -> Callable[[THandler], THandler]:
    """Mark a ``RowHandlers`` method as the handler of ``event_class`` (and subclasses)."""

    def mark(method: THandler) -> THandler:
        method.__dict__["handled_event"] = event_class
        return method

    return mark


class RowHandlers:
    """``changes(event)`` dispatches on the event class."""

    _by_class: ClassVar[dict[type, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._collect()

    @classmethod
    def _collect(cls) -> None:
        cls._by_class = {}
        for klass in reversed(cls.__mro__):
            for member in vars(klass).values():
                handled = getattr(member, "handled_event", None)
                if handled is not None:
                    cls._by_class[handled] = member

    def changes(self, event: DomainAggregate.Event) -> RowChange | None:
        handler = self._by_class.get(type(event))
        if handler is None:
            handler = self._resolve(type(event))
        return handler(self, event)

    def _resolve(self, event_class: type) -> Handler:
        """The handler of the nearest handled base class (cached for ``event_class``)."""
        for base in event_class.__mro__:
            if base in self._by_class:
                self._by_class[event_class] = self._by_class[base]
                return self._by_class[base]
        raise UnhandledEvent(f"no projector handler for {event_class.__qualname__}")

    @staticmethod
    def _change(table: str, event: DomainAggregate.Event, **columns: Any) -> RowChange:
        return RowChange(
            table=table,
            id=event.originator_id,
            version=event.originator_version,
            modified_at=event.timestamp,
            columns=columns,
            event=event,
        )

    @classmethod
    def _enabling(cls, event: DomainAggregate.Event, **columns: Any) -> RowChange:
        """A webhook endpoint's change that (re-)enables it: ``enabled_since`` becomes
        its event's notification id (0 until the position is set)."""
        change = cls._endpoint_change(event, **columns, enabled_since=0)
        change.stamps = ("enabled_since",)
        return change

    # --- domain claims: no read-model row (organizations show their domain) -----------

    @handles(DomainClaim.Claimed)
    def _domain_claimed(self, event: DomainClaim.Claimed) -> None:
        return None

    # --- single sign-on: the provider in force and the one tried (never a secret) -----

    @staticmethod
    def _pending(event: SSOConnection.Configured | SSOConnection.Reconfigured) -> dict[str, Any]:
        # Configured is the first configuration; each Reconfigured names its number.
        generation = event.generation if isinstance(event, SSOConnection.Reconfigured) else 1
        return {
            "generation": generation,
            "pending_generation": generation,
            "pending_issuer": event.issuer,
            "pending_client_id": event.client_id,
            "pending_tested": False,
            "pending_since": event.timestamp,
        }

    _NOT_PENDING: ClassVar[Mapping[str, Any]] = {
        "pending_generation": None,
        "pending_issuer": None,
        "pending_client_id": None,
        "pending_tested": False,
        "pending_since": None,
    }

    @handles(SSOConnection.Configured)
    def _sso_configured(self, event: SSOConnection.Configured) -> RowChange:
        change = self._change(
            "sso_connections",
            event,
            organization_id=event.organization_id,
            status="none",
            active_generation=None,
            active_issuer=None,
            active_client_id=None,
            active_authorization_endpoint=None,
            activated_at=None,
            **self._pending(event),
            abandon_reason=None,
            deactivation_reason=None,
            deactivated_at=None,
            configured_at=event.timestamp,
        )
        change.creates = True
        return change

    @handles(SSOConnection.Reconfigured)
    def _sso_reconfigured(self, event: SSOConnection.Reconfigured) -> RowChange:
        return self._change("sso_connections", event, **self._pending(event))

    @handles(SSOConnection.Tested)
    def _sso_tested(self, event: SSOConnection.Tested) -> RowChange:
        # Who tested (subject, e-mail domain) stays in the store: the row says only that.
        return self._change("sso_connections", event, pending_tested=True)

    @handles(SSOConnection.Activated)
    def _sso_activated(self, event: SSOConnection.Activated) -> RowChange:
        return self._change(
            "sso_connections",
            event,
            status="active",
            active_generation=event.generation,
            active_issuer=event.issuer,
            active_client_id=event.client_id,
            active_authorization_endpoint=event.authorization_endpoint,
            activated_at=event.timestamp,
            deactivation_reason=None,
            deactivated_at=None,
            **self._NOT_PENDING,
        )

    @handles(SSOConnection.Abandoned)
    def _sso_abandoned(self, event: SSOConnection.Abandoned) -> RowChange:
        return self._change(
            "sso_connections", event, abandon_reason=event.reason, **self._NOT_PENDING
        )

    @handles(SSOConnection.Deactivated)
    def _sso_deactivated(self, event: SSOConnection.Deactivated) -> RowChange:
        return self._change(
            "sso_connections",
            event,
            status="none",
            active_generation=None,
            active_issuer=None,
            active_client_id=None,
            active_authorization_endpoint=None,
            activated_at=None,
            deactivation_reason=event.reason,
            deactivated_at=event.timestamp,
        )

    # --- e-mail domains: the challenge is public (published in DNS) -------------------

    @handles(EmailDomainVerification.Requested)
    def _email_domain_requested(self, event: EmailDomainVerification.Requested) -> RowChange:
        change = self._change(
            "email_domains",
            event,
            organization_id=event.organization_id,
            domain=event.domain,
            challenge=event.challenge,
            status="pending",
            requested_at=event.timestamp,
            verified_at=None,
        )
        change.creates = True
        return change

    @handles(EmailDomainVerification.Verified)
    def _email_domain_verified(self, event: EmailDomainVerification.Verified) -> RowChange:
        return self._change("email_domains", event, status="verified", verified_at=event.timestamp)

    # The one owner of an e-mail domain: the verified row says it (no row of its own).
    @handles(EmailDomainClaim.Event)
    def _email_domain_claimed(self, event: EmailDomainClaim.Event) -> None:
        return None

    # --- organizations ----------------------------------------------------------------

    @handles(Organization.Registered)
    def _organization_registered(self, event: Organization.Registered) -> RowChange:
        change = self._change(
            "organizations",
            event,
            slug=event.slug,
            name=event.name,
            org_type=event.org_type,
            parent_id=event.parent_id,
            tags=sorted(event.tags),
            domain=event.domain,
            status="registered",
            dns_status="none",
            fqdn=None,
            dns_target=None,
            dns_record_id=None,
            deactivation_reason=None,
            failed_step=None,
            registered_at=event.timestamp,
            dns_configured_at=None,
            dns_verified_at=None,
            dns_removed_at=None,
            activated_at=None,
            deactivated_at=None,
        )
        change.creates = True
        return change

    @handles(Organization.DNSConfigured)
    def _organization_dns_configured(self, event: Organization.DNSConfigured) -> RowChange:
        return self._change(
            "organizations",
            event,
            dns_status="configured",
            fqdn=event.fqdn,
            dns_target=event.target,
            dns_record_id=event.record_id,
            dns_configured_at=event.timestamp,
        )

    @handles(Organization.DNSVerified)
    def _organization_dns_verified(self, event: Organization.DNSVerified) -> RowChange:
        return self._change(
            "organizations", event, dns_status="verified", dns_verified_at=event.timestamp
        )

    @handles(Organization.DNSRemoved)
    def _organization_dns_removed(self, event: Organization.DNSRemoved) -> RowChange:
        return self._change(
            "organizations", event, dns_status="removed", dns_removed_at=event.timestamp
        )

    @handles(Organization.Activated)
    def _organization_activated(self, event: Organization.Activated) -> RowChange:
        return self._change("organizations", event, status="active", activated_at=event.timestamp)

    @handles(Organization.Deactivated)
    def _organization_deactivated(self, event: Organization.Deactivated) -> RowChange:
        return self._change(
            "organizations",
            event,
            status="deactivated",
            deactivation_reason=event.reason,
            failed_step=event.failed_step,
            deactivated_at=event.timestamp,
        )

    @handles(Organization.Offboarded)
    def _organization_offboarded(self, event: Organization.Offboarded) -> RowChange:
        # Its own status: an organization ended on request, not a bootstrap undone.
        return self._change(
            "organizations",
            event,
            status="offboarded",
            deactivation_reason=event.reason,
            failed_step=None,
            deactivated_at=event.timestamp,
        )

    @handles(Organization.InvitationIssued)
    def _organization_invitation_issued(self, event: Organization.InvitationIssued) -> RowChange:
        # The organization's index of its invitations: nothing the row shows changes
        # but its version (the invitations table has the invitation itself).
        return self._change("organizations", event)

    @handles(Organization.EmailSent)
    def _organization_email_sent(self, event: Organization.EmailSent) -> RowChange:
        # A mail about the organization went out: the row shows nothing of it (its
        # public form, organization.email_sent, says which kind), only its version.
        return self._change("organizations", event)

    # --- invitations ------------------------------------------------------------------

    @handles(Invitation.Invited)
    def _invitation_invited(self, event: Invitation.Invited) -> RowChange:
        change = self._change(
            "invitations",
            event,
            organization_id=event.organization_id,
            email=event.email,
            role=event.role,
            first_name=event.first_name,
            last_name=event.last_name,
            generation=event.generation,
            token_generation=1,
            token_hash=event.token_hash,
            expires_at=event.expires_at,
            status="pending",
            email_status="not_sent",
            message_id=None,
            email_error=None,
            accepted_by=None,
            revoke_reason=None,
            invited_at=event.timestamp,
            email_sent_at=None,
            email_failed_at=None,
            token_reissued_at=None,
            accepted_at=None,
            revoked_at=None,
            expired_at=None,
        )
        change.creates = True
        return change

    @handles(Invitation.EmailSent)
    def _invitation_email_sent(self, event: Invitation.EmailSent) -> RowChange:
        return self._change(
            "invitations",
            event,
            email_status="sent",
            message_id=event.message_id,
            email_error=None,
            email_sent_at=event.timestamp,
        )

    @handles(Invitation.EmailFailed)
    def _invitation_email_failed(self, event: Invitation.EmailFailed) -> RowChange:
        return self._change(
            "invitations",
            event,
            email_status="failed",
            email_error=event.reason,
            email_failed_at=event.timestamp,
        )

    @handles(Invitation.TokenReissued)
    def _invitation_token_reissued(self, event: Invitation.TokenReissued) -> RowChange:
        return self._change(
            "invitations",
            event,
            token_generation=event.token_generation,
            token_hash=event.token_hash,
            expires_at=event.expires_at,
            email_status="not_sent",
            message_id=None,
            email_error=None,
            token_reissued_at=event.timestamp,
        )

    @handles(Invitation.Accepted)
    def _invitation_accepted(self, event: Invitation.Accepted) -> RowChange:
        return self._change(
            "invitations",
            event,
            status="accepted",
            accepted_by=event.user_id,
            accepted_at=event.timestamp,
            accepted_issuer=event.issuer,
            accepted_subject=event.subject,
        )

    @handles(Invitation.Revoked)
    def _invitation_revoked(self, event: Invitation.Revoked) -> RowChange:
        return self._change(
            "invitations",
            event,
            status="revoked",
            revoke_reason=event.reason,
            revoked_at=event.timestamp,
        )

    @handles(Invitation.Expired)
    def _invitation_expired(self, event: Invitation.Expired) -> RowChange:
        return self._change("invitations", event, status="expired", expired_at=event.timestamp)

    # --- webhook endpoints (the secrets as the events carry them: sealed) -------------

    @staticmethod
    def _endpoint_settings(
        event: WebhookEndpoint.Added | WebhookEndpoint.Changed | WebhookEndpoint.Reinstated,
    ) -> dict[str, Any]:
        types = event.event_types
        return {
            "url": event.url,
            # JSON text on both databases (a sorted array; None: every type).
            "event_types": None if types is None else json.dumps(sorted(types)),
            "organization_id": event.organization_id,
            "description": event.description,
        }

    @classmethod
    def _endpoint_life(
        cls, event: WebhookEndpoint.Added | WebhookEndpoint.Reinstated
    ) -> dict[str, Any]:
        """The columns a new life sets (added, or added again once deleted): its
        settings, a new secret and no previous one, enabled."""
        return {
            **cls._endpoint_settings(event),
            "secret": event.secret,
            "previous_secret": None,
            "previous_secret_expires_at": None,
            **_ENDPOINT_ENABLED,
        }

    @classmethod
    def _endpoint_change(cls, event: DomainAggregate.Event, **columns: Any) -> RowChange:
        return cls._change("webhook_endpoints", event, **columns)

    @handles(WebhookEndpoint.Added)
    def _webhook_endpoint_added(self, event: WebhookEndpoint.Added) -> RowChange:
        change = self._enabling(
            event,
            owner_id=event.owner_id,
            name=event.name,
            **self._endpoint_life(event),
            created_at=event.timestamp,
        )
        change.creates = True
        return change

    @handles(WebhookEndpoint.Changed)
    def _webhook_endpoint_changed(self, event: WebhookEndpoint.Changed) -> RowChange:
        return self._endpoint_change(event, **self._endpoint_settings(event))

    @handles(WebhookEndpoint.SecretRotated)
    def _webhook_secret_rotated(self, event: WebhookEndpoint.SecretRotated) -> RowChange:
        return self._endpoint_change(
            event,
            secret=event.secret,
            previous_secret=event.previous_secret,
            previous_secret_expires_at=event.previous_secret_expires_at,
        )

    @handles(WebhookEndpoint.Disabled)
    def _webhook_endpoint_disabled(self, event: WebhookEndpoint.Disabled) -> RowChange:
        return self._endpoint_change(
            event,
            status="disabled",
            disabled_reason=event.reason,
            disabled_automatically=event.automatic,
        )

    @handles(WebhookEndpoint.Enabled)
    def _webhook_endpoint_enabled(self, event: WebhookEndpoint.Enabled) -> RowChange:
        return self._enabling(event, **_ENDPOINT_ENABLED)

    @handles(WebhookEndpoint.Deleted)
    def _webhook_endpoint_deleted(self, event: WebhookEndpoint.Deleted) -> RowChange:
        return self._endpoint_change(event, status="deleted")

    @handles(WebhookEndpoint.Reinstated)
    def _webhook_endpoint_reinstated(self, event: WebhookEndpoint.Reinstated) -> RowChange:
        # A new life under the same id: a new secret, enabled from this event on; the
        # row keeps when the endpoint was first added.
        return self._enabling(event, **self._endpoint_life(event))


RowHandlers._collect()
