"""DomainClaim: which organization a domain (fqdn) belongs to.

Its id is derived from the normalised fqdn (:func:`a4c_domain.ids.domain_claim_id`), so
two organizations taking one domain both try to create version 1 of the same aggregate
and the event store's uniqueness lets exactly one of them succeed. The claim is saved
in the same atomic write as the event that takes the domain (``Registered`` with a
domain, or ``DNSConfigured``), so a refused organization stores nothing.

A claim is never released: removing an organization's DNS record or deactivating it
leaves the domain with that organization, so a record whose owner is gone can never be
adopted (and later deleted) by another tenant. Freeing a domain is an operator decision
outside the library.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from a4c_domain.base import DomainAggregate
from a4c_domain.ids import domain_claim_id


class DomainClaim(DomainAggregate):
    """The one organization that owns ``fqdn`` (lower-case, no trailing dot)."""

    class Claimed(DomainAggregate.Created):
        fqdn: str
        organization_id: UUID

    @staticmethod
    def create_id(fqdn: str) -> UUID:
        return domain_claim_id(fqdn)

    @event(Claimed)
    def __init__(self, fqdn: str, organization_id: UUID) -> None:
        self.fqdn = fqdn
        self.organization_id = organization_id
