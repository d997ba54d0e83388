"""Record an invitation accepted through its organization's own provider: ``python -m
tests.worker.histories.record_sso_accept <release>``.

A fresh dev server and a SQLite store in a temporary folder, as the other recorders; a
test OpenID provider served for the run as the organization's. The organization (a
fixed slug, so fixed ids) verified its invitees' e-mail domain and activated the
provider; its invitation refuses the dev sign-in (``SSORequired``), then a colleague's
sign-in at the provider (``IdentityMismatch``), then accepts the invitee's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from tests.servers.oidc import serve_provider
from tests.worker.flows import (
    Flows,
    bootstrap_input,
    cover_with_sso,
    provider_sign_in,
    sqlite_app,
)
from tests.worker.histories.recording import record_release
from tests.worker.test_invitation_workflow import token_of

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.email_domains import email_domain_of
from a4c_domain.identity import SignInIdentity
from a4c_sso.discovery import provider_policy
from a4c_worker.client import (
    accept_invitation,
    accept_invitation_with_sso,
    invitation_handle,
    start_bootstrap,
)
from a4c_worker.contracts import SignInCode

TASK_QUEUE = "a4c-record-sso-accept-histories"
PATHS = ("invitation_accepted_with_sso",)
CALLBACK = "http://127.0.0.1:9/sso/callback"  # never contacted: the recorder reads it


async def record(client: Client, scratch: Path) -> dict[str, WorkflowHistory]:
    app = sqlite_app(scratch)
    flows = Flows(app=app, client=client, task_queue=TASK_QUEUE)
    flows.sso_policy = provider_policy(production=False, allow_private=True)
    try:
        async with flows.worker():
            with serve_provider() as provider:
                relying = provider.register_client(CALLBACK)
                spec = bootstrap_input("history-sso-accept", invitees=1, domain=False)
                done = await (await start_bootstrap(client, spec, TASK_QUEUE)).result()
                inv = app.get_invitation(done.invitation_ids[0], ALL_ORGANIZATIONS)
                domain = email_domain_of(inv.email)
                cover_with_sso(app, inv.organization_id, domain, provider.issuer, relying)
                token = token_of(flows, inv.id)

                async def sign_in(email: str) -> SignInCode:
                    signed = await provider_sign_in(provider, relying, email)
                    return SignInCode.model_validate(signed.model_dump(exclude={"generation"}))

                dev = SignInIdentity(issuer=None, subject="dev:history", email=inv.email)
                for refused in (
                    accept_invitation(client, inv.id, token, "dev:history", dev),
                    accept_invitation_with_sso(
                        client, inv.id, token, await sign_in(f"colleague@{domain}")
                    ),
                ):
                    try:
                        await refused
                    except WorkflowUpdateFailedError:
                        pass
                    else:
                        raise AssertionError("the invitation accepted what it must refuse")
                await accept_invitation_with_sso(client, inv.id, token, await sign_in(inv.email))
                handle = invitation_handle(client, inv.id)
                await handle.result()
                return {PATHS[0]: await handle.fetch_history()}
    finally:
        app.close()


async def main() -> None:
    await record_release(__doc__.splitlines()[0], PATHS, record)


if __name__ == "__main__":
    asyncio.run(main())
