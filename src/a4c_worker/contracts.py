"""What the activities take and return (pydantic), shared by the workflows that call them.

Every model here crosses a Temporal boundary, so it is recorded in workflow history:
none of them may ever hold an invitation token. The workflows (``a4c_worker.workflows``)
and the activities (``a4c_worker.activities``) both import this module; it imports
neither, so activities never depend on the workflows that schedule them.

Changing a field here changes what recorded histories decode to: add fields with
defaults, never rename or remove (tests/worker/histories replays the old ones).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from a4c_domain.commands import (
    Email,
    Hostname,
    Identifier,
    Name,
    PersonName,
    Reason,
    RecordedPersonName,
    RegisterOrganization,
    Role,
)
from a4c_domain.fields import IssuerURL, SealedSecret
from a4c_domain.identity import SignInIdentity


def accept_proof(token: str) -> str:
    """What an accept request carries instead of the token: a one-way, domain-separated hash.

    Update arguments are written to workflow history, and the token must never be. The
    proof is not the stored token hash (so read models cannot be replayed as proofs);
    the accept activity recomputes the current token and compares its proof. A correct
    proof only reaches history with the accept that consumes it.
    """
    return hashlib.sha256(b"a4c-accept-proof|" + token.encode()).hexdigest()


def proof_check(proof: str) -> str:
    """What the workflow keeps to recognise a proof: a one-way hash of it, never the proof.

    Workflow state is rebuilt from history, so whatever the validator compares against
    is in history too; this value cannot be turned back into a proof to send.
    """
    return hashlib.sha256(b"a4c-accept-proof-check|" + proof.encode()).hexdigest()


# An invitation's workflow id: activities that end invitations signal it, so it is here.
INVITATION_WORKFLOW_PREFIX = "invitation-"
# Sent to an invitation's workflow by an activity that may have ended it in the store.
INVITATION_ENDED_SIGNAL = "invitation_ended"


def invitation_workflow_id(invitation_id: UUID) -> str:
    return f"{INVITATION_WORKFLOW_PREFIX}{invitation_id}"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Invitee(Model):
    """Someone to invite, as workflow inputs record them: names recorded before the
    domain's name rule still decode (and replay). A new request is a :class:`NewInvitee`."""

    email: Email
    role: Role
    first_name: RecordedPersonName
    last_name: RecordedPersonName


class NewInvitee(Invitee):
    """An invitee as a request names them: names as the domain's ``Invite`` takes them."""

    first_name: PersonName
    last_name: PersonName


# --- activity payloads --------------------------------------------------------------


# The activity's input is the domain command itself: one definition of a registration.
RegisterOrganizationInput = RegisterOrganization


class OrganizationRef(Model):
    organization_id: UUID


class DNSRecordInput(Model):
    organization_id: UUID
    fqdn: Hostname


class EmailDomainInput(Model):
    """An organization's e-mail domain whose challenge is to be checked in its DNS."""

    organization_id: UUID
    domain: Hostname


class EmailDomainOutcome(Model):
    organization_id: UUID
    domain: str
    status: Literal["pending", "verified"]
    written: bool  # False: verified already (a retry after the write, or a second check)
    # The organization's challenge (public: it publishes it in DNS), for the caller that
    # shows the TXT record before the read models do.
    challenge: str | None = None


class SSOProviderInput(Model):
    """An identity provider to check before an organization may use it."""

    issuer: IssuerURL


class SSOConfigureInput(Model):
    organization_id: UUID
    issuer: IssuerURL
    client_id: Identifier
    client_secret: SealedSecret  # sealed (a4c_webhooks.sealing), never the secret itself


class SSOTestInput(Model):
    """A test sign-in that succeeded: who (the provider's subject) and the domain of their
    verified address; never the address."""

    organization_id: UUID
    generation: int = Field(ge=1)
    subject: Identifier
    email_domain: Hostname


class SSOGenerationInput(Model):
    organization_id: UUID
    generation: int = Field(ge=1)


class SSOActivateInput(SSOGenerationInput):
    # The provider's, from the run's checked discovery (None: a run recorded before it).
    authorization_endpoint: str | None = None


class SSOAbandonInput(SSOGenerationInput):
    reason: Reason


class SignInCode(Model):
    """A sign-in through an organization's provider, to exchange and verify: its one-time
    authorization ``code`` and PKCE ``code_verifier`` (spent by the exchange; the
    payload codec encrypts them in history), the ``redirect_uri`` and ``nonce`` the
    sign-in started with."""

    code: str = Field(min_length=1, max_length=2048, repr=False)
    code_verifier: str = Field(min_length=43, max_length=128, repr=False)
    redirect_uri: str = Field(min_length=1, max_length=2048)
    nonce: str = Field(min_length=1, max_length=255)


class SSOCodeInput(SignInCode):
    """An admin's test sign-in: ``generation`` is the configuration signed in through
    (None: the one in force)."""

    organization_id: UUID
    generation: int | None = Field(default=None, ge=1)


class InviteeCodeInput(SignInCode):
    """An invitee's sign-in through their organization's provider (the one in force);
    the invitation names the organization."""

    invitation_id: UUID


class SSODeactivateInput(Model):
    organization_id: UUID
    reason: Reason


class SSOConnectionOutcome(Model):
    organization_id: UUID
    status: Literal["inactive", "active"]
    generation: int  # the latest configuration's number
    active_generation: int | None
    pending_generation: int | None
    written: bool


class DeactivateInput(Model):
    organization_id: UUID
    reason: Reason
    failed_step: str | None = None


class OffboardInput(Model):
    organization_id: UUID
    reason: Reason


class OffboardingPlan(Model):
    """What offboarding an organization has to undo, as the event store says now."""

    organization_id: UUID
    slug: str
    status: str
    # The name whose record to remove (the configured one, else the registered domain);
    # None once removed, or when the organization never had one.
    fqdn: str | None
    pending_invitation_ids: list[UUID] = Field(default_factory=list)


class OrganizationOutcome(Model):
    organization_id: UUID
    status: str
    dns_status: str
    written: bool


class DNSRecordOutcome(Model):
    organization_id: UUID
    fqdn: str
    target: str
    record_id: str


class IssueInvitationInput(Model):
    organization_id: UUID
    invitee: Invitee
    expires_at: datetime
    # Defaulted: inputs recorded before it (the bootstrap's, always the first) decode.
    generation: int = Field(default=1, ge=1)


class InvitationRef(Model):
    invitation_id: UUID


class InvitationOutcome(Model):
    invitation_id: UUID
    email: str
    status: str
    email_status: str
    token_generation: int
    expires_at: datetime
    written: bool


MailKind = Literal["invitation", "reminder"]


class SendMailInput(Model):
    invitation_id: UUID
    organization_name: Name
    kind: MailKind = "invitation"


class MailOutcome(Model):
    """``sent`` False: the provider refused for good, recorded on the invitation."""

    invitation_id: UUID
    email: str
    sent: bool
    message_id: str | None = None
    error: str | None = None


class EmailFailureInput(Model):
    invitation_id: UUID
    reason: Reason


class RevokeInput(Model):
    invitation_id: UUID
    reason: Reason


class ReissueInput(Model):
    invitation_id: UUID
    token_generation: int = Field(ge=2)
    expires_at: datetime


class AcceptInput(Model):
    invitation_id: UUID
    token_proof: str = Field(pattern=r"^[0-9a-f]{64}$")
    user_id: Identifier
    # Who signed in (None in inputs recorded before 0.5): the domain checks the address
    # and, where the organization's single sign-on covers it, the provider.
    identity: SignInIdentity | None = None


class ProofCheckOutcome(Model):
    """:func:`proof_check` of the current token's proof, and that token's generation."""

    token_generation: int = Field(ge=1)
    proof_check: str = Field(pattern=r"^[0-9a-f]{64}$")


class CompensationOutcome(Model):
    outcome: Literal["done", "nothing_to_do"]
    detail: str | None = None
