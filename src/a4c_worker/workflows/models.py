"""Inputs, outputs and progress of the workflows (pydantic); the activities' are in contracts.

Every model here crosses a Temporal boundary, so it is recorded in workflow history:
none of them may ever hold an invitation token. Inputs reuse the domain's field types
(slug, names, e-mail normalisation), so a bad bootstrap is refused by the starter and
again by the workflow, with the same messages the domain would give, before any event.

Changing a field here changes what recorded histories decode to: add fields with
defaults, never rename or remove (tests/worker/histories replays the old ones).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from a4c_domain.commands import (
    FIRST_GENERATION,
    MAX_GENERATION,
    Email,
    Hostname,
    Identifier,
    Name,
    OrganizationType,
    Reason,
    Slug,
    Tags,
)
from a4c_domain.identity import SignInIdentity
from a4c_domain.ids import invitation_id as derived_invitation_id

# The webhook endpoint workflow's input extends what its activity issues.
from a4c_worker.activities.webhooks import WebhookCommand as WebhookCommand

# The invitation workflow's id is defined with the activities' contracts (they signal
# invitations); importable from here as before.
from a4c_worker.contracts import INVITATION_WORKFLOW_PREFIX as INVITATION_WORKFLOW_PREFIX
from a4c_worker.contracts import Invitee, Model, SignInCode
from a4c_worker.contracts import invitation_workflow_id as invitation_workflow_id

DAY = 24 * 60 * 60
BOOTSTRAP_WORKFLOW_PREFIX = "org-bootstrap-"


def bootstrap_workflow_id(slug: str) -> str:
    """One bootstrap per slug: the id is what makes a second start join the first."""
    return f"{BOOTSTRAP_WORKFLOW_PREFIX}{slug}"


OFFBOARDING_WORKFLOW_PREFIX = "org-offboard-"


def offboarding_workflow_id(slug: str) -> str:
    """One offboarding per slug at a time: a second start joins the running one."""
    return f"{OFFBOARDING_WORKFLOW_PREFIX}{slug}"


class StepPolicy(Model):
    """Timeouts and retries of each activity; production defaults, tests shorten them.

    ``timeout_seconds`` bounds one attempt (start to close). ``heartbeat_timeout_seconds``
    bounds how long an attempt of a worker that died stays stranded: every worker
    heartbeats its running activities (:mod:`a4c_worker.heartbeats`), so once the beats
    stop for this long Temporal retries the attempt elsewhere. Inputs recorded before it
    existed get the default.
    """

    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    heartbeat_timeout_seconds: float = Field(default=5.0, ge=1, le=3600)
    retry_initial_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_attempts: int = Field(default=5, ge=1, le=100)


# An invitation's re-sends: bounds and production defaults (the API's settings use them).
CooldownSeconds = Annotated[float, Field(ge=0, le=DAY)]
MaxResends = Annotated[int, Field(ge=0, le=1_000)]
DEFAULT_RESEND_COOLDOWN_SECONDS = 60.0
DEFAULT_MAX_RESENDS = 5


class ResendLimit(Model):
    """How often one invitation may be mailed again: not within ``cooldown_seconds`` of
    its last mail, and at most ``max_resends`` times. Fixed in the workflow's input when
    it starts, so every worker and every replay applies the same limit; inputs recorded
    before it existed get these defaults."""

    cooldown_seconds: CooldownSeconds = DEFAULT_RESEND_COOLDOWN_SECONDS
    max_resends: MaxResends = DEFAULT_MAX_RESENDS


# --- organization bootstrap ---------------------------------------------------------


class BootstrapInput(Model):
    """What to onboard. ``domain`` None: the organization gets no DNS record.

    Durations are seconds; the defaults are production's (DNS checked 7 times from 10 s
    doubling, invitations valid 7 days with a reminder a day before expiry).
    """

    name: Name
    slug: Slug
    org_type: OrganizationType
    parent_id: UUID | None = None
    tags: Tags = Field(default_factory=list)
    domain: Hostname | None = None
    invitees: list[Invitee] = Field(default_factory=list, max_length=200)
    propagation_wait_seconds: float = Field(default=60.0, ge=0, le=DAY)
    dns_verify_attempts: int = Field(default=7, ge=1, le=50)
    dns_verify_initial_interval_seconds: float = Field(default=10.0, gt=0, le=DAY)
    invitation_ttl_seconds: float = Field(default=7 * DAY, gt=0, le=365 * DAY)
    reminder_before_seconds: float = Field(default=DAY, ge=0)
    activities: StepPolicy = Field(default_factory=StepPolicy)
    resends: ResendLimit = Field(default_factory=ResendLimit)
    # Where the provisioning-failed mail goes; None: the worker's PROVISIONING_FAILED_MAIL_TO
    # (resolved by the activity, so the configured address stays out of history).
    failure_mail_to: Email | None = None

    @field_validator("invitees")
    @classmethod
    def _distinct_emails(cls, invitees: list[Invitee]) -> list[Invitee]:
        seen: set[str] = set()
        for invitee in invitees:
            if invitee.email in seen:
                raise ValueError(f"{invitee.email} is invited twice")
            seen.add(invitee.email)
        return invitees

    @model_validator(mode="after")
    def _reminder_inside_ttl(self) -> Self:
        if self.reminder_before_seconds >= self.invitation_ttl_seconds:
            raise ValueError("reminder_before_seconds must be less than invitation_ttl_seconds")
        return self


BootstrapState = Literal["running", "completed", "compensating", "failed", "cancelled"]


class StepError(Model):
    step: str
    error_type: str
    message: str
    email: str | None = None


class CompensationRecord(Model):
    step: str
    outcome: Literal["done", "nothing_to_do", "failed"]
    detail: str | None = None


class BootstrapProgress(Model):
    state: BootstrapState = "running"
    current_step: str | None = None
    completed_steps: list[str] = Field(default_factory=list)
    errors: list[StepError] = Field(default_factory=list)
    compensations: list[CompensationRecord] = Field(default_factory=list)
    organization_id: UUID | None = None
    invitation_ids: list[UUID] = Field(default_factory=list)
    failed_step: str | None = None
    cancel_reason: str | None = None


class BootstrapResult(Model):
    organization_id: UUID
    invitation_ids: list[UUID]
    emails_sent: list[str]
    emails_failed: list[str]
    invitation_workflow_ids: list[str]
    completed_steps: list[str]


class CancelRequest(Model):
    reason: Reason = "cancelled by request"


# --- organization offboarding ------------------------------------------------------

MAX_GRACE_PERIOD_SECONDS = 30 * DAY
# Addresses the offboarding mail may go to (the organization's admins).
MAX_ADMINS = 100


class OffboardingInput(Model):
    """What to offboard, why, and who to tell.

    ``grace_period_seconds``: how long the workflow waits before it changes anything;
    until then a cancel (signal or update) ends it with nothing changed. ``admins``: the
    addresses the offboarding mail goes to (kept for it; never a search attribute).
    """

    slug: Slug
    reason: Reason
    grace_period_seconds: float = Field(default=0.0, ge=0, le=MAX_GRACE_PERIOD_SECONDS)
    admins: list[Email] = Field(default_factory=list, max_length=MAX_ADMINS)
    activities: StepPolicy = Field(default_factory=StepPolicy)


# waiting: inside the grace period (cancellable); running: past it, changing things.
OffboardingState = Literal["waiting", "running", "completed", "failed", "cancelled"]


class OffboardingProgress(Model):
    state: OffboardingState = "waiting"
    current_step: str | None = None
    completed_steps: list[str] = Field(default_factory=list)
    errors: list[StepError] = Field(default_factory=list)
    organization_id: UUID | None = None
    grace_ends_at: datetime | None = None
    revoked_invitation_ids: list[UUID] = Field(default_factory=list)
    cancel_reason: str | None = None


class OffboardingResult(Model):
    organization_id: UUID
    revoked_invitation_ids: list[UUID]
    dns_removed: str | None
    completed_steps: list[str]


# --- invitation lifecycle -----------------------------------------------------------


class InvitationCarry(Model):
    """What one run of an InvitationWorkflow hands to the next (continue-as-new)."""

    token_generation: int = Field(ge=1)
    emails_sent: int = Field(ge=0)
    reminder_sent: bool
    last_error: str | None = None
    proof_check: str = Field(pattern=r"^[0-9a-f]{64}$")
    resends: int = Field(default=0, ge=0)
    last_mailed_at: datetime | None = None


class InvitationToIssue(Model):
    """An invitation the workflow issues itself (a domain command in its first step).

    Its id follows from these fields (:meth:`invitation_id`), so the same request again
    names the same workflow.
    """

    organization_id: UUID
    invitee: Invitee
    generation: int = Field(default=FIRST_GENERATION, ge=FIRST_GENERATION, le=MAX_GENERATION)

    @property
    def invitation_id(self) -> UUID:
        # ``invitee.email`` is the domain's normalised address (the ``Email`` type).
        return derived_invitation_id(self.organization_id, self.invitee.email, self.generation)


class InvitationInput(Model):
    """``issue`` None: the invitation was issued before the workflow started (by a
    bootstrap, or by runs recorded before ``issue`` existed); else the run issues it first.
    """

    invitation_id: UUID
    organization_name: Name
    ttl_seconds: float = Field(default=7 * DAY, gt=0, le=365 * DAY)
    reminder_before_seconds: float = Field(default=DAY, ge=0)
    already_sent: bool = False
    expires_at: datetime | None = Field(
        default=None, description="the invitation's recorded expiry; else now + ttl"
    )
    activities: StepPolicy = Field(default_factory=StepPolicy)
    # Each accepted update adds at least two events, so this also keeps a run well
    # below Temporal's per-execution update limit (2,000 by default).
    history_events_before_continue: int = Field(default=2_000, ge=50, le=40_000)
    carried: InvitationCarry | None = None
    issue: InvitationToIssue | None = None
    resends: ResendLimit = Field(default_factory=ResendLimit)

    @model_validator(mode="after")
    def _reminder_inside_ttl(self) -> Self:
        if self.reminder_before_seconds >= self.ttl_seconds:
            raise ValueError("reminder_before_seconds must be less than ttl_seconds")
        return self

    @model_validator(mode="after")
    def _issues_its_own_invitation(self) -> Self:
        if self.issue is not None and self.issue.invitation_id != self.invitation_id:
            raise ValueError("invitation_id must be the id of the invitation to issue")
        return self


class AcceptRequest(Model):
    """``token_proof`` is :func:`accept_proof` of the token (never the token itself);
    ``identity`` who signed in (the platform's provider or the dev sign-in; None in
    requests from before 0.5, which an organization's single sign-on refuses)."""

    token_proof: str = Field(pattern=r"^[0-9a-f]{64}$")
    user_id: Identifier
    identity: SignInIdentity | None = None


class SSOAcceptRequest(SignInCode):
    """Accept by signing in through the organization's own provider: ``token_proof`` as
    :class:`AcceptRequest`'s, and the sign-in's code to exchange (the worker verifies it
    and the domain checks the address and the provider; who accepts is the verified
    subject, never a caller's word)."""

    token_proof: str = Field(pattern=r"^[0-9a-f]{64}$")


class RevokeRequest(Model):
    reason: Reason


# "refused": the domain refused to issue the invitation the run was to issue; nothing
# was stored and the run failed with that refusal.
InvitationState = Literal["pending", "accepted", "revoked", "expired", "refused"]


class InvitationStatus(Model):
    invitation_id: UUID
    state: InvitationState = "pending"
    token_generation: int = 1
    expires_at: datetime | None = None
    emails_sent: int = 0
    reminder_sent: bool = False
    accepted_by: str | None = None
    accepted_issuer: str | None = None
    accepted_subject: str | None = None
    last_error: str | None = None
    resends: int = 0


# --- webhook endpoints --------------------------------------------------------------

WEBHOOK_ENDPOINT_WORKFLOW_PREFIX = "webhook-endpoint-"
# Addresses one disable mail may go to (an organization's admins).
MAX_NOTIFY = 100
_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


class WebhookEndpointChange(WebhookCommand):
    """One change to a webhook endpoint, and who to tell when it is an automatic disable.

    ``notify``: the addresses mailed (once each) when this change is the delivery
    daemon's automatic disable that took effect now; ignored for any other change. An
    address that is no deliverable one is dropped rather than refused: who is told must
    never stop the disable itself. ``secret`` is sealed text (a4c_webhooks.sealing),
    never the secret itself.
    """

    notify: list[Email] = Field(default_factory=list, max_length=MAX_NOTIFY)
    activities: StepPolicy = Field(default_factory=StepPolicy)

    @field_validator("notify", mode="before")
    @classmethod
    def _deliverable_once_each(cls, notify: object) -> object:
        if not isinstance(notify, list | tuple):
            return notify  # refused by the type, naming the field
        kept: set[str] = set()
        for address in notify:
            with contextlib.suppress(ValidationError):
                kept.add(_EMAIL.validate_python(address))  # normalised: lower-case
        return sorted(kept)[:MAX_NOTIFY]

    def command(self) -> WebhookCommand:
        """What the activity issues: the change without its notification and timeouts."""
        return WebhookCommand.model_validate(
            self.model_dump(include=set(WebhookCommand.model_fields))
        )
