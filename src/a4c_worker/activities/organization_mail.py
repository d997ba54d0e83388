"""The mails about an organization: welcome, provisioning failed, offboarded, single
sign-on activated.

One activity, :meth:`OrganizationMailActivities.send_organization_mail`, one recipient
per call (a retry re-sends to nobody else). Each mail has a deterministic Message-ID
(kind, organization, a hash of the address: :func:`organization_message_id`) and is
recorded on the organization as ``EmailSent`` once out, so a retry after the record
finds it and does not send again; a retry between the send and the record sends the
same message again, with the same Message-ID, which receivers deduplicate on. A
permanent refusal is returned, not raised (a mail never fails what it reports on);
transient failures raise and retry. These mails carry no link and never a token.

``to`` None on a provisioning-failed mail: the worker's ``PROVISIONING_FAILED_MAIL_TO``.
The workflow does not carry the operators' address: it stays in the worker's settings,
out of every history, and changing it needs no new workflow input.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import Field
from temporalio import activity

from a4c_domain.commands import Email, OrganizationMailKind, RecordedPersonName, Role
from a4c_domain.redaction import redact
from a4c_domain.views import OrganizationView
from a4c_worker.activities.base import ActivityBase, temporal_errors
from a4c_worker.contracts import Model
from a4c_worker.providers.email import OutgoingMail
from a4c_worker.providers.errors import PermanentProviderError, ProviderError
from a4c_worker.providers.templates import (
    RenderedMail,
    Undo,
    organization_message_id,
    render_offboarded,
    render_provisioning_failed,
    render_sso_activated,
    render_welcome,
)

MailResult = Literal["sent", "already_sent", "refused", "no_address"]
MAIL_RESULTS: tuple[MailResult, ...] = ("sent", "already_sent", "refused", "no_address")
MAIL_KINDS: tuple[OrganizationMailKind, ...] = (
    "welcome",
    "provisioning_failed",
    "offboarded",
    "sso_activated",
)
# What a failure reason may be in a mail, once redacted (the workflow shortens it too).
REASON_LENGTH = 500


class UndoDone(Model):
    """One compensation of a failed onboarding, as its mail lists it."""

    step: str = Field(max_length=400)
    outcome: Literal["done", "nothing_to_do", "failed"]


class OrganizationMailInput(Model):
    """One mail about ``organization_id`` to one address, with the facts its kind names:

    - ``welcome``: the invitee's ``first_name``, ``last_name`` and ``role``;
    - ``provisioning_failed``: ``failed_step``, ``reason`` and ``undone``;
    - ``offboarded``: the admin's names and ``reason``;
    - ``sso_activated``: ``occasion``, the configuration's number (each activation is a
      message of its own).

    ``occurred_at``: when it completed, failed or was offboarded (workflow time).
    """

    organization_id: UUID
    kind: OrganizationMailKind
    to: Email | None = None
    first_name: RecordedPersonName | None = None
    last_name: RecordedPersonName | None = None
    role: Role | None = None
    failed_step: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=2_000)
    undone: list[UndoDone] = Field(default_factory=list, max_length=300)
    occurred_at: datetime | None = None
    occasion: int | None = Field(default=None, ge=1)  # which time this kind of mail is sent


class OrganizationMailOutcome(Model):
    kind: OrganizationMailKind
    result: MailResult
    message_id: str | None = None
    error: str | None = None

    @property
    def sent(self) -> bool:
        """The mail is out (now, or by an earlier attempt)."""
        return self.result in ("sent", "already_sent")


class OrganizationMailActivities(ActivityBase):
    @activity.defn
    async def send_organization_mail(self, input: OrganizationMailInput) -> OrganizationMailOutcome:
        """Send one mail about an organization to one address, once; record it as sent."""
        to = input.to
        if to is None and input.kind == "provisioning_failed":
            to = self.links.provisioning_failed_mail_to
        if to is None:
            return OrganizationMailOutcome(kind=input.kind, result="no_address")
        org = await self._domain(self.app.get_organization, input.organization_id)
        message_id = organization_message_id(
            input.kind, org.id, to, self.links.mail_domain, occasion=input.occasion
        )
        if await self._domain(self.app.organization_email_sent, org.id, message_id):
            # A retry after the send was recorded: the mail is out, do not send it twice.
            return OrganizationMailOutcome(
                kind=input.kind, result="already_sent", message_id=message_id
            )
        rendered = self._render_organization_mail(input, org)
        mail = OutgoingMail(
            to=to,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
        )
        with temporal_errors():
            try:
                await self.mailer.send(mail)
            except ProviderError as exc:
                if not isinstance(exc, PermanentProviderError):
                    raise
                activity.logger.warning(
                    "%s mail to an address at %s refused for good",
                    input.kind,
                    mail.recipient_domain,
                )
                return OrganizationMailOutcome(
                    kind=input.kind, result="refused", error=f"{type(exc).__name__}: {exc}"
                )
        await self._domain(
            self.app.record_organization_email_sent,
            organization_id=org.id,
            kind=input.kind,
            message_id=message_id,
        )
        return OrganizationMailOutcome(kind=input.kind, result="sent", message_id=message_id)

    def _render_organization_mail(
        self, input: OrganizationMailInput, org: OrganizationView
    ) -> RenderedMail:
        when = input.occurred_at or datetime.now(UTC)
        support = self.links.support_address
        # Defence in depth: a reason (a provider's text, an operator's words) never
        # carries a token or an accept link, and is one line.
        reason = redact(input.reason or "not given", limit=REASON_LENGTH)
        if input.kind == "welcome":
            return render_welcome(
                organization_name=org.name,
                first_name=input.first_name or "",
                last_name=input.last_name or "",
                role=input.role or "admin",
                completed_at=when,
                support_email=support,
            )
        if input.kind == "provisioning_failed":
            return render_provisioning_failed(
                organization_name=org.name,
                slug=org.slug,
                failed_step=input.failed_step or "start",
                reason=reason,
                undone=[Undo(step=u.step, outcome=u.outcome) for u in input.undone],
                support_email=support,
            )
        if input.kind == "sso_activated":
            return render_sso_activated(
                organization_name=org.name, activated_at=when, support_email=support
            )
        return render_offboarded(
            organization_name=org.name,
            first_name=input.first_name or "",
            last_name=input.last_name or "",
            reason=reason,
            offboarded_at=when,
            support_email=support,
        )
