"""Every mail the SMTP sink accepted matches an ``EmailSent`` event, and back.

A mail's Message-ID is deterministic (:mod:`a4c_worker.providers.templates`):
``<invitation.{id}.{generation}@domain>`` for an invitation's mail, and the
``EmailSent`` event records that id. So:

- an invitation mail whose (invitation, token generation, Message-ID) no ``EmailSent``
  records is a violation (sent but not recorded, or recorded as failed), and so is one
  addressed to anyone but the invitation's invitee;
- a reminder (``<reminder.{id}.{generation}@domain>``) is not recorded as an event by
  design: it must name an invitation and a token generation it has had;
- any other mail is a violation (the platform mailed something no invitation sent);
- an ``EmailSent`` no mail matches is a violation (recorded sent, never delivered).

**Duplicates are not violations.** Mail is at-least-once: the activity sends, then
records; a worker killed between the two (or an SMTP reply lost) sends the same mail
again on the retry, with the same Message-ID (docs/design/activities.md: "not sent again
once recorded as sent" — before that, it may be). The deterministic Message-ID is what
lets a receiver drop the copy. :func:`duplicate_mails` counts them for the soak's report.
"""

from __future__ import annotations

import re
from collections import Counter
from email.message import EmailMessage
from email.utils import getaddresses
from uuid import UUID

from soaklib.check import Violation
from soaklib.check_store import StoreReading

MESSAGE_ID = re.compile(
    r"^<(?P<kind>invitation|reminder)\.(?P<id>[0-9a-f-]{36})\.(?P<generation>\d+)@[^>]+>$"
)


def message_id(mail: EmailMessage) -> str:
    return str(mail.get("Message-ID", "")).strip()


def duplicate_mails(mails: list[EmailMessage]) -> int:
    """Copies beyond the first of each Message-ID (at-least-once delivery's extra sends)."""
    return sum(count - 1 for count in Counter(message_id(m) for m in mails).values())


def check_mail(mails: list[EmailMessage], store: StoreReading) -> list[Violation]:
    found = [
        Violation("mail", f"EmailSent of invitation {u} cannot be decoded")
        for u in store.undecodable
    ]
    sent = {(s.invitation_id, s.token_generation, s.message_id) for s in store.emails_sent}
    delivered: set[str] = set()
    for position, mail in enumerate(mails, 1):
        mid = message_id(mail)
        delivered.add(mid)
        problem = _unmatched(mail, mid, sent, store)
        if problem is not None:
            found.append(
                Violation("mail", f"mail #{position} ({mid or 'no Message-ID'}): {problem}")
            )
    for fact in sorted(store.emails_sent, key=lambda s: (str(s.invitation_id), s.token_generation)):
        if fact.message_id not in delivered:
            found.append(
                Violation(
                    "mail",
                    f"invitation {fact.invitation_id}: EmailSent of token "
                    f"{fact.token_generation} ({fact.message_id}) but no such mail arrived",
                )
            )
    return found


def _unmatched(
    mail: EmailMessage, mid: str, sent: set[tuple[UUID, int, str]], store: StoreReading
) -> str | None:
    """Why ``mail`` matches nothing the store recorded; None when it does."""
    parsed = MESSAGE_ID.match(mid)
    if parsed is None:
        return "not an invitation or reminder mail"
    invitation_id, generation = UUID(parsed["id"]), int(parsed["generation"])
    invitation = store.invitations.get(invitation_id)
    if invitation is None:
        return "names no invitation the store holds"
    recipients = {a.lower() for _, a in getaddresses(mail.get_all("To", []))}
    if recipients != {str(invitation["email"]).lower()}:
        return "not addressed (only) to the invitation's invitee"
    if parsed["kind"] == "reminder":
        if not 1 <= generation <= int(invitation["token_generation"]):
            return f"a reminder for token {generation}, which the invitation never had"
        return None
    if (invitation_id, generation, mid) not in sent:
        return f"no EmailSent records it (token {generation})"
    return None
