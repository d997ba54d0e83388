"""The operator commands of ``a4c-worker`` that talk to running workflows.

Each function takes a connected client and an output stream and returns the process
exit code: 0 done, 1 the workflow (or the request) failed. Output is one line per
progress change while following, and indented JSON for snapshots, so both people and
scripts can read it. Nothing printed ever contains an invitation token: the models
shown never hold one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TextIO
from uuid import UUID

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_domain.commands import RevokeInvitation, validate
from a4c_worker.client import (
    POLL_INTERVAL,
    BootstrapHandle,
    InvitationClosed,
    InviteRefused,
    bootstrap_handle,
    invitation_handle,
    invitation_state,
    revoke_invitation,
    start_bootstrap,
    watch_bootstrap,
)
from a4c_worker.client import invite as invite_through_workflow
from a4c_worker.contracts import Invitee
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import (
    DAY,
    BootstrapInput,
    BootstrapProgress,
    CancelRequest,
    bootstrap_workflow_id,
)


class CommandFailed(Exception):
    """A request was refused or the workflow does not exist; the message says which."""


def show(model: BaseModel | dict[str, Any], out: TextIO) -> None:
    data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
    print(json.dumps(data, indent=2, sort_keys=True, default=str), file=out, flush=True)


def progress_line(progress: BootstrapProgress) -> str:
    parts = [f"state={progress.state}", f"step={progress.current_step or '-'}"]
    parts.append(f"done={','.join(progress.completed_steps) or '-'}")
    if progress.errors:
        parts.append(f"errors={len(progress.errors)}")
    if progress.compensations:
        undone = ",".join(f"{c.step}:{c.outcome}" for c in progress.compensations)
        parts.append(f"compensations={undone}")
    return " ".join(parts)


async def bootstrap(
    client: Client,
    spec: BootstrapInput,
    task_queue: str,
    out: TextIO,
    *,
    follow: bool = True,
    poll_interval: float = POLL_INTERVAL,
) -> int:
    """Start (or join) the bootstrap of ``spec.slug``; follow it to the end unless told not to."""
    try:
        handle = await start_bootstrap(client, spec, task_queue)
    except WorkflowAlreadyStartedError:
        raise CommandFailed(
            f"slug {spec.slug!r} was bootstrapped already (a slug is bootstrapped once); "
            f"see: a4c-worker status {spec.slug}"
        ) from None
    print(f"bootstrap {spec.slug!r}: workflow {handle.id} run {handle.result_run_id}", file=out)
    if not follow:
        return 0
    return await follow_bootstrap(handle, out, poll_interval=poll_interval)


async def follow_bootstrap(
    handle: BootstrapHandle, out: TextIO, *, poll_interval: float = POLL_INTERVAL
) -> int:
    """Print each progress change until the workflow closes; 0 only if it completed."""
    last = ""

    def show_change(progress: BootstrapProgress) -> None:
        nonlocal last
        if (line := progress_line(progress)) != last:
            print(line, file=out, flush=True)
            last = line

    try:
        outcome = await watch_bootstrap(handle, show_change, poll_interval=poll_interval)
    except WorkflowFailureError as exc:
        print(f"bootstrap failed: {exc.cause}", file=out, flush=True)
        return 1
    print(
        f"bootstrap completed: organization {outcome.organization_id}, "
        f"{len(outcome.invitation_ids)} invitation(s), {len(outcome.emails_sent)} e-mail(s) "
        f"sent, {len(outcome.emails_failed)} failed",
        file=out,
        flush=True,
    )
    return 0


async def status(client: Client, slug: str, out: TextIO) -> int:
    handle = bootstrap_handle(client, slug)
    with refusals("status refused", f"no bootstrap for slug {slug!r}"):
        description = await handle.describe()
        progress = await handle.query(
            OrganizationBootstrapWorkflow.progress, rpc_timeout=timedelta(seconds=10)
        )
    show(
        {
            "workflow_id": bootstrap_workflow_id(slug),
            "run_id": description.run_id,
            "workflow_status": description.status.name if description.status else None,
            "progress": progress.model_dump(mode="json"),
        },
        out,
    )
    return 0


async def cancel(client: Client, slug: str, reason: str, out: TextIO, *, wait: bool) -> int:
    """``wait``: the update, returning once compensation is over; else the signal.

    The reason is checked here first (``ValidationError`` naming ``reason``), so a bad one
    is refused in the caller's terms rather than in the workflow validator's.
    """
    CancelRequest(reason=reason)
    handle = bootstrap_handle(client, slug)
    missing = f"no running bootstrap for slug {slug!r} (see: a4c-worker status {slug})"
    with refusals("cancel refused", missing):
        if not wait:
            await handle.signal(OrganizationBootstrapWorkflow.cancel, reason)
            print(f"cancel requested for {handle.id}", file=out)
            return 0
        progress = await handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, reason)
    show(progress, out)
    return 0 if progress.state in ("cancelled", "failed") else 1


async def invite(
    client: Client,
    app: OnboardingApplication,
    task_queue: str,
    out: TextIO,
    *,
    org_slug: str,
    email: str,
    role: str,  # the command line's text: the invitee model refuses one that is not a role
    first_name: str,
    last_name: str,
    generation: int = 1,
) -> int:
    """Have the invitation's workflow issue it (and mail it); show its id once issued.

    The organization is read from the store (unknown slug: ``OrganizationNotFound``);
    the invitation is written by the workflow only, so the same command again shows the
    same invitation, and a refusal stores nothing.
    """
    org = await asyncio.to_thread(app.get_organization_by_slug, org_slug)
    invitee = Invitee.model_validate(
        {"email": email, "role": role, "first_name": first_name, "last_name": last_name}
    )
    ttl = app.invitation_ttl.total_seconds()
    try:
        issued = await invite_through_workflow(
            client,
            organization_id=org.id,
            organization_name=org.name,
            invitee=invitee,
            generation=generation,
            task_queue=task_queue,
            organization_slug=org.slug,
            organization_tags=org.tags,
            ttl_seconds=ttl,
            reminder_before_seconds=min(float(DAY), ttl / 2),
        )
    except InviteRefused as exc:
        raise CommandFailed(f"invite refused: {exc.error_type}: {exc}") from None
    except InvitationClosed as exc:
        raise CommandFailed(f"invite refused: {exc}") from None
    handle = invitation_handle(client, issued.invitation_id)
    show({"invitation_id": str(issued.invitation_id), "workflow_id": handle.id}, out)
    return 0


async def revoke(client: Client, invitation_id: UUID, reason: str, out: TextIO) -> int:
    """Revoke through the invitation's workflow; bad input is refused before it is sent."""
    # The operator tool acts for the platform, on any organization's invitation.
    validate(
        RevokeInvitation,
        organization_id=ALL_ORGANIZATIONS,
        invitation_id=invitation_id,
        reason=reason,
    )
    try:
        result = await revoke_invitation(client, invitation_id, reason)
    except WorkflowUpdateFailedError as exc:
        if getattr(exc.cause, "type", None) != "InvitationNotPending":
            raise CommandFailed(f"revoke refused: {exc.cause}") from None
        raise await _not_pending(client, invitation_id) from None
    except RPCError as exc:  # NOT_FOUND: no such workflow, or it has ended
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise await _not_pending(client, invitation_id) from None
    show(result, out)
    return 0


async def _not_pending(client: Client, invitation_id: UUID) -> CommandFailed:
    """Why an invitation cannot be revoked, from what its workflow says about it."""
    try:
        state = await invitation_state(client, invitation_id)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return CommandFailed(f"no invitation {invitation_id} was found")
    return CommandFailed(f"revoke refused: invitation {invitation_id} is already {state}")


@contextmanager
def refusals(refused: str, missing: str) -> Iterator[None]:
    """A rejected update or an unknown workflow as :class:`CommandFailed` with a plain message."""
    try:
        yield
    except WorkflowUpdateFailedError as exc:
        raise CommandFailed(f"{refused}: {exc.cause}") from None
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CommandFailed(missing) from None
        raise
