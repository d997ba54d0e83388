"""The invitation workflow's rules, as pure functions of its state.

Whether a command finds the invitation pending, whether a resend is within its limit,
what a stored status or an expire refusal means, and how a domain refusal reaches the
caller. Each refusal is an ``ApplicationError`` whose type is the domain's error name.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ActivityError, ApplicationError

from a4c_domain.commands import Reason, field_errors
from a4c_domain.errors import ResendTooSoon, TooManyAttempts, TooManyResends
from a4c_worker.workflows.invitation_state import InvitationBook
from a4c_worker.workflows.models import InvitationState, ResendLimit
from a4c_worker.workflows.saga import application_cause, describe, failure_type

T = TypeVar("T")
# A domain refusal to issue: its type (the domain error's class name), message, details.
Refusal = tuple[str, str, tuple[Any, ...]]

# Outcomes of the expire command that mean "already settled some other way".
SETTLED: dict[str, InvitationState] = {
    "InvitationAlreadyAccepted": "accepted",
    "InvitationRevoked": "revoked",
    "InvitationExpired": "expired",
}
# The stored invitation's status as this workflow's state (all but "pending").
STORED_STATE: dict[str, InvitationState] = {
    "accepted": "accepted",
    "revoked": "revoked",
    "expired": "expired",
}
_REASON: TypeAdapter[str] = TypeAdapter(Reason)


def require_pending(state: InvitationState) -> None:
    if state == "refused":
        raise ApplicationError(
            "the invitation was never issued (refused)",
            type="InvitationNotPending",
            non_retryable=True,
        )
    if state != "pending":
        raise ApplicationError(
            f"invitation is {state}", type="InvitationNotPending", non_retryable=True
        )


def require_valid_reason(reason: str) -> None:
    try:
        _REASON.validate_python(reason)
    except ValidationError as exc:  # the caller's terms, not pydantic's internals
        problems = "; ".join(f"reason: {e['message']}" for e in field_errors(exc))
        raise ApplicationError(
            f"invalid input: {problems}", type="InvalidCommand", non_retryable=True
        ) from None


def require_resend_allowed(
    book: InvitationBook, invitation: UUID, limit: ResendLimit, now: datetime
) -> None:
    """``TooManyResends`` past the cap, ``ResendTooSoon`` within the cooldown."""
    refused: TooManyAttempts | None = None
    if book.resends >= limit.max_resends:
        expires_at = book.expires_at
        until_expiry = (expires_at - now).total_seconds() if expires_at else 0
        refused = TooManyResends(invitation, limit.max_resends, max(1.0, until_expiry))
    elif book.last_mailed_at is not None:
        ready_at = book.last_mailed_at + timedelta(seconds=limit.cooldown_seconds)
        if ready_at > now:
            refused = ResendTooSoon(invitation, (ready_at - now).total_seconds())
    if refused is not None:
        raise ApplicationError(
            str(refused), refused.retry_after, type=type(refused).__name__, non_retryable=True
        )


def next_deadline(
    book: InvitationBook, reminder_before_seconds: float, now: datetime
) -> tuple[datetime, bool]:
    """When to act next, and whether that is the reminder (else the expiry)."""
    assert book.expires_at is not None
    remind_at = book.expires_at - timedelta(seconds=reminder_before_seconds)
    reminding = not book.reminder_sent and reminder_before_seconds > 0 and now < book.expires_at
    return (remind_at if reminding else book.expires_at), reminding


def refusal_of(exc: ActivityError) -> Refusal:
    cause = application_cause(exc)
    if cause is None:
        return ("ActivityFailed", describe(exc), ())
    return (cause.type or "ActivityFailed", cause.message, tuple(cause.details))


def refusal_error(refusal: Refusal) -> ApplicationError:
    """The refusal as the caller gets it: the domain's type, message and details."""
    kind, message, details = refusal
    return ApplicationError(message, *details, type=kind, non_retryable=True)


async def refusal_fails_update(call: Awaitable[T]) -> T:
    """A command refused by the domain fails the update (the caller sees why), not the run."""
    try:
        return await call
    except ActivityError as exc:
        raise ApplicationError(
            describe(exc), type=failure_type(exc) or "ActivityFailed", non_retryable=True
        ) from None
