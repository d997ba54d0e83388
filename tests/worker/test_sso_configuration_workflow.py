"""SSOConfigurationWorkflow on the real Temporal dev server, with a second test OpenID
provider (keys of its own) as the organization's: the provider is checked, the
configuration tried, a real code-flow sign-in through the provider verified and sent as
the test, then the configuration is in force. A provider that lies about its issuer is
refused with that type and nothing is recorded; no test in time, a failed test and a
cancellation abandon the new configuration and leave the one in force; an update for
another configuration is refused before it reaches history."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError, CancelledError
from tests.servers.oidc import OIDCProvider, serve_provider
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, SSO_KEYS, Flows, provider_sign_in, sso_flows

from a4c_domain import OnboardingApplication
from a4c_domain.errors import SSOConnectionNotFound
from a4c_worker.sso_client import (
    SSOConfigurationRunning,
    SSOSignInFailed,
    SSOTestRefused,
    deactivate_sso,
    report_sso_test,
    sso_configuration_progress,
    start_sso_configuration,
)
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_models import (
    SSO_TEST_FAILED,
    SSO_TEST_REFUSED,
    SSO_TEST_TIMED_OUT,
    SSOConfigurationInput,
    SSOConfigurationProgress,
    SSODeactivationInput,
    SSOTestFailed,
    SSOTestSignIn,
)

CALLBACK = "http://127.0.0.1:9/sso/test/callback"  # never contacted: the test reads it


@pytest.fixture
async def flows(tmp_path: Path, temporal_client: Client, task_queue: str) -> AsyncIterator[Flows]:
    async with sso_flows(tmp_path, temporal_client, task_queue) as running:
        yield running


def organization(app: OnboardingApplication) -> uuid.UUID:
    slug = f"sso-{uuid.uuid4().hex[:8]}"
    return app.register_organization(name="SSO Org", slug=slug, org_type="provider").id


async def start(
    flows: Flows,
    org: uuid.UUID,
    issuer: str,
    client_id: str = "a4c",
    secret: str = "not-a-registered-client",
    **extra: Any,
) -> WorkflowHandle[Any, SSOConfigurationProgress]:
    spec = SSOConfigurationInput(
        organization_id=org,
        issuer=issuer,
        client_id=client_id,
        client_secret=SSO_KEYS.seal(secret),  # as the API seals it
        activities=FAST_STEPS,
        **extra,
    )
    return await start_sso_configuration(flows.client, spec, task_queue=flows.task_queue)


async def waiting_for_test(
    handle: WorkflowHandle[Any, SSOConfigurationProgress],
) -> SSOConfigurationProgress:
    async def waiting() -> bool:
        progress = await handle.query(SSOConfigurationWorkflow.progress)
        return progress.state == "waiting_for_test"

    await wait_for_async(waiting, what="the test sign-in to be awaited")
    return await handle.query(SSOConfigurationWorkflow.progress)


async def failure_type(handle: WorkflowHandle[Any, Any]) -> str | None:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    return cause.type if isinstance(cause, ApplicationError) else None


async def test_a_provider_is_checked_tried_tested_through_a_real_sign_in_and_activated(
    flows: Flows, own_provider: OIDCProvider, oidc_provider: OIDCProvider
) -> None:
    assert own_provider.kid != oidc_provider.kid  # the organization's, not the platform's
    org = organization(flows.app)
    client = own_provider.register_client(CALLBACK)
    handle = await start(
        flows,
        org,
        own_provider.issuer,
        client_id=client.client_id,
        secret=client.client_secret,
        admins=["owner@acme.example", "admin@acme.example"],
    )
    progress = await waiting_for_test(handle)
    assert progress.generation == 1
    assert progress.authorization_endpoint == own_provider.url("/authorize")
    assert progress.signing_algorithms == ["RS256"]
    pending = flows.app.get_sso_connection(org)
    assert (pending.status, pending.pending_issuer) == ("inactive", own_provider.issuer)

    # What the a4c test page does: the code flow at the organization's provider, then
    # the code and PKCE verifier to the workflow, whose worker exchanges and verifies.
    # A sign-in that proves nothing (a code already spent, another nonce) fails the
    # update with its type, and the run keeps waiting.
    first = await provider_sign_in(own_provider, client, "Ada@Acme.Example")
    with pytest.raises(SSOSignInFailed) as bad:
        await report_sso_test(
            flows.client, org, first.model_copy(update={"nonce": "not-the-sign-ins"})
        )
    assert bad.value.type == "InvalidIDToken"
    with pytest.raises(SSOSignInFailed) as spent:
        await report_sso_test(flows.client, org, first)  # its code was spent above
    assert spent.value.type == "CodeRejected"
    assert (await handle.query(SSOConfigurationWorkflow.progress)).state == "waiting_for_test"
    result = await provider_sign_in(own_provider, client, "Ada@Acme.Example")
    done = await handle.execute_update(SSOConfigurationWorkflow.test_sign_in, result)
    assert done.state == "active"
    assert (await handle.result()).state == "active"
    # Each admin is told, once for this activation.
    mails = [m for m in flows.mailer.sent if "Single sign-on is active" in m.subject]
    assert sorted(m.to for m in mails) == ["admin@acme.example", "owner@acme.example"]
    assert all(".1@" in (m.message_id or "") for m in mails)  # this activation's messages
    active = flows.app.get_sso_connection(org)
    assert (active.status, active.active_issuer, active.active_client_id) == (
        "active",
        own_provider.issuer,
        client.client_id,
    )
    assert active.tested_email_domain is None  # kept with the pending one, now in force
    # The domain keeps the subject and the address's domain only, never the address; the
    # history never holds the client secret itself (sealed in the input), and what it
    # holds of the sign-in (code, verifier, claims) the payload codec encrypts.
    stored = [
        n.state.decode(errors="replace")
        for n in flows.app.recorder.select_notifications(start=1, limit=10_000)
        if "SSOConnection" in n.topic
    ]
    assert stored and not any("ada@acme.example" in s.lower() for s in stored)
    assert client.client_secret not in (await handle.fetch_history()).to_json()

    # Deactivated: none in force; deactivating again writes nothing.
    off = await deactivate_sso(
        flows.client,
        SSODeactivationInput(organization_id=org, reason="moving providers", activities=FAST_STEPS),
        task_queue=flows.task_queue,
    )
    assert (off.status, off.written) == ("inactive", True)
    again = await deactivate_sso(
        flows.client,
        SSODeactivationInput(organization_id=org, reason="again", activities=FAST_STEPS),
        task_queue=flows.task_queue,
    )
    assert (again.status, again.written) == ("inactive", False)
    assert flows.app.get_sso_connection(org).deactivation_reason == "moving providers"


async def test_a_provider_lying_about_its_issuer_is_refused_and_nothing_is_recorded(
    flows: Flows,
) -> None:
    org = organization(flows.app)
    with serve_provider(discovery_overrides={"issuer": "https://accounts.example.com"}) as liar:
        handle = await start(flows, org, liar.issuer)
        assert await failure_type(handle) == "IssuerMismatch"
    progress = await handle.query(SSOConfigurationWorkflow.progress)
    assert progress.state == "refused" and "accounts.example.com" in (progress.error or "")
    with pytest.raises(SSOConnectionNotFound):
        flows.app.get_sso_connection(org)


async def test_no_test_in_time_abandons_the_new_configuration_and_the_old_one_stays(
    flows: Flows, own_provider: OIDCProvider
) -> None:
    org = organization(flows.app)
    app = flows.app
    app.configure_sso(
        organization_id=org,
        issuer="https://old.example.com",
        client_id="old",
        client_secret=SSO_KEYS.seal("old"),
    )
    app.record_sso_test(organization_id=org, generation=1, subject="s", email_domain="a.example")
    app.activate_sso(organization_id=org, generation=1)
    handle = await start(flows, org, own_provider.issuer, test_timeout_seconds=1)
    assert await failure_type(handle) == SSO_TEST_TIMED_OUT
    kept = app.get_sso_connection(org)
    assert (kept.status, kept.active_issuer, kept.pending_generation) == (
        "active",
        "https://old.example.com",
        None,
    )
    assert kept.abandon_reason == "no test sign-in within 1 s"


async def test_a_failed_test_abandons_and_a_second_update_is_refused(
    flows: Flows, own_provider: OIDCProvider
) -> None:
    org = organization(flows.app)
    handle = await start(flows, org, own_provider.issuer)
    await waiting_for_test(handle)
    events_before = len((await handle.fetch_history()).events)
    refusals = [
        handle.execute_update(
            SSOConfigurationWorkflow.test_sign_in,
            SSOTestSignIn(
                generation=2, code="c", code_verifier="v" * 43, redirect_uri=CALLBACK, nonce="n"
            ),
        ),
        handle.execute_update(
            SSOConfigurationWorkflow.test_failed,
            SSOTestFailed(generation=7, reason="not this one"),
        ),
    ]
    for refusal in refusals:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await refusal
        assert isinstance(refused.value.cause, ApplicationError)
        assert refused.value.cause.type == SSO_TEST_REFUSED
    # A refused update is not in history (the validator ran before it was accepted).
    assert len((await handle.fetch_history()).events) == events_before
    done = await handle.execute_update(
        SSOConfigurationWorkflow.test_failed,
        SSOTestFailed(generation=1, reason="the provider said access_denied"),
    )
    assert done.state == "abandoned"
    assert await failure_type(handle) == SSO_TEST_FAILED
    connection = flows.app.get_sso_connection(org)
    assert connection.pending_generation is None and connection.status == "inactive"
    assert connection.abandon_reason == "test sign-in failed: the provider said access_denied"


async def test_a_cancellation_abandons_the_new_configuration(
    flows: Flows, own_provider: OIDCProvider
) -> None:
    org = organization(flows.app)
    handle = await start(flows, org, own_provider.issuer)
    await waiting_for_test(handle)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    assert isinstance(failed.value.cause, CancelledError)

    async def abandoned() -> bool:
        view = await asyncio.to_thread(flows.app.get_sso_connection, org)
        return view.pending_generation is None

    await wait_for_async(abandoned, what="the configuration to be abandoned")
    assert flows.app.get_sso_connection(org).abandon_reason == "cancelled"


async def test_one_configuration_runs_at_a_time_and_reports_it_does_not_await_are_refused(
    flows: Flows, own_provider: OIDCProvider
) -> None:
    org = organization(flows.app)
    client = own_provider.register_client(CALLBACK)
    assert await sso_configuration_progress(flows.client, org) is None
    handle = await start(
        flows, org, own_provider.issuer, client_id=client.client_id, secret=client.client_secret
    )
    await waiting_for_test(handle)
    with pytest.raises(SSOConfigurationRunning):
        await start(flows, org, own_provider.issuer, client_id="another")
    with pytest.raises(SSOTestRefused, match="not the one awaiting its test"):
        await report_sso_test(
            flows.client, org, await provider_sign_in(own_provider, client, "a@a.example", 5)
        )
    done = await report_sso_test(
        flows.client, org, await provider_sign_in(own_provider, client, "a@a.example")
    )
    assert done.state == "active"
    assert (await sso_configuration_progress(flows.client, org)) == done
    with pytest.raises(SSOTestRefused):
        await report_sso_test(flows.client, org, SSOTestFailed(generation=1, reason="late"))
    # Once it ended, the organization may configure again: the next generation.
    again = await start(flows, org, own_provider.issuer, client_id="another")
    assert (await waiting_for_test(again)).generation == 2
    assert flows.app.get_sso_connection(org).active_generation == 1
