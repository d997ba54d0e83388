"""Every mail the SMTP sink accepted matches an ``EmailSent`` event, and back.

A mail's Message-ID is deterministic (:mod:`a4c_worker.providers.templates`):
``<invitation.{id}.{generation}@domain>`` for an invitation's mail, and the
``EmailSent`` event records that id. So:

- an invitation mail whose (invitation, token generation, Message-ID) no ``EmailSent``
  records is a violation (sent but not recorded, or recorded as failed), and so is one
  addressed to anyone but the invitation's invitee;
- a reminder (``<reminder.{id}.{generation}@domain>``) is not recorded as an event by
  design: it must name an invitation and a token generation it has had;
- a mail about an organization (``<{kind}.{organization id}.{address hash}@domain>``:
  welcome, provisioning_failed, offboarded; ``sso_activated`` with ``.{configuration}``
  after the hash) must be recorded by the organization's
  ``EmailSent`` and addressed to the one address its hash names; a welcome mail only
  for an active organization (or one offboarded since), a provisioning-failed one only
  for a deactivated one, an offboarded one only for an offboarded one (that each admin
  got exactly one is the ``offboarding`` check's: :mod:`soaklib.check_offboarding`; of
  an SSO activation's, the ``sso`` check's: :mod:`soaklib.check_sso`);
- every admin or owner invitee of an onboarding the load asked for whose organization
  is active (or offboarded since) gets its welcome mail (the provisioning-failed mail
  goes to an operators' address the soak may not configure: it is checked when it
  arrives, not expected);
- any other mail is a violation (the platform mailed something nothing sent);
- an ``EmailSent`` no mail matches is a violation (recorded sent, never delivered).

**Duplicates are not violations.** Mail is at-least-once: the activity sends, then
records; a worker killed between the two (or an SMTP reply lost) sends the same mail
again on the retry, with the same Message-ID (docs/design/activities.md: "not sent again
once recorded as sent" — before that, it may be). The deterministic Message-ID is what
lets a receiver drop the copy. :func:`duplicate_mails` counts them for the soak's report.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import getaddresses
from uuid import UUID

from a4c_domain import organization_id
from soaklib.check import Violation
from soaklib.check_store import StoreReading
from soaklib.facts import Onboarding

MESSAGE_ID = re.compile(
    r"^<(?P<kind>invitation|reminder)\.(?P<id>[0-9a-f-]{36})\.(?P<generation>\d+)@[^>]+>$"
)


ORGANIZATION_MESSAGE_ID = re.compile(
    r"^<(?P<kind>welcome|provisioning_failed|offboarded|sso_activated)\.(?P<id>[0-9a-f-]{36})"
    r"\.(?P<hash>[0-9a-f]{16})(?:\.(?P<occasion>\d+))?@[^>]+>$"
)
# The organization's read-model statuses each kind of mail may be found with: a welcome
# is sent to an active organization, which may have been offboarded since.
STATUSES_OF_KIND = {
    "welcome": ("active", "offboarded"),
    "provisioning_failed": ("deactivated",),
    "offboarded": ("offboarded",),
    # Sent once single sign-on is active; the organization may be offboarded since.
    "sso_activated": ("active", "offboarded"),
}
WELCOMED_ROLES = ("owner", "admin")


def address_hash(address: str) -> str:
    """What an organization mail's Message-ID names its recipient by."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]


def organization_mail_hash(message_id: str) -> str | None:
    """The recipient's address hash an organization mail's Message-ID names."""
    parsed = ORGANIZATION_MESSAGE_ID.match(message_id)
    return parsed["hash"] if parsed is not None else None


def organization_mail_occasion(message_id: str) -> int | None:
    """The occasion (an SSO activation's configuration number) a Message-ID names."""
    parsed = ORGANIZATION_MESSAGE_ID.match(message_id)
    occasion = parsed["occasion"] if parsed is not None else None
    return int(occasion) if occasion is not None else None


def message_id(mail: EmailMessage) -> str:
    return str(mail.get("Message-ID", "")).strip()


def duplicate_mails(mails: list[EmailMessage]) -> int:
    """Copies beyond the first of each Message-ID (at-least-once delivery's extra sends)."""
    return sum(count - 1 for count in Counter(message_id(m) for m in mails).values())


def check_mail(
    mails: list[EmailMessage], store: StoreReading, onboardings: Sequence[Onboarding] = ()
) -> list[Violation]:
    found = [
        Violation("mail", f"EmailSent of invitation {u} cannot be decoded")
        for u in store.undecodable
    ]
    sent = {(s.invitation_id, s.token_generation, s.message_id) for s in store.emails_sent}
    delivered: set[str] = set()
    for position, mail in enumerate(mails, 1):
        mid = message_id(mail)
        delivered.add(mid)
        organization_mail = ORGANIZATION_MESSAGE_ID.match(mid)
        if organization_mail is not None:
            problem = _unmatched_organization_mail(mail, organization_mail, store)
        else:
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
    for org_mail in store.organization_mails:
        if org_mail.message_id not in delivered:
            found.append(
                Violation(
                    "mail",
                    f"organization {org_mail.organization_id}: EmailSent of its "
                    f"{org_mail.kind} mail ({org_mail.message_id}) but no such mail arrived",
                )
            )
    found.extend(_missing_welcomes(store, onboardings))
    return found


def _unmatched_organization_mail(
    mail: EmailMessage, parsed: re.Match[str], store: StoreReading
) -> str | None:
    """Why a mail about an organization matches nothing recorded; None when it does."""
    org_id, kind = UUID(parsed["id"]), parsed["kind"]
    organization = store.organizations.get(org_id)
    if organization is None:
        return "names no organization the store holds"
    recorded = {(m.organization_id, m.message_id) for m in store.organization_mails}
    if (org_id, parsed.group(0)) not in recorded:
        return f"no EmailSent of the organization records this {kind} mail"
    recipients = [a.lower() for _, a in getaddresses(mail.get_all("To", []))]
    if len(recipients) != 1 or address_hash(recipients[0]) != parsed["hash"]:
        return "not addressed (only) to the recipient its Message-ID names"
    if organization["status"] not in STATUSES_OF_KIND[kind]:
        return f"a {kind} mail for an organization that is {organization['status']}"
    return None


def _missing_welcomes(store: StoreReading, onboardings: Sequence[Onboarding]) -> list[Violation]:
    """Each admin or owner invitee of an onboarding whose organization is active was
    welcomed (its welcome mail recorded; the delivery is checked above)."""
    parsed = ((m, ORGANIZATION_MESSAGE_ID.match(m.message_id)) for m in store.organization_mails)
    welcomed = {
        (m.organization_id, named["hash"])
        for m, named in parsed
        if m.kind == "welcome" and named is not None
    }
    found: list[Violation] = []
    for onboarding in onboardings:
        if onboarding.cancelled:
            continue
        org_id = organization_id(onboarding.slug)
        organization = store.organizations.get(org_id)
        if organization is None or organization["status"] not in ("active", "offboarded"):
            continue
        invited = {address.lower() for address in onboarding.invitees}
        admins = sorted(
            str(row["email"]).lower()
            for row in store.invitations.values()
            if row["organization_id"] == org_id
            and row["role"] in WELCOMED_ROLES
            and str(row["email"]).lower() in invited
        )
        missing = sum((org_id, address_hash(a)) not in welcomed for a in admins)
        if missing:
            found.append(
                Violation(
                    "mail",
                    f"onboarding {onboarding.slug}: {missing} of its {len(admins)} admin "
                    "invitees were never welcomed",
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
