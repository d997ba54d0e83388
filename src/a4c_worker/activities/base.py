"""What every activity shares: its dependencies, its cause, and the error translation.

An a4c error leaves an activity as an ``ApplicationError`` typed by the error's class
name, retryable only if the error says so; a provider's text is redacted first. Every
event an activity writes carries the activity as its cause. See docs/design/activities.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from a4c_domain import ALL_ORGANIZATIONS, Cause, OnboardingApplication, caused_by
from a4c_domain.commands import hostname, inside_zone
from a4c_domain.errors import A4CError, DomainOutsideZone, InvalidCommand, NotFound
from a4c_domain.views import InvitationView, OrganizationView
from a4c_outbound.transport import OutboundPolicy
from a4c_sso.discovery import provider_policy
from a4c_worker.contracts import (
    INVITATION_ENDED_SIGNAL,
    CompensationOutcome,
    InvitationOutcome,
    OrganizationOutcome,
    invitation_workflow_id,
)
from a4c_worker.providers.dns import DNSProvider, DNSVerifier, TXTLookup
from a4c_worker.providers.email import Mailer
from a4c_worker.providers.errors import ProviderError
from a4c_worker.sealing import SecretKeys
from a4c_worker.tracing import current_trace_ids

# Production's rules for identity providers: the default, so only a worker configured for
# development reaches an http or private one.
PRODUCTION_SSO_POLICY = provider_policy(production=True, allow_private=False)

# Activities act for the platform on the invitation their workflow issued (the workflow
# was started for that invitation id): they see every organization, on purpose.
SYSTEM = ALL_ORGANIZATIONS

T = TypeVar("T")
P = ParamSpec("P")


class Links(BaseModel):
    """Where things point: the accept page, the Message-ID domain, the DNS target and zone,
    and the addresses the mails about an organization name or go to."""

    model_config = ConfigDict(frozen=True)

    accept_url_base: str = Field(min_length=8, description="the activity appends ?token=...")
    mail_domain: str = Field(min_length=1)
    dns_target: str = Field(min_length=1, description="CNAME target of every org record")
    zone: str = Field(min_length=1, description="parent zone of the org records")
    support_email: str | None = Field(
        default=None, description="SUPPORT_EMAIL, named in the mails; None: a4c@mail_domain"
    )
    provisioning_failed_mail_to: str | None = Field(
        default=None, description="PROVISIONING_FAILED_MAIL_TO; None: no such mail"
    )

    @property
    def support_address(self) -> str:
        return self.support_email or f"a4c@{self.mail_domain}"

    @field_validator("dns_target", "zone", "mail_domain")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return hostname(value)

    def accept_url(self, token: str) -> str:
        separator = "&" if "?" in self.accept_url_base else "?"
        return f"{self.accept_url_base}{separator}{urlencode({'token': token})}"

    def require_below_zone(self, fqdn: str) -> None:
        """``DomainOutsideZone`` unless ``fqdn`` is strictly below the zone (not its apex)."""
        if not inside_zone(fqdn, self.zone):
            raise DomainOutsideZone(hostname(fqdn), self.zone)


def to_application_error(exc: A4CError) -> ApplicationError:
    """The Temporal failure for an a4c error: retryable only if the error says so."""
    details: list[Any] = []
    if isinstance(exc, InvalidCommand):
        details = [exc.errors]
    return ApplicationError(
        str(exc), *details, type=type(exc).__name__, non_retryable=not exc.retryable
    )


@contextmanager
def temporal_errors() -> Iterator[None]:
    """Re-raise a4c errors as ``ApplicationError``; anything else retries as it is."""
    try:
        yield
    except A4CError as exc:
        if isinstance(exc, ProviderError):
            exc.sanitised()  # history and logs get the redacted text, never the original
        raise to_application_error(exc) from exc


def current_activity_cause() -> Cause:
    info = activity.info()
    trace_id, span_id = current_trace_ids()
    return Cause(
        workflow_id=info.workflow_id,
        run_id=info.workflow_run_id,
        activity_type=info.activity_type,
        attempt=info.attempt,
        trace_id=trace_id,
        span_id=span_id,
    )


def organization_outcome(view: OrganizationView) -> OrganizationOutcome:
    return OrganizationOutcome(
        organization_id=view.id,
        status=view.status,
        dns_status=view.dns_status,
        written=view.position is not None,
    )


def invitation_outcome(view: InvitationView) -> InvitationOutcome:
    return InvitationOutcome(
        invitation_id=view.id,
        email=view.email,
        status=view.status,
        email_status=view.email_status,
        token_generation=view.token_generation,
        expires_at=view.expires_at,
        written=view.position is not None,
    )


# A compensation's outcome when the store had it done already (the command was a no-op).
ALREADY_COMPENSATED = "already compensated"


def compensated(view: OrganizationView | InvitationView | None, absent: str) -> CompensationOutcome:
    if view is None:
        return CompensationOutcome(outcome="nothing_to_do", detail=absent)
    if view.position is None:
        return CompensationOutcome(outcome="nothing_to_do", detail=ALREADY_COMPENSATED)
    return CompensationOutcome(outcome="done")


async def signal_ended(invitation_ids: Iterable[UUID]) -> None:
    """Tell these invitations' workflows to look at the store; one that ended (or never
    started: a bootstrap's, before its end) has nothing to be told."""
    for found in invitation_ids:
        handle = activity.client().get_workflow_handle(invitation_workflow_id(found))
        try:
            await handle.signal(INVITATION_ENDED_SIGNAL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


class ActivityBase:
    """The dependencies every activity group is bound to, and how they call the domain."""

    def __init__(
        self,
        app: OnboardingApplication,
        dns: DNSProvider,
        verifier: DNSVerifier,
        mailer: Mailer,
        links: Links,
        *,
        txt: TXTLookup,
        sso_policy: OutboundPolicy = PRODUCTION_SSO_POLICY,
        sso_keys: SecretKeys | None = None,
    ) -> None:
        self.app = app
        self.dns = dns
        self.verifier = verifier
        self.mailer = mailer
        self.links = links
        self.txt = txt  # any domain's TXT records: e-mail domain challenges
        # How organizations' identity providers are reached (https, public addresses
        # only, unless the worker's settings allow otherwise).
        self.sso_policy = sso_policy
        # Opens organizations' sealed client secrets (SSO_SECRET_KEYS); None: unset.
        self.sso_keys = sso_keys

    async def _domain(self, command: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking domain call in a thread, under this activity's cause.

        Typed by ``command``'s own parameters, so mypy checks each activity's call."""
        with caused_by(current_activity_cause()), temporal_errors():
            return await asyncio.to_thread(command, *args, **kwargs)

    async def _absent_is_fine(
        self, command: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T | None:
        """Compensating something that was never created is nothing to do, not an error."""
        try:
            with caused_by(current_activity_cause()):
                return await asyncio.to_thread(command, *args, **kwargs)
        except NotFound:
            return None
        except A4CError as exc:
            raise to_application_error(exc) from exc
