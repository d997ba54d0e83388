"""The bootstrap saga: every step failing in turn, and cancellation, undo what was done."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.service import RPCError
from tests.support import wait_for_async
from tests.worker.flows import FaultyApp, Flows, bootstrap_input, sqlite_app, wait_for_step

from a4c_domain import ALL_ORGANIZATIONS, invitation_id, organization_id
from a4c_domain.errors import DNSNotVerified, InvitationConflict, OrganizationInactive
from a4c_worker.client import BootstrapHandle, start_bootstrap
from a4c_worker.providers.errors import PermanentProviderError
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import (
    BootstrapProgress,
    StepPolicy,
)


@pytest.fixture
def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = sqlite_app(tmp_path, FaultyApp)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.close()


def faulty(flows: Flows) -> FaultyApp:
    assert isinstance(flows.app, FaultyApp)
    return flows.app


async def failure_of(handle: BootstrapHandle) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


def fqdn(slug: str) -> str:
    return f"{slug}.orgs.a4c.test"


Inject = Callable[[Flows, str], None]

STEP_FAULTS: dict[str, Inject] = {
    # The command committed, then the activity failed: its undo must still run.
    "register": lambda f, slug: faulty(f).fail(
        "register_organization", OrganizationInactive("injected"), after_commit=True
    ),
    "configure_dns": lambda f, slug: f.dns.fail_for(
        fqdn(slug), PermanentProviderError("REFUSED"), times=1
    ),
    # The verifier is set up by flows (not None) when these faults are injected.
    "verify_dns": lambda f, slug: f.verifier.fail_for(  # type: ignore[union-attr]
        fqdn(slug), PermanentProviderError("NOTAUTH")
    ),
    "record_dns_verified": lambda f, slug: faulty(f).fail("verify_dns", DNSNotVerified("injected")),
    "issue_invitations": lambda f, slug: faulty(f).fail(
        "invite", InvitationConflict("injected", {}), after_commit=True
    ),
    "activate": lambda f, slug: faulty(f).fail("activate", DNSNotVerified("injected")),
}

# What each failure leaves to undo, newest first (the saga's order).
EXPECTED_UNDO: dict[str, list[str]] = {
    "register": ["deactivate"],
    "configure_dns": ["remove_dns", "deactivate"],
    "verify_dns": ["remove_dns", "deactivate"],
    "record_dns_verified": ["remove_dns", "deactivate"],
    "issue_invitations": ["revoke_invitation:", "revoke_invitation:", "remove_dns", "deactivate"],
    "activate": ["revoke_invitation:", "revoke_invitation:", "remove_dns", "deactivate"],
}


@pytest.mark.parametrize("step", list(STEP_FAULTS))
async def test_a_failing_step_is_compensated_in_reverse_and_the_workflow_fails(
    flows: Flows, step: str
) -> None:
    slug = f"fail-{step.replace('_', '-')}"
    STEP_FAULTS[step](flows, slug)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        error = await failure_of(handle)
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)

    assert error.type == "BootstrapFailed"
    assert step in str(error)
    assert progress.state == "failed"
    assert progress.failed_step == step
    undone = [c.step.split(":")[0] + (":" if ":" in c.step else "") for c in progress.compensations]
    assert undone == EXPECTED_UNDO[step]
    assert all(c.outcome != "failed" for c in progress.compensations), progress.compensations

    org = flows.app.get_organization(organization_id(slug))
    assert org.status == "deactivated"
    assert org.failed_step == step
    assert flows.dns.lookup(fqdn(slug)) is None
    if step in ("issue_invitations", "activate"):
        for i in range(2):
            inv_id = invitation_id(org.id, f"person{i}@{slug}.example.com", 1)
            assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"
    assert flows.event_counts()["Organization.Activated"] == 0


async def test_a_refused_mail_is_a_recorded_error_not_a_failure(flows: Flows) -> None:
    slug = "mail-refused"
    flows.mailer.fail_for(f"person1@{slug}.example.com", PermanentProviderError("550 no such user"))
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        result = await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)

    assert result.emails_sent == [f"person0@{slug}.example.com"]
    assert result.emails_failed == [f"person1@{slug}.example.com"]
    assert [(e.step, e.email) for e in progress.errors] == [
        ("send_invitations", f"person1@{slug}.example.com")
    ]
    assert "550 no such user" in progress.errors[0].message
    failed = flows.app.get_invitation(result.invitation_ids[1], ALL_ORGANIZATIONS)
    assert (failed.email_status, failed.status) == ("failed", "pending")
    assert failed.email_error is not None and "550" in failed.email_error
    assert flows.app.get_organization(result.organization_id).status == "active"


async def test_a_mail_that_keeps_failing_transiently_is_recorded_as_failed(flows: Flows) -> None:
    from a4c_worker.providers.errors import TransientProviderError

    slug = "mail-flaky"
    flows.mailer.fail_for(f"person0@{slug}.example.com", TransientProviderError("451 later"))
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, invitees=1), flows.task_queue
        )
        result = await handle.result()
    assert result.emails_failed == [f"person0@{slug}.example.com"]
    inv = flows.app.get_invitation(result.invitation_ids[0], ALL_ORGANIZATIONS)
    assert inv.email_status == "failed" and "451 later" in (inv.email_error or "")


def assert_compensated(flows: Flows, slug: str, step: str, progress: BootstrapProgress) -> None:
    assert progress.failed_step == step
    assert [c.step for c in progress.compensations] == ["remove_dns", "deactivate"]
    org = flows.app.get_organization(organization_id(slug))
    assert (org.status, org.failed_step, org.dns_status) == ("deactivated", step, "removed")
    assert org.deactivation_reason is not None and "cancelled" in org.deactivation_reason
    assert flows.dns.lookup(fqdn(slug)) is None


async def test_the_cancel_signal_during_the_propagation_wait_compensates(flows: Flows) -> None:
    slug = "cancel-signal"
    spec = bootstrap_input(slug, propagation_wait_seconds=600)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        await wait_for_step(handle, "propagation_wait")
        await handle.signal(OrganizationBootstrapWorkflow.cancel, "customer changed their mind")
        error = await failure_of(handle)
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert error.type == "BootstrapCancelled"
    assert progress.state == "cancelled"
    assert progress.cancel_reason == "customer changed their mind"
    assert_compensated(flows, slug, "propagation_wait", progress)


async def test_temporal_cancellation_during_the_wait_compensates_then_ends_cancelled(
    flows: Flows,
) -> None:
    slug = "cancel-temporal"
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, propagation_wait_seconds=600), flows.task_queue
        )
        await wait_for_step(handle, "propagation_wait")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
    assert isinstance(failed.value.cause, CancelledError)
    assert progress.state == "cancelled"
    assert_compensated(flows, slug, "propagation_wait", progress)


async def test_the_cancel_update_during_a_hanging_activity_compensates_and_reports(
    flows: Flows,
) -> None:
    slug = "cancel-update"
    never = asyncio.Event()

    async def hang(fqdn: str, target: str, *, record_type: str = "CNAME") -> bool:
        await never.wait()
        return True

    # A hanging verify in the double flows set up (so not None).
    flows.verifier.verify = hang  # type: ignore[method-assign,union-attr]
    async with flows.worker():
        handle = await start_bootstrap(flows.client, bootstrap_input(slug), flows.task_queue)
        await wait_for_step(handle, "verify_dns")
        final = await handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, "stop")
        error = await failure_of(handle)
        never.set()
    assert error.type == "BootstrapCancelled"
    assert final.state == "cancelled"
    assert_compensated(flows, slug, "verify_dns", final)


async def test_cancel_after_completion_is_refused_and_undoes_nothing(flows: Flows) -> None:
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input("cancel-late", invitees=0), flows.task_queue
        )
        await handle.result()
        with pytest.raises(RPCError, match="already completed"):
            await handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, "too late")
    assert flows.app.get_organization(organization_id("cancel-late")).status == "active"


async def test_a_cancel_during_a_write_waits_for_it_then_undoes_it(flows: Flows) -> None:
    """An invite still writing when the cancel arrives commits first, then is revoked."""
    slug = "cancel-write"
    faulty(flows).hang("invite", before_commit=True)
    steps = StepPolicy(timeout_seconds=10, retry_initial_interval_seconds=0.1, max_attempts=3)
    async with flows.worker():
        handle = await start_bootstrap(
            flows.client, bootstrap_input(slug, activities=steps), flows.task_queue
        )
        assert await asyncio.to_thread(faulty(flows).hanging.wait, 30)
        cancelling = asyncio.create_task(
            handle.execute_update(OrganizationBootstrapWorkflow.request_cancel, "stop")
        )
        await wait_for_cancel_requested(handle)
        await asyncio.sleep(0.5)
        waiting = await handle.query(OrganizationBootstrapWorkflow.progress)
        # Compensation has not started: the write in flight is still being waited for.
        assert (waiting.state, waiting.compensations) == ("running", [])
        faulty(flows).release()
        final = await cancelling
    assert final.failed_step == "issue_invitations"
    org_id = organization_id(slug)
    for i in range(2):
        inv_id = invitation_id(org_id, f"person{i}@{slug}.example.com", 1)
        assert flows.app.get_invitation(inv_id, ALL_ORGANIZATIONS).status == "revoked"
    assert flows.app.get_organization(org_id).status == "deactivated"


async def wait_for_cancel_requested(handle: BootstrapHandle) -> None:
    async def requested() -> bool:
        return bool((await handle.query(OrganizationBootstrapWorkflow.progress)).cancel_reason)

    await wait_for_async(requested, what="the cancel request", interval=0.05)
