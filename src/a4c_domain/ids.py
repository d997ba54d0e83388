"""Deterministic identifiers.

Aggregate IDs are uuid5 of natural keys, so the event store's uniqueness constraint on
(originator_id, originator_version) makes "create twice" impossible and a retried
command lands on the same aggregate. Event IDs are uuid5 of (aggregate ID, version):
every consumer computes the same ID for the same stored event and can deduplicate on it.
"""

from __future__ import annotations

from uuid import UUID, uuid5

# Fixed namespaces: changing any of them changes every ID ever issued.
ORGANIZATION_NAMESPACE = UUID("6f1d3a52-3c1e-5b7a-9a4e-0c4f2d9e7a10")
INVITATION_NAMESPACE = UUID("b0a6e5c4-8d2f-5e19-8c7b-5a3e1f0d9c21")
EVENT_NAMESPACE = UUID("2d8c9f7e-1a4b-5c3d-9e6f-7a8b9c0d1e32")
DOMAIN_NAMESPACE = UUID("9c3e7b1a-5d2f-5a84-b6e0-3f1d8c2a7e45")
WEBHOOK_ENDPOINT_NAMESPACE = UUID("4e7a2c91-6b3d-5f08-a1c5-8d9e0b2f3a64")
SSO_CONNECTION_NAMESPACE = UUID("8a5f3d27-c1e9-5b46-9d02-e7b4a6c1f358")
EMAIL_DOMAIN_CLAIM_NAMESPACE = UUID("d36b9e04-2f7a-5c81-b5e3-1a9c4d7f0e62")
EMAIL_DOMAIN_VERIFICATION_NAMESPACE = UUID("71c4e8a9-5d03-5f2b-8e6a-b0d3f9c2a174")
# The owner of the platform's own webhook endpoints (operators'), in their ids.
PLATFORM_OWNER = "platform"


def organization_id(slug: str) -> UUID:
    """The ID of the organization that owns ``slug`` (already validated, lower-case)."""
    return uuid5(ORGANIZATION_NAMESPACE, slug)


def domain_claim_id(fqdn: str) -> UUID:
    """The ID of the claim on ``fqdn`` (already validated: lower-case, no trailing dot)."""
    return uuid5(DOMAIN_NAMESPACE, fqdn)


def invitation_id(organization: UUID, email: str, generation: int = 1) -> UUID:
    """The ID of the ``generation``-th invitation of normalised ``email`` to an org."""
    return uuid5(INVITATION_NAMESPACE, f"{organization}|{email}|{generation}")


def webhook_endpoint_id(owner_id: UUID | None, name: str) -> UUID:
    """The ID of the webhook endpoint ``name`` (already validated) of an organization, or
    of the platform when ``owner_id`` is None."""
    owner = PLATFORM_OWNER if owner_id is None else str(owner_id)
    return uuid5(WEBHOOK_ENDPOINT_NAMESPACE, f"{owner}|{name}")


def sso_connection_id(organization: UUID) -> UUID:
    """The ID of an organization's single sign-on connection: one per organization."""
    return uuid5(SSO_CONNECTION_NAMESPACE, str(organization))


def email_domain_claim_id(domain: str) -> UUID:
    """The ID of the claim on the e-mail domain ``domain`` (validated, lower-case)."""
    return uuid5(EMAIL_DOMAIN_CLAIM_NAMESPACE, domain)


def email_domain_verification_id(organization: UUID, domain: str) -> UUID:
    """The ID of an organization's proof that it owns the e-mail domain ``domain``."""
    return uuid5(EMAIL_DOMAIN_VERIFICATION_NAMESPACE, f"{organization}|{domain}")


def event_id(originator_id: UUID, originator_version: int) -> UUID:
    """The ID of the stored event at ``originator_version`` of an aggregate."""
    return uuid5(EVENT_NAMESPACE, f"{originator_id}|{originator_version}")
