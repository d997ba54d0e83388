"""What a bootstrap reports: its step names, its failure types and its progress.

Pure bookkeeping for OrganizationBootstrapWorkflow (no activity, no timer). Step names
are recorded in progress and as a deactivation's ``failed_step``; the failure types are
what callers match on. Design: docs/design/workflows.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from a4c_worker.workflows.models import (
    BootstrapProgress,
    BootstrapState,
    CompensationRecord,
    StepError,
)

REGISTER = "register"
CONFIGURE_DNS = "configure_dns"
PROPAGATION_WAIT = "propagation_wait"
VERIFY_DNS = "verify_dns"
RECORD_DNS_VERIFIED = "record_dns_verified"
ISSUE_INVITATIONS = "issue_invitations"
SEND_INVITATIONS = "send_invitations"
ACTIVATE = "activate"
START_INVITATION_WORKFLOWS = "start_invitation_workflows"
# The mails about the organization (behind the bootstrap-organization-mails patch):
# never steps that can fail the bootstrap; only their errors are recorded under them.
SEND_WELCOME_MAILS = "send_welcome_mails"
SEND_PROVISIONING_FAILED_MAIL = "send_provisioning_failed_mail"

# Refusals that prove the step did nothing: its undo must not run. (Compensating a
# register that hit another organization's slug would deactivate that organization.)
# The domain refusals come before any event or DNS change (register, configure_dns).
REFUSED_BEFORE_ACTING = frozenset(
    {"InvalidCommand", "OrganizationConflict", "DomainTaken", "DomainOutsideZone"}
)

# The refusal type of a cancel that came too late (what a caller matches on).
CANCEL_REFUSED = "CancelRefused"
INVALID_INPUT = "InvalidBootstrapInput"
CANCELLED = "BootstrapCancelled"
FAILED = "BootstrapFailed"


def registered_nothing(progress: BootstrapProgress) -> bool:
    """Whether a bootstrap ended (failed or cancelled) before its organization was
    registered, and no undo found anything to undo: nothing is stored for its slug, so it
    may be onboarded again, with other input too."""
    return (
        progress.state in ("failed", "cancelled")
        and REGISTER not in progress.completed_steps
        and all(c.outcome == "nothing_to_do" for c in progress.compensations)
    )


@dataclass
class ProgressBook:
    """One bootstrap's progress as it runs; :meth:`snapshot` is what ``progress`` answers."""

    state: BootstrapState = "running"
    current_step: str | None = None
    completed: list[str] = field(default_factory=list)
    errors: list[StepError] = field(default_factory=list)
    compensations: list[CompensationRecord] = field(default_factory=list)
    organization_id: UUID | None = None
    invitation_ids: list[UUID] = field(default_factory=list)
    failed_step: str | None = None
    cancel_reason: str | None = None
    # Activated by a bootstrap that mails afterwards: past the point of no return.
    activated: bool = False

    def snapshot(self) -> BootstrapProgress:
        return BootstrapProgress(
            state=self.state,
            current_step=self.current_step,
            completed_steps=list(self.completed),
            errors=list(self.errors),
            compensations=list(self.compensations),
            organization_id=self.organization_id,
            invitation_ids=list(self.invitation_ids),
            failed_step=self.failed_step,
            cancel_reason=self.cancel_reason,
        )

    def cancellable(self) -> bool:
        return (
            self.state == "running"
            and not self.activated
            and self.current_step != START_INVITATION_WORKFLOWS
        )
