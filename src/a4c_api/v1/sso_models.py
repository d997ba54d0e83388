"""The bodies of the ``/v1/organizations/{slug}/sso`` and ``…/email-domains`` routes.

A client secret comes in (:class:`SSOSettings`) and never goes out: no answer has a
field for it, sealed or not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from a4c_api.v1.models import Answer, Incoming
from a4c_domain.commands import Hostname
from a4c_domain.email_domains import challenge_record_name, challenge_record_value
from a4c_domain.fields import ClientId, IssuerURL
from a4c_projector.sso_queries import EmailDomainRecord, SSOConnectionRecord
from a4c_worker.workflows.sso_models import SSOConfigurationProgress

# A client secret as providers issue them: printable text, far below what sealing allows.
CLIENT_SECRET_MAX_LENGTH = 512


class SSOSettings(Incoming):
    """The organization's own OpenID Connect provider, to check, test and activate."""

    issuer: IssuerURL = Field(
        description="The provider's issuer: its discovery document is "
        "`{issuer}/.well-known/openid-configuration` and must name exactly this issuer"
    )
    client_id: ClientId = Field(description="a4c's client id at the provider")
    client_secret: Annotated[
        SecretStr, Field(min_length=1, max_length=CLIENT_SECRET_MAX_LENGTH)
    ] = Field(description="a4c's client secret at the provider; sealed at once, never shown")


class SSOConnection(Answer):
    """An organization's single sign-on: ``state`` ``active`` (``active_issuer`` signs its
    members in), ``pending`` (a configuration is being tried; an active one stays in
    force meanwhile) or ``none``. ``configuration``: the latest configuration run's live
    progress (null when none ran, or it cannot be read now)."""

    organization: str
    state: Literal["none", "pending", "active"]
    issuer: str | None = Field(description="The configuration last given: tried, else in force")
    client_id: str | None
    active_issuer: str | None
    active_client_id: str | None
    activated_at: datetime | None
    pending_generation: int | None
    pending_tested: bool
    abandon_reason: str | None
    deactivation_reason: str | None
    configuration: SSOConfigurationProgress | None

    @classmethod
    def of(
        cls, slug: str, row: SSOConnectionRecord | None, progress: SSOConfigurationProgress | None
    ) -> SSOConnection:
        if row is None:
            return cls(
                organization=slug,
                state="none",
                issuer=None,
                client_id=None,
                active_issuer=None,
                active_client_id=None,
                activated_at=None,
                pending_generation=None,
                pending_tested=False,
                abandon_reason=None,
                deactivation_reason=None,
                configuration=progress,
            )
        return cls(
            organization=slug,
            state=row.state,
            issuer=row.issuer,
            client_id=row.client_id,
            active_issuer=row.active_issuer,
            active_client_id=row.active_client_id,
            activated_at=row.activated_at,
            pending_generation=row.pending_generation,
            pending_tested=row.pending_tested,
            abandon_reason=row.abandon_reason,
            deactivation_reason=row.deactivation_reason,
            configuration=progress,
        )


class EmailDomainRequest(Incoming):
    domain: Hostname = Field(description="An e-mail domain the organization's addresses use")


class TXTRecord(Answer):
    """What the organization publishes in the domain's DNS to prove it owns it."""

    name: str
    type: Literal["TXT"] = "TXT"
    value: str


class EmailDomain(Answer):
    """An e-mail domain the organization asked to own: ``verified`` once ``record`` was
    found in its DNS (then no other organization can own it)."""

    domain: str
    status: Literal["pending", "verified"]
    record: TXTRecord
    verified_at: datetime | None = None

    @classmethod
    def of(cls, row: EmailDomainRecord) -> EmailDomain:
        return cls.build(row.domain, row.status, row.challenge, row.verified_at)

    @classmethod
    def build(
        cls,
        domain: str,
        status: Literal["pending", "verified"],
        challenge: str,
        verified_at: datetime | None = None,
    ) -> EmailDomain:
        return cls(
            domain=domain,
            status=status,
            record=TXTRecord(
                name=challenge_record_name(domain), value=challenge_record_value(challenge)
            ),
            verified_at=verified_at,
        )


class EmailDomainList(Answer):
    organization: str
    email_domains: list[EmailDomain]
