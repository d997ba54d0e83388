"""E-mail domains an organization owns: the challenge it publishes, and the one owner.

Before an organization's single sign-on covers the addresses of an e-mail domain, the
organization proves it controls the domain's DNS, as WorkOS's domain verification does:
it asks (``EmailDomainVerification``: one per organization and domain, with a random
``challenge``), publishes the challenge in a TXT record (:func:`challenge_record_name`,
:func:`challenge_record_value`), and a check that finds it there verifies the domain.

The challenge is no secret (it is published in DNS for anyone to read); it only ties
the record to this organization's request, so it is stored as is and shown to the
organization's admins. It never changes: asking again returns the same one.

An e-mail domain has one owner, like a DNS name (:class:`a4c_domain.claims.DomainClaim`):
``EmailDomainClaim`` (id from the domain alone) is created in the same atomic save as
the ``Verified`` event, so of two organizations verifying one domain exactly one
succeeds, and the other's verification stores nothing. Asking is not owning: another
organization's pending request blocks no one (a request alone proves nothing). A claim
is never released by the library (an operator's decision, as for DNS names).
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from email_validator import EmailNotValidError, validate_email
from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.ids import email_domain_claim_id, email_domain_verification_id

EmailDomainStatus = Literal["pending", "verified"]
# Where the challenge is published: a label of a4c's own below the domain, so the
# domain's own TXT records (SPF...) are left alone.
CHALLENGE_LABEL = "_a4c-challenge"
CHALLENGE_PREFIX = "a4c-domain-verification="


def email_domain_of(address: str) -> str:
    """The e-mail domain of ``address`` as e-mail domains are verified and claimed: its
    ASCII form (an international domain in IDNA), lower-case; so an invited address
    written with a Unicode domain is covered by the same claim as its ASCII spelling."""
    try:
        domain = validate_email(address, check_deliverability=False).ascii_domain
    except EmailNotValidError:
        domain = address.rpartition("@")[2]  # stored addresses were validated on the way in
    return domain.lower().rstrip(".")


def challenge_record_name(domain: str) -> str:
    """The name of the TXT record that carries ``domain``'s challenge."""
    return f"{CHALLENGE_LABEL}.{domain}"


def challenge_record_value(challenge: str) -> str:
    """The TXT record's text: the challenge, marked as a4c's."""
    return CHALLENGE_PREFIX + challenge


class EmailDomainVerification(DomainAggregate):
    """One organization's request to own an e-mail domain, and whether it is proven."""

    class Requested(DomainAggregate.Created):
        organization_id: UUID
        domain: str
        challenge: str  # published in DNS by the organization: not a secret

    class Verified(DomainAggregate.Event):
        pass

    @staticmethod
    def create_id(organization_id: UUID, domain: str) -> UUID:
        return email_domain_verification_id(organization_id, domain)

    @event(Requested)
    def __init__(self, organization_id: UUID, domain: str, challenge: str) -> None:
        self.organization_id = organization_id
        self.domain = domain
        self.challenge = challenge
        self.status: EmailDomainStatus = "pending"

    @property
    def record_name(self) -> str:
        return challenge_record_name(self.domain)

    @property
    def record_value(self) -> str:
        return challenge_record_value(self.challenge)

    def verify(self) -> None:
        """The challenge was found in DNS (verified already: a no-op)."""
        if self.status == "verified":
            return
        self._verified()

    @event(Verified)
    def _verified(self) -> None:
        self.status = "verified"


class EmailDomainClaim(DomainAggregate):
    """The one organization that owns the e-mail domain ``domain`` (lower-case)."""

    class Claimed(DomainAggregate.Created):
        domain: str
        organization_id: UUID

    @staticmethod
    def create_id(domain: str) -> UUID:
        return email_domain_claim_id(domain)

    @event(Claimed)
    def __init__(self, domain: str, organization_id: UUID) -> None:
        self.domain = domain
        self.organization_id = organization_id
