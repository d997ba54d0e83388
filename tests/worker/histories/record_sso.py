"""Record the single sign-on workflows' histories: ``python -m
tests.worker.histories.record_sso <release>``.

Like :mod:`tests.worker.histories.record_webhooks` (a fresh dev server, a SQLite store in
a temporary folder), with test OpenID providers served for the run as the
organization's: a configuration tested and activated, one whose provider lies about its
issuer (refused), one whose test never comes (abandoned at its timeout); and an e-mail
domain verified once its challenge shows (in the in-memory TXT table). The
organizations' slugs, so their ids and the workflow ids, are fixed. Every path is run;
only the files missing are written (those that exist are never replaced).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any
from uuid import UUID

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle, WorkflowHistory
from tests.servers.oidc import serve_provider
from tests.support import wait_for_async
from tests.worker.flows import FAST_STEPS, SSO_KEYS, Flows, provider_sign_in, sqlite_app
from tests.worker.histories.recording import record_release

from a4c_sso.discovery import provider_policy
from a4c_worker.workflows.email_domain import EmailDomainVerificationWorkflow
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_deactivation import SSODeactivationWorkflow
from a4c_worker.workflows.sso_models import (
    EmailDomainVerificationInput,
    SSOConfigurationInput,
    SSOConfigurationProgress,
    SSODeactivationInput,
    email_domain_workflow_id,
    sso_configuration_workflow_id,
    sso_deactivation_workflow_id,
)

TASK_QUEUE = "a4c-record-sso-histories"
PATHS = (
    "sso_configuration_activated",
    "sso_configuration_refused",
    "sso_configuration_timed_out",
    "email_domain_verified",
    "sso_deactivated",
)
CALLBACK = "http://127.0.0.1:9/sso/callback"  # never contacted: the recorder reads it


async def record(client: Client, scratch: Path) -> dict[str, WorkflowHistory]:
    app = sqlite_app(scratch)
    flows = Flows(app=app, client=client, task_queue=TASK_QUEUE)
    flows.sso_policy = provider_policy(production=False, allow_private=True)

    async def start(
        slug: str,
        issuer: str,
        client_id: str | None = None,
        secret: str = "unregistered",
        **extra: Any,
    ) -> WorkflowHandle[Any, SSOConfigurationProgress]:
        org = app.register_organization(name=f"Org {slug}", slug=slug, org_type="provider")
        spec = SSOConfigurationInput(
            organization_id=org.id,
            issuer=issuer,
            client_id=client_id or f"{slug}-client",
            client_secret=SSO_KEYS.seal(secret),
            admins=[f"admin@{slug}.example.com"],
            activities=FAST_STEPS,
            **extra,
        )
        return await client.start_workflow(
            SSOConfigurationWorkflow.run,
            spec,
            id=sso_configuration_workflow_id(org.id),
            task_queue=TASK_QUEUE,
        )

    async def ended(handle: WorkflowHandle[Any, SSOConfigurationProgress]) -> WorkflowHistory:
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        return await handle.fetch_history()

    recorded: dict[str, WorkflowHistory] = {}
    try:
        async with flows.worker():
            with serve_provider() as provider:
                relying = provider.register_client(CALLBACK)
                handle = await start(
                    "history-sso", provider.issuer, relying.client_id, relying.client_secret
                )

                async def waiting() -> bool:
                    progress = await handle.query(SSOConfigurationWorkflow.progress)
                    return progress.state == "waiting_for_test"

                await wait_for_async(waiting, what="the test sign-in to be awaited")
                signed_in = await provider_sign_in(
                    provider, relying, "admin@history-sso.example.com"
                )
                await handle.execute_update(SSOConfigurationWorkflow.test_sign_in, signed_in)
                recorded["sso_configuration_activated"] = await ended(handle)
                handle_org = (await handle.query(SSOConfigurationWorkflow.progress)).organization_id
                handle = await start("history-sso-late", provider.issuer, test_timeout_seconds=1)
                recorded["sso_configuration_timed_out"] = await ended(handle)
            lying = {"issuer": "https://accounts.history.example.com"}
            with serve_provider(discovery_overrides=lying) as liar:
                handle = await start("history-sso-liar", liar.issuer)
                recorded["sso_configuration_refused"] = await ended(handle)
            recorded["email_domain_verified"] = await verify_email_domain(flows)
            recorded["sso_deactivated"] = await deactivate(flows, handle_org)
    finally:
        app.close()
    return recorded


async def verify_email_domain(flows: Flows) -> WorkflowHistory:
    slug = "history-mail"
    org = flows.app.register_organization(name=f"Org {slug}", slug=slug, org_type="provider")
    domain = "history-mail.example.com"
    handle = await flows.client.start_workflow(
        EmailDomainVerificationWorkflow.run,
        EmailDomainVerificationInput(
            organization_id=org.id,
            domain=domain,
            check_attempts=10,
            first_check_interval_seconds=0.2,
            activities=FAST_STEPS,
        ),
        id=email_domain_workflow_id(org.id, domain),
        task_queue=TASK_QUEUE,
    )
    await asyncio.sleep(0.5)  # requested, and a check or two find nothing yet
    request = flows.app.get_email_domain(org.id, domain)
    flows.txt.records[request.record_name] = [request.record_value]
    await handle.result()
    return await handle.fetch_history()


async def deactivate(flows: Flows, organization_id: UUID) -> WorkflowHistory:
    """The organization whose configuration was activated ends its single sign-on."""
    handle = await flows.client.start_workflow(
        SSODeactivationWorkflow.run,
        SSODeactivationInput(
            organization_id=organization_id, reason="moving providers", activities=FAST_STEPS
        ),
        id=sso_deactivation_workflow_id(organization_id),
        task_queue=TASK_QUEUE,
    )
    await handle.result()
    return await handle.fetch_history()


async def main() -> None:
    await record_release(__doc__.splitlines()[0], PATHS, record)


if __name__ == "__main__":
    asyncio.run(main())
