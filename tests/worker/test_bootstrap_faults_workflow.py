"""Faults on PostgreSQL: duplicate starts, activities retried after they acted, worker death.

Each case must end with exactly the events of one clean bootstrap: nothing lost,
nothing written twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET
from tests.worker.flows import FaultyApp, Flows, bootstrap_input

from a4c_domain import OnboardingApplication, organization_id
from a4c_domain.errors import ConcurrencyError
from a4c_worker.client import start_bootstrap
from a4c_worker.workflows.models import StepPolicy

# Short start-to-close so a hung attempt is timed out and retried within seconds.
HANG_STEPS = StepPolicy(timeout_seconds=2, retry_initial_interval_seconds=0.1, max_attempts=5)

ONE_CLEAN_BOOTSTRAP = Counter(
    {
        "Organization.Registered": 1,
        "DomainClaim.Claimed": 1,  # saved with the registration
        "Organization.DNSConfigured": 1,
        "Organization.DNSVerified": 1,
        "Organization.Activated": 1,
        "Organization.InvitationIssued": 2,
        "Invitation.Invited": 2,
        "Invitation.EmailSent": 2,
        "Organization.EmailSent": 1,  # the welcome mail of the one admin invitee
    }
)
# Two invitation mails and the admin's welcome mail, each sent once.
ONE_CLEAN_BOOTSTRAP_MAILS = 3


@pytest.fixture
def flows(pg_schema: str, temporal_client: Client, task_queue: str) -> Iterator[Flows]:
    app = FaultyApp(postgres_env(pg_schema), token_secret=TOKEN_SECRET)
    yield Flows(app=app, client=temporal_client, task_queue=task_queue)
    app.release()
    app.close()


def faulty(flows: Flows) -> FaultyApp:
    assert isinstance(flows.app, FaultyApp)
    return flows.app


async def test_the_same_bootstrap_started_twice_runs_once(flows: Flows) -> None:
    spec = bootstrap_input("twice-one")
    async with flows.worker():
        first, second = await asyncio.gather(
            start_bootstrap(flows.client, spec, flows.task_queue),
            start_bootstrap(flows.client, spec, flows.task_queue),
        )
        assert first.result_run_id == second.result_run_id
        result = await first.result()
        assert (await second.result()) == result
        # After it closed, the slug is never bootstrapped again.
        with pytest.raises(WorkflowAlreadyStartedError):
            await start_bootstrap(flows.client, spec, flows.task_queue)
    assert flows.event_counts() == ONE_CLEAN_BOOTSTRAP
    assert len(flows.mailer.sent) == ONE_CLEAN_BOOTSTRAP_MAILS


async def test_an_activity_that_committed_then_timed_out_is_retried_without_duplicates(
    flows: Flows,
) -> None:
    faulty(flows).hang("register_organization")
    faulty(flows).fail("invite", ConcurrencyError("lost the race"), after_commit=True)
    faulty(flows).fail("record_email_sent", ConcurrencyError("lost the race"), after_commit=True)
    spec = bootstrap_input("retry-one", activities=HANG_STEPS)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        result = await handle.result()
    assert flows.app.get_organization(result.organization_id).status == "active"
    assert flows.event_counts() == ONE_CLEAN_BOOTSTRAP
    # The mail whose recording was retried went out once: the retry saw it recorded.
    assert len(flows.mailer.sent) == ONE_CLEAN_BOOTSTRAP_MAILS
    registered = next(m for n, _, _, m in flows.events() if n == "Organization.Registered")
    assert registered["attempt"] == "1"
    assert faulty(flows).calls["register_organization"] == 2


async def test_a_worker_killed_mid_activity_is_replaced_and_the_bootstrap_completes(
    flows: Flows, pg_schema: str
) -> None:
    """Worker 1 commits the invitations, then dies before reporting; worker 2 finishes."""
    faulty(flows).hang("invite")
    spec = bootstrap_input("killed-one", activities=HANG_STEPS)
    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        assert await asyncio.to_thread(faulty(flows).hanging.wait, 30)
    # Worker 1 is gone (its hung thread is released only later, and reports nothing).
    second_app = OnboardingApplication(postgres_env(pg_schema), token_secret=TOKEN_SECRET)
    try:
        async with flows.worker(app=second_app):
            result = await handle.result()
    finally:
        faulty(flows).release()
        second_app.close()
    assert result.organization_id == organization_id("killed-one")
    assert flows.event_counts() == ONE_CLEAN_BOOTSTRAP
    assert len(flows.mailer.sent) == ONE_CLEAN_BOOTSTRAP_MAILS
