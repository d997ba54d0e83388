"""Temporal activities: each issues one domain command and/or makes one provider call.

All I/O of the onboarding workflows happens here. Every activity is safe to retry
after it acted: domain commands are idempotent (same command again is a no-op), DNS
providers create-if-absent / delete-if-present, and mails carry a deterministic
Message-ID and are not re-sent once recorded as sent.

DNS and tenancy: an organization's domain must lie strictly below the worker's zone
(``DomainOutsideZone`` before registering, so nothing is stored); the domain is claimed
for the organization before anything is published under it (``DomainTaken`` otherwise);
a record already there with other data is a ``DNSRecordConflict``; and removal deletes
only the exact record this organization would have published, and only under a domain
it holds — a compensation can never delete another tenant's record.

The Temporal activity context (workflow id, run id, activity type, attempt) becomes
the :class:`~a4c_domain.Cause` of every event written, via ``caused_by``. Domain calls
are blocking (database I/O), so they run in a thread; ``asyncio.to_thread`` copies the
context, cause included.

Errors: the a4c exception tree's ``retryable`` flag decides. Rule violations,
conflicts, bad input, missing aggregates and permanent provider refusals become a
non-retryable ``ApplicationError`` whose ``type`` is the exception's class name (so the
workflow can tell them apart); lost races and transient provider failures retry.

An activity that ends invitations in the store as a side effect (deactivating their
organization; issuing a newer generation, which supersedes older pending ones) signals
their workflows (``invitation_ended``), so they end now rather than at their expiry.
It signals every candidate on every attempt (a retry after the store wrote finds
nothing new to write, but must still signal); a workflow that has ended is skipped.

Invitation tokens are recomputed inside the activity that needs them (sending a mail,
checking an accept) and never leave it: not returned, not logged, not in an error. A
provider's error text is redacted (``ProviderError``; the mail activity also redacts the
token it just sent) and cut off from the library exception it came from before it
becomes an ``ApplicationError``, a recorded failure reason or a log line.

Why one module of over 500 lines: Temporal registers the methods of one activities
object, built once per worker with its providers; the methods are one-command wrappers
that share the error translation and the cause. Split it by concern (DNS, invitations)
only together with the worker's registration, and never rename a method: its name is
the activity type in every recorded history.
"""

from __future__ import annotations

import asyncio
import hmac
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
from a4c_domain.errors import (
    A4CError,
    DomainOutsideZone,
    InvalidCommand,
    InvalidToken,
    NotFound,
)
from a4c_domain.ids import invitation_id
from a4c_domain.views import InvitationView, OrganizationView
from a4c_worker.contracts import (
    INVITATION_ENDED_SIGNAL,
    AcceptInput,
    CompensationOutcome,
    DeactivateInput,
    DNSRecordInput,
    DNSRecordOutcome,
    EmailFailureInput,
    InvitationOutcome,
    InvitationRef,
    IssueInvitationInput,
    MailOutcome,
    OrganizationOutcome,
    OrganizationRef,
    ProofCheckOutcome,
    RegisterOrganizationInput,
    ReissueInput,
    RevokeInput,
    SendMailInput,
    accept_proof,
    invitation_workflow_id,
    proof_check,
)
from a4c_worker.providers.dns import DNSProvider, DNSVerifier
from a4c_worker.providers.email import Mailer, OutgoingMail
from a4c_worker.providers.errors import PermanentProviderError, ProviderError
from a4c_worker.providers.templates import (
    invitation_message_id,
    reminder_message_id,
    render_invitation,
    render_reminder,
)
from a4c_worker.tracing import current_trace_ids

# Activities act for the platform on the invitation their workflow issued (the workflow
# was started for that invitation id): they see every organization, on purpose.
SYSTEM = ALL_ORGANIZATIONS

T = TypeVar("T")
P = ParamSpec("P")

# The ApplicationError type the verify activity raises while the record is not served
# yet: retryable, so Temporal's back-off does the waiting.
DNS_NOT_VISIBLE = "DNSNotVisible"
# Why an organization registered before 0.3.0 keeps its record, and what fixes it.
UNCLAIMED = (
    "the organization holds no claim on it (it took the domain before 0.3.0); "
    "run `a4c-worker claim-domains`, then delete the record"
)
DOMAIN_OUTSIDE_ZONE = DomainOutsideZone.__name__


class Links(BaseModel):
    """Where things point: the accept page, the Message-ID domain, the DNS target and zone."""

    model_config = ConfigDict(frozen=True)

    accept_url_base: str = Field(min_length=8, description="the activity appends ?token=...")
    mail_domain: str = Field(min_length=1)
    dns_target: str = Field(min_length=1, description="CNAME target of every org record")
    zone: str = Field(min_length=1, description="parent zone of the org records")

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


def _organization_outcome(view: OrganizationView) -> OrganizationOutcome:
    return OrganizationOutcome(
        organization_id=view.id,
        status=view.status,
        dns_status=view.dns_status,
        written=view.position is not None,
    )


def _invitation_outcome(view: InvitationView) -> InvitationOutcome:
    return InvitationOutcome(
        invitation_id=view.id,
        email=view.email,
        status=view.status,
        email_status=view.email_status,
        token_generation=view.token_generation,
        expires_at=view.expires_at,
        written=view.position is not None,
    )


class OnboardingActivities:
    """The activities, bound to their dependencies. Register :meth:`all` with a worker."""

    def __init__(
        self,
        app: OnboardingApplication,
        dns: DNSProvider,
        verifier: DNSVerifier,
        mailer: Mailer,
        links: Links,
    ) -> None:
        self.app = app
        self.dns = dns
        self.verifier = verifier
        self.mailer = mailer
        self.links = links

    def all(self) -> list[Callable[..., Any]]:
        """Every activity method, bound, for ``Worker(activities=...)``."""
        return [
            self.register_organization,
            self.configure_dns,
            self.verify_dns,
            self.record_dns_verified,
            self.activate_organization,
            self.issue_invitation,
            self.send_invitation_email,
            self.record_email_failure,
            self.reissue_token,
            self.accept_invitation,
            self.accept_proof_check,
            self.look_up_invitation,
            self.expire_invitation,
            self.revoke_invitation,
            self.remove_dns,
            self.deactivate_organization,
        ]

    async def _domain(self, command: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a blocking domain call in a thread, under this activity's cause.

        Typed by ``command``'s own parameters, so mypy checks each activity's call."""
        with caused_by(current_activity_cause()), temporal_errors():
            return await asyncio.to_thread(command, *args, **kwargs)

    # --- organization -------------------------------------------------------------

    @activity.defn
    async def register_organization(self, input: RegisterOrganizationInput) -> OrganizationOutcome:
        if input.domain is not None:
            with temporal_errors():  # refused before any event is stored
                self.links.require_below_zone(input.domain)
        view = await self._domain(
            self.app.register_organization,
            name=input.name,
            slug=input.slug,
            org_type=input.org_type,
            parent_id=input.parent_id,
            tags=input.tags,
            domain=input.domain,
        )
        return _organization_outcome(view)

    @activity.defn
    async def configure_dns(self, input: DNSRecordInput) -> DNSRecordOutcome:
        """Claim ``fqdn``, publish ``fqdn`` → the DNS target, record it on the organization.

        Each part is idempotent, so a retry after any of them converges. The claim comes
        first: nothing is published under a domain another organization holds.
        """
        with temporal_errors():
            self.links.require_below_zone(input.fqdn)
        await self._domain(
            self.app.claim_domain, organization_id=input.organization_id, fqdn=input.fqdn
        )
        with temporal_errors():
            record_id = await self.dns.ensure_record(input.fqdn, self.links.dns_target)
        await self._domain(
            self.app.configure_dns,
            organization_id=input.organization_id,
            fqdn=input.fqdn,
            target=self.links.dns_target,
            record_id=record_id,
        )
        return DNSRecordOutcome(
            organization_id=input.organization_id,
            fqdn=input.fqdn,
            target=self.links.dns_target,
            record_id=record_id,
        )

    @activity.defn
    async def verify_dns(self, input: DNSRecordInput) -> bool:
        """Ask the authoritative servers; "not yet" raises a retryable error for back-off."""
        with temporal_errors():
            visible = await self.verifier.verify(input.fqdn, self.links.dns_target)
        if not visible:
            raise ApplicationError(
                f"{input.fqdn} does not resolve to {self.links.dns_target} yet",
                type=DNS_NOT_VISIBLE,
            )
        return True

    @activity.defn
    async def record_dns_verified(self, input: OrganizationRef) -> OrganizationOutcome:
        view = await self._domain(self.app.verify_dns, organization_id=input.organization_id)
        return _organization_outcome(view)

    @activity.defn
    async def activate_organization(self, input: OrganizationRef) -> OrganizationOutcome:
        view = await self._domain(self.app.activate, organization_id=input.organization_id)
        return _organization_outcome(view)

    # --- invitations --------------------------------------------------------------

    @activity.defn
    async def issue_invitation(self, input: IssueInvitationInput) -> InvitationOutcome:
        view = await self._domain(
            self.app.invite,
            organization_id=input.organization_id,
            email=input.invitee.email,
            role=input.invitee.role,
            first_name=input.invitee.first_name,
            last_name=input.invitee.last_name,
            generation=input.generation,
            expires_at=input.expires_at,
        )
        # Older generations the store may just have superseded (revoked).
        await _signal_ended(
            invitation_id(input.organization_id, view.email, generation)
            for generation in range(1, input.generation)
        )
        return _invitation_outcome(view)

    @activity.defn
    async def send_invitation_email(self, input: SendMailInput) -> MailOutcome:
        """Render and send the invitation (or reminder) mail, then record the result.

        The token is recomputed here for the link and dropped. A permanent refusal is
        recorded on the invitation and returned (``sent=False``), not raised: one bad
        address must not fail a bootstrap. Transient failures raise and retry.
        """
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        generation = inv.token_generation
        domain = self.links.mail_domain
        is_reminder = input.kind == "reminder"
        message_id = (
            reminder_message_id(inv.id, generation, domain)
            if is_reminder
            else invitation_message_id(inv.id, generation, domain)
        )
        if inv.status != "pending":
            return MailOutcome(
                invitation_id=inv.id,
                email=inv.email,
                sent=False,
                error=f"invitation is {inv.status}",
            )
        if not is_reminder and inv.email_status == "sent" and inv.message_id == message_id:
            # A retry after the send was recorded: the mail is out, do not send it twice.
            return MailOutcome(
                invitation_id=inv.id, email=inv.email, sent=True, message_id=message_id
            )
        token = self.app.tokens.token(inv.id, generation)
        mail = self._render(inv, input.organization_name, message_id, is_reminder, token)
        with temporal_errors():
            try:
                sent_id = await self.mailer.send(mail)
            except ProviderError as exc:
                # The provider's text may quote the mail: redact this very token too.
                exc.sanitised(token)
                if not isinstance(exc, PermanentProviderError):
                    raise
                reason = f"{type(exc).__name__}: {exc}"
                if not is_reminder:
                    await self._domain(
                        self.app.record_email_failed,
                        organization_id=SYSTEM,
                        invitation_id=inv.id,
                        token_generation=generation,
                        reason=reason,
                    )
                activity.logger.warning(
                    "mail to an address at %s refused for good", mail.recipient_domain
                )
                return MailOutcome(invitation_id=inv.id, email=inv.email, sent=False, error=reason)
        if not is_reminder:
            await self._domain(
                self.app.record_email_sent,
                organization_id=SYSTEM,
                invitation_id=inv.id,
                token_generation=generation,
                message_id=sent_id,
            )
        return MailOutcome(invitation_id=inv.id, email=inv.email, sent=True, message_id=sent_id)

    def _render(
        self,
        inv: InvitationView,
        organization_name: str,
        message_id: str,
        is_reminder: bool,
        token: str,
    ) -> OutgoingMail:
        render = render_reminder if is_reminder else render_invitation
        rendered = render(
            organization_name=organization_name,
            first_name=inv.first_name,
            last_name=inv.last_name,
            role=inv.role,
            accept_url=self.links.accept_url(token),
            expires_at=inv.expires_at,
        )
        return OutgoingMail(
            to=inv.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
        )

    @activity.defn
    async def record_email_failure(self, input: EmailFailureInput) -> InvitationOutcome:
        """Record a send that never succeeded (retries exhausted) on the invitation."""
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        view = await self._domain(
            self.app.record_email_failed,
            organization_id=SYSTEM,
            invitation_id=inv.id,
            token_generation=inv.token_generation,
            reason=input.reason,
        )
        return _invitation_outcome(view)

    @activity.defn
    async def reissue_token(self, input: ReissueInput) -> InvitationOutcome:
        view = await self._domain(
            self.app.reissue_token,
            organization_id=SYSTEM,
            invitation_id=input.invitation_id,
            token_generation=input.token_generation,
            expires_at=input.expires_at,
        )
        return _invitation_outcome(view)

    @activity.defn
    async def accept_invitation(self, input: AcceptInput) -> InvitationOutcome:
        """Check the proof against the current token, then accept with the real token."""
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        token = self.app.tokens.token(inv.id, inv.token_generation)
        if not hmac.compare_digest(accept_proof(token), input.token_proof):
            raise to_application_error(
                InvalidToken(f"the token does not match invitation {inv.id}")
            )
        view = await self._domain(
            self.app.accept_invitation,
            organization_id=SYSTEM,
            invitation_id=inv.id,
            token=token,
            user_id=input.user_id,
        )
        return _invitation_outcome(view)

    @activity.defn
    async def accept_proof_check(self, input: InvitationRef) -> ProofCheckOutcome:
        """What the workflow's accept validator compares proofs against (never the proof)."""
        inv = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        token = self.app.tokens.token(inv.id, inv.token_generation)
        return ProofCheckOutcome(
            token_generation=inv.token_generation, proof_check=proof_check(accept_proof(token))
        )

    @activity.defn
    async def look_up_invitation(self, input: InvitationRef) -> InvitationOutcome:
        """The stored invitation (its status): what a signalled workflow ends with."""
        view = await self._domain(self.app.get_invitation, input.invitation_id, SYSTEM)
        return _invitation_outcome(view)

    @activity.defn
    async def expire_invitation(self, input: InvitationRef) -> InvitationOutcome:
        view = await self._domain(
            self.app.expire_invitation, organization_id=SYSTEM, invitation_id=input.invitation_id
        )
        return _invitation_outcome(view)

    # --- compensations: idempotent, and "nothing to do" is a success --------------

    @activity.defn
    async def revoke_invitation(self, input: RevokeInput) -> CompensationOutcome:
        view = await self._absent_is_fine(
            self.app.revoke_invitation,
            organization_id=SYSTEM,
            invitation_id=input.invitation_id,
            reason=input.reason,
        )
        return _compensated(view, "invitation never issued")

    @activity.defn
    async def remove_dns(self, input: DNSRecordInput) -> CompensationOutcome:
        """Delete this organization's record (even if never recorded), then record that.

        Only under a domain the organization holds, and only the exact record it
        publishes (its recorded record id when there is one): a record of a domain held
        by another organization, or with other data, is never touched.

        An organization that took its domain before 0.3.0 may hold no claim on it yet:
        nothing is deleted then either (another old organization may share the name),
        the removal is not recorded (its state keeps saying what is published), and the
        outcome and a warning name the backfill that claims it.
        """
        right = await self._domain(self.app.dns_removal, input.organization_id, input.fqdn)
        if right == "unclaimed":
            activity.logger.warning("%s not removed: %s", input.fqdn, UNCLAIMED)
            return CompensationOutcome(
                outcome="nothing_to_do", detail=f"{input.fqdn} not removed: {UNCLAIMED}"
            )
        if right == "not_own":
            activity.logger.warning("not removing %s: not this organization's domain", input.fqdn)
        removed = right == "own" and await self._remove_own_record(input)
        view = await self._absent_is_fine(
            self.app.remove_dns, organization_id=input.organization_id
        )
        # The domain records a removal even when nothing was configured (so a late
        # configure lands as a no-op); only a removal of a recorded record is "done".
        recorded = view is not None and view.position is not None and view.fqdn is not None
        if removed or recorded:
            return CompensationOutcome(outcome="done", detail=f"{input.fqdn} removed")
        return CompensationOutcome(outcome="nothing_to_do", detail=f"{input.fqdn} not published")

    async def _remove_own_record(self, input: DNSRecordInput) -> bool:
        org = await self._domain(self.app.get_organization, input.organization_id)
        recorded = org.fqdn == hostname(input.fqdn)
        with temporal_errors():
            return await self.dns.remove_record(
                input.fqdn,
                (org.dns_target if recorded else None) or self.links.dns_target,
                record_id=org.dns_record_id if recorded else None,
            )

    @activity.defn
    async def deactivate_organization(self, input: DeactivateInput) -> CompensationOutcome:
        view = await self._absent_is_fine(
            self.app.deactivate,
            organization_id=input.organization_id,
            reason=input.reason,
            failed_step=input.failed_step,
        )
        if view is not None:  # its pending invitations were revoked with it
            await _signal_ended(view.invitation_ids)
        return _compensated(view, "organization never registered")

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


async def _signal_ended(invitation_ids: Iterable[UUID]) -> None:
    """Tell these invitations' workflows to look at the store; one that ended (or never
    started: a bootstrap's, before its end) has nothing to be told."""
    for found in invitation_ids:
        handle = activity.client().get_workflow_handle(invitation_workflow_id(found))
        try:
            await handle.signal(INVITATION_ENDED_SIGNAL)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise


def _compensated(
    view: OrganizationView | InvitationView | None, absent: str
) -> CompensationOutcome:
    if view is None:
        return CompensationOutcome(outcome="nothing_to_do", detail=absent)
    if view.position is None:
        return CompensationOutcome(outcome="nothing_to_do", detail="already compensated")
    return CompensationOutcome(outcome="done")


__all__ = [
    "DNS_NOT_VISIBLE",
    "DOMAIN_OUTSIDE_ZONE",
    "Links",
    "OnboardingActivities",
    "temporal_errors",
    "to_application_error",
]
