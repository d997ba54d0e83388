"""Record this release's workflow histories: ``python -m tests.worker.histories.record 0.3.0``.

Runs the paths that matter on a fresh Temporal dev server, with in-memory DNS and mail,
a SQLite event store in a temporary folder and the tests' fixed token secret, and writes
each execution's history to ``v<release>/<path>.json`` beside this file (one file per
run: a run that continued as new is followed to the run that ends). The slugs, e-mail
addresses and so the (uuid5) organization and invitation ids are fixed, so a new
recording differs from the last only in times and run ids, and the secret scan
(``tests/worker/test_recorded_histories_hold_no_secret.py``) can derive every token.

For a new release: bump the version, run this with it, commit the new folder. It refuses
to write into a folder that exists: the histories of released versions are never
re-recorded or deleted, since they stand for executions still running somewhere.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import UUID

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from tests.servers.temporal import find_temporal_cli
from tests.worker.flows import (
    FAST_STEPS,
    ZONE,
    FaultyApp,
    Flows,
    bootstrap_input,
    sqlite_app,
    wait_for_step,
)
from tests.worker.histories import release_folder

from a4c_domain import ALL_ORGANIZATIONS
from a4c_domain.errors import DNSNotVerified
from a4c_worker.client import (
    BootstrapHandle,
    accept_invitation,
    invitation_handle,
    resend_invitation,
    revoke_invitation,
    start_bootstrap,
    start_invitation,
)
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import InvitationInput, invitation_workflow_id

TASK_QUEUE = "a4c-record-histories"
# The lowest bound the input allows: a few resends continue the run as new.
CONTINUE_AFTER_EVENTS = 50
RESENDS_BEFORE_ACCEPT = 5

Save = Callable[[str, WorkflowHistory], None]


async def record(client: Client, folder: Path, save: Save) -> None:
    app = sqlite_app(folder, FaultyApp)
    flows = Flows(app=app, client=client, task_queue=TASK_QUEUE)

    async def runs(workflow_id: str, run_id: str | None = None) -> list[WorkflowHistory]:
        """The histories of a workflow's runs, from ``run_id`` through continue-as-new."""
        out: list[WorkflowHistory] = []
        while True:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
            out.append(history)
            last = history.events[-1]
            if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
                return out
            attributes = last.workflow_execution_continued_as_new_event_attributes
            run_id = attributes.new_execution_run_id

    async def save_invitation(name: str, inv_id: UUID) -> None:
        await invitation_handle(client, inv_id).result()
        (history,) = await runs(invitation_workflow_id(inv_id))
        save(name, history)

    async def save_bootstrap(name: str, handle: BootstrapHandle, *, fails: bool) -> None:
        if fails:
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        else:
            await handle.result()
        save(name, await handle.fetch_history())

    async def idle(inv_id: UUID) -> None:
        """Wait until the invitation waits for its deadline (its proof check fetched).

        An update sent earlier would run in the first activation, before ``run``: a
        valid path too, but recording it depends on timing.
        """
        handle = invitation_handle(client, inv_id)
        for _ in range(200):
            history = await handle.fetch_history()
            if any(event.HasField("timer_started_event_attributes") for event in history.events):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"invitation {inv_id} never started waiting")

    def token_of(inv_id: UUID) -> str:
        """The token in the last mail the invitee received."""
        invitation = app.get_invitation(inv_id, ALL_ORGANIZATIONS)
        text = flows.mailer.sent_to(invitation.email)[-1].text
        return text.split("?token=", 1)[1].split()[0]

    async with flows.worker():
        # Happy bootstrap; its first invitation is accepted, its second revoked.
        happy = await start_bootstrap(client, bootstrap_input("history-happy"), TASK_QUEUE)
        accepted_id, revoked_id = (await happy.result()).invitation_ids
        await save_bootstrap("bootstrap_happy", happy, fails=False)
        await idle(accepted_id)
        await accept_invitation(client, accepted_id, token_of(accepted_id), "user-h")
        await save_invitation("invitation_accepted", accepted_id)
        await idle(revoked_id)
        await revoke_invitation(client, revoked_id, "recorded revoke")
        await save_invitation("invitation_revoked", revoked_id)

        # Resent (a new token generation, the proof check fetched again), then accepted.
        resent = await start_bootstrap(
            client, bootstrap_input("history-resend", invitees=1, domain=False), TASK_QUEUE
        )
        (resent_id,) = (await resent.result()).invitation_ids
        await idle(resent_id)
        await resend_invitation(client, resent_id)
        await accept_invitation(client, resent_id, token_of(resent_id), "user-r")
        await save_invitation("invitation_resent_accepted", resent_id)

        # A failure after the invitations were issued: revoked, DNS removed, deactivated.
        app.fail("activate", DNSNotVerified("recorded failure"))
        failing = await start_bootstrap(client, bootstrap_input("history-fail"), TASK_QUEUE)
        await save_bootstrap("bootstrap_compensated", failing, fails=True)

        # Refused at register: the domain belongs to history-happy. Nothing to undo.
        taken = bootstrap_input("history-taken").model_copy(
            update={"domain": f"history-happy.{ZONE}"}
        )
        await save_bootstrap(
            "bootstrap_domain_taken", await start_bootstrap(client, taken, TASK_QUEUE), fails=True
        )

        spec = bootstrap_input("history-cancel", propagation_wait_seconds=600)
        cancelled = await start_bootstrap(client, spec, TASK_QUEUE)
        await wait_for_step(cancelled, "propagation_wait")
        await cancelled.execute_update(OrganizationBootstrapWorkflow.request_cancel, "recorded")
        await save_bootstrap("bootstrap_cancelled", cancelled, fails=True)

        await record_continued_as_new(flows, runs, save, idle, token_of)
    app.close()


async def record_continued_as_new(
    flows: Flows,
    runs: Callable[[str, str | None], Awaitable[list[WorkflowHistory]]],
    save: Save,
    idle: Callable[[UUID], Awaitable[None]],
    token_of: Callable[[UUID], str],
) -> None:
    """A standalone invitation with a low history bound: resends continue it as new."""
    app = flows.app
    org = app.register_organization(
        name="Org history-long", slug="history-long", org_type="partner"
    )
    inv = app.invite(
        organization_id=org.id, email="person0@history-long.example.com", role="viewer",
        first_name="Long", last_name="History",
    )  # fmt: skip
    spec = InvitationInput(
        invitation_id=inv.id,
        organization_name=org.name,
        activities=FAST_STEPS,
        history_events_before_continue=CONTINUE_AFTER_EVENTS,
    )
    first_run = (await start_invitation(flows.client, spec, flows.task_queue)).result_run_id
    await idle(inv.id)
    for _ in range(RESENDS_BEFORE_ACCEPT):
        await resend_invitation(flows.client, inv.id)
    await accept_invitation(flows.client, inv.id, token_of(inv.id), "user-l")
    await invitation_handle(flows.client, inv.id).result()
    chain = await runs(invitation_workflow_id(inv.id), first_run)
    if len(chain) < 2:
        raise RuntimeError("the invitation did not continue as new: lower the bound")
    for number, history in enumerate(chain, start=1):
        save(f"invitation_continued_as_new_run{number}", history)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", help="the version being released, e.g. 0.3.0")
    folder = release_folder(parser.parse_args().release)
    if folder.exists():
        raise SystemExit(f"{folder} exists: a release's histories are never re-recorded")

    recorded: dict[str, WorkflowHistory] = {}
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER, dev_server_existing_path=find_temporal_cli()
    )
    try:
        with tempfile.TemporaryDirectory() as scratch:
            await record(env.client, Path(scratch), recorded.__setitem__)
    finally:
        await env.shutdown()
    # Written only once every path ran: a failed recording leaves no half folder behind.
    folder.mkdir()
    for name, history in recorded.items():
        (folder / f"{name}.json").write_text(history.to_json())
        print(f"recorded {folder.name}/{name}.json ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
