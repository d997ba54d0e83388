"""The mail activities: send the invitation (or reminder) mail, record a failed send.

A mail carries a deterministic Message-ID and is not sent again once recorded as sent.
A permanent refusal is recorded and returned, not raised; transient failures retry.
The token is recomputed for the link and redacted from any provider text.
"""

from __future__ import annotations

from temporalio import activity

from a4c_domain.views import InvitationView
from a4c_worker.activities.base import SYSTEM, ActivityBase, invitation_outcome, temporal_errors
from a4c_worker.contracts import EmailFailureInput, InvitationOutcome, MailOutcome, SendMailInput
from a4c_worker.providers.email import OutgoingMail
from a4c_worker.providers.errors import PermanentProviderError, ProviderError
from a4c_worker.providers.templates import (
    invitation_message_id,
    reminder_message_id,
    render_invitation,
    render_reminder,
)


class MailActivities(ActivityBase):
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
        return invitation_outcome(view)
