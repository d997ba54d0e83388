"""EmailDomainVerificationWorkflow on the real Temporal dev server, the real test BIND as
the customer's DNS: checked with back-off until the organization publishes its
challenge, then verified (and claimed); never published, the run fails typed and the
request stays pending; a domain another organization owns is refused for good."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from tests.servers.bind import BindServer
from tests.worker.flows import FAST_STEPS, Flows, sqlite_app

from a4c_domain import OnboardingApplication
from a4c_worker.providers.dns import Nameserver, ResolverTXTLookup
from a4c_worker.sso_client import request_email_domain, start_email_domain_verification
from a4c_worker.workflows.sso_models import EMAIL_DOMAIN_NOT_VERIFIED, EmailDomainVerificationInput


@pytest.fixture
async def flows(
    tmp_path: Path, temporal_client: Client, task_queue: str, bind_server: BindServer
) -> AsyncIterator[Flows]:
    app = sqlite_app(tmp_path)
    running = Flows(app=app, client=temporal_client, task_queue=task_queue)
    # The slot is typed as the in-memory double most tests use; this one asks BIND.
    running.txt = ResolverTXTLookup(  # type: ignore[assignment]
        [Nameserver(host=bind_server.host, port=bind_server.port)]
    )
    try:
        async with running.worker():
            yield running
    finally:
        app.close()


def organization(app: OnboardingApplication) -> uuid.UUID:
    slug = f"mail-{uuid.uuid4().hex[:8]}"
    return app.register_organization(name="Mail Org", slug=slug, org_type="provider").id


def check(org: uuid.UUID, domain: str, attempts: int = 8) -> EmailDomainVerificationInput:
    return EmailDomainVerificationInput(
        organization_id=org,
        domain=domain,
        check_attempts=attempts,
        first_check_interval_seconds=0.2,
        activities=FAST_STEPS,
    )


def customer_domain(bind: BindServer) -> str:
    return bind.fqdn(f"mail-{uuid.uuid4().hex[:8]}").rstrip(".")


async def test_the_domain_is_verified_once_the_challenge_shows(
    flows: Flows, bind_server: BindServer
) -> None:
    org = organization(flows.app)
    domain = customer_domain(bind_server)
    request = flows.app.request_email_domain_verification(organization_id=org, domain=domain)
    handle = await start_email_domain_verification(
        flows.client, check(org, domain), task_queue=flows.task_queue
    )
    joined = await start_email_domain_verification(
        flows.client, check(org, domain), task_queue=flows.task_queue
    )
    assert joined.result_run_id == handle.result_run_id  # a second start joins the first
    await asyncio.sleep(0.5)  # a check or two find nothing yet
    bind_server.add_record(request.record_name + ".", "TXT", f'"{request.record_value}"')
    outcome = await handle.result()
    assert (outcome.status, outcome.written, outcome.domain) == ("verified", True, domain)
    assert flows.app.get_email_domain_owner(domain) == org


async def test_a_challenge_never_published_fails_typed_and_stays_pending(
    flows: Flows, bind_server: BindServer
) -> None:
    org = organization(flows.app)
    domain = customer_domain(bind_server)
    flows.app.request_email_domain_verification(organization_id=org, domain=domain)
    handle = await start_email_domain_verification(
        flows.client, check(org, domain, attempts=2), task_queue=flows.task_queue
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == EMAIL_DOMAIN_NOT_VERIFIED
    assert flows.app.get_email_domain(org, domain).status == "pending"


async def test_a_domain_another_organization_owns_is_refused(
    flows: Flows, bind_server: BindServer
) -> None:
    first, second = organization(flows.app), organization(flows.app)
    domain = customer_domain(bind_server)
    for org in (first, second):
        request = flows.app.request_email_domain_verification(organization_id=org, domain=domain)
        bind_server.add_record(request.record_name + ".", "TXT", f'"{request.record_value}"')
    won = await start_email_domain_verification(
        flows.client, check(first, domain), task_queue=flows.task_queue
    )
    assert (await won.result()).status == "verified"
    lost = await start_email_domain_verification(
        flows.client, check(second, domain), task_queue=flows.task_queue
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await lost.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "EmailDomainTaken"
    assert flows.app.get_email_domain_owner(domain) == first


async def test_a_request_without_a_check_gives_the_challenge_and_stays_pending(
    flows: Flows, bind_server: BindServer
) -> None:
    org = organization(flows.app)
    domain = customer_domain(bind_server)
    first = await request_email_domain(flows.client, org, domain, task_queue=flows.task_queue)
    assert (first.status, first.written) == ("pending", True)
    again = await request_email_domain(flows.client, org, domain, task_queue=flows.task_queue)
    assert (again.status, again.written) == ("pending", False)  # the first challenge stands
    request = flows.app.get_email_domain(org, domain)
    # A check started without a request of its own finds the one made, and verifies it.
    bind_server.add_record(request.record_name + ".", "TXT", f'"{request.record_value}"')
    handle = await start_email_domain_verification(
        flows.client, check(org, domain), task_queue=flows.task_queue
    )
    assert (await handle.result()).status == "verified"
    assert flows.app.get_email_domain(org, domain).challenge == request.challenge
