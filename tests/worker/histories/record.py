"""Record this release's workflow histories: ``python -m tests.worker.histories.record 0.3.0``.

Runs the paths that matter on a fresh Temporal dev server, with in-memory DNS and mail,
a SQLite event store in a temporary folder and the tests' fixed token secret, and writes
each execution's history to ``v<release>/<path>.json`` beside this file (one file per
run: a run that continued as new is followed to the run that ends). The slugs, e-mail
addresses and so the (uuid5) organization and invitation ids are fixed, so a new
recording differs from the last only in times, run ids and how parallel steps (the
bootstrap's invites and mails) interleave into workflow tasks; and the secret scan
(``tests/worker/test_recorded_histories_hold_no_secret.py``) can derive every token.

For a new release: bump the version, run this with it, commit the new folder. It refuses
to write into a folder that exists: the histories of released versions are never
re-recorded or deleted, since they stand for executions still running somewhere. While
a release is being made, a path added to it is recorded alone into its folder with
``--add PATH`` (the method's name below), which refuses to replace any file there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from uuid import UUID

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from tests.servers.temporal import start_dev_server
from tests.worker.flows import (
    FAST_STEPS,
    UNLIMITED_RESENDS,
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
    invite,
    resend_invitation,
    revoke_invitation,
    start_bootstrap,
    start_invitation,
)
from a4c_worker.contracts import Invitee
from a4c_worker.search_attributes import organization_search_attributes
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import InvitationInput, invitation_workflow_id

TASK_QUEUE = "a4c-record-histories"
# The lowest bound the input allows: a few resends continue the run as new.
CONTINUE_AFTER_EVENTS = 50
RESENDS_BEFORE_ACCEPT = 5

Save = Callable[[str, WorkflowHistory], None]


class Recorder:
    """Drives each path through the real worker and hands each run's history to ``save``."""

    def __init__(self, client: Client, folder: Path, save: Save) -> None:
        self.client = client
        self.app = sqlite_app(folder, FaultyApp)
        self.flows = Flows(app=self.app, client=client, task_queue=TASK_QUEUE)
        # A failed bootstrap mails the operators (0.5.0): their address is the worker's.
        self.flows.links = self.flows.links.model_copy(
            update={"provisioning_failed_mail_to": "operators@history.example.com"}
        )
        self.save = save

    PATHS = (
        "happy_bootstrap_and_its_invitations",
        "invitation_resent_then_accepted",
        "bootstrap_compensated",
        "bootstrap_domain_taken",
        "bootstrap_cancelled",
        "invitation_continued_as_new",
        "invitation_issued_by_its_workflow",
        "bootstrap_welcomed",
        "bootstrap_failed_mailed",
    )

    async def record(self, only: Sequence[str] = ()) -> None:
        """Every path in order, or only the ones named."""
        async with self.flows.worker():
            for path in only or self.PATHS:
                await getattr(self, path)()
        self.app.close()

    # --- the paths -------------------------------------------------------------------

    async def happy_bootstrap_and_its_invitations(self) -> None:
        """Happy bootstrap; its first invitation is accepted, its second revoked."""
        happy = await start_bootstrap(self.client, bootstrap_input("history-happy"), TASK_QUEUE)
        accepted_id, revoked_id = (await happy.result()).invitation_ids
        await self.save_bootstrap("bootstrap_happy", happy, fails=False)
        await self.idle(accepted_id)
        await accept_invitation(self.client, accepted_id, self.token_of(accepted_id), "user-h")
        await self.save_invitation("invitation_accepted", accepted_id)
        await self.idle(revoked_id)
        await revoke_invitation(self.client, revoked_id, "recorded revoke")
        await self.save_invitation("invitation_revoked", revoked_id)

    async def invitation_resent_then_accepted(self) -> None:
        """A new token generation: the proof check is fetched again (the on-resend patch)."""
        spec = bootstrap_input("history-resend", invitees=1, domain=False)
        (inv_id,) = (
            await (await start_bootstrap(self.client, spec, TASK_QUEUE)).result()
        ).invitation_ids
        await self.idle(inv_id)
        await resend_invitation(self.client, inv_id)
        await accept_invitation(self.client, inv_id, self.token_of(inv_id), "user-r")
        await self.save_invitation("invitation_resent_accepted", inv_id)

    async def bootstrap_compensated(self) -> None:
        """A failure after the invitations were issued: revoked, DNS removed, deactivated."""
        self.app.fail("activate", DNSNotVerified("recorded failure"))
        failing = await start_bootstrap(self.client, bootstrap_input("history-fail"), TASK_QUEUE)
        await self.save_bootstrap("bootstrap_compensated", failing, fails=True)

    async def bootstrap_domain_taken(self) -> None:
        """Refused at register (the domain is history-happy's): nothing to undo."""
        spec = bootstrap_input("history-taken").model_copy(
            update={"domain": f"history-happy.{ZONE}"}
        )
        taken = await start_bootstrap(self.client, spec, TASK_QUEUE)
        await self.save_bootstrap("bootstrap_domain_taken", taken, fails=True)

    async def bootstrap_cancelled(self) -> None:
        spec = bootstrap_input("history-cancel", propagation_wait_seconds=600)
        cancelled = await start_bootstrap(self.client, spec, TASK_QUEUE)
        await wait_for_step(cancelled, "propagation_wait")
        await cancelled.execute_update(OrganizationBootstrapWorkflow.request_cancel, "recorded")
        await self.save_bootstrap("bootstrap_cancelled", cancelled, fails=True)

    async def invitation_continued_as_new(self) -> None:
        """A standalone invitation with a low history bound: resends continue it as new."""
        org = self.app.register_organization(
            name="Org history-long", slug="history-long", org_type="partner"
        )
        inv = self.app.invite(
            organization_id=org.id, email="person0@history-long.example.com", role="viewer",
            first_name="Long", last_name="History",
        )  # fmt: skip
        spec = InvitationInput(
            invitation_id=inv.id,
            organization_name=org.name,
            activities=FAST_STEPS,
            history_events_before_continue=CONTINUE_AFTER_EVENTS,
            resends=UNLIMITED_RESENDS,
        )
        labels = organization_search_attributes(org.id, org.slug, org.tags)
        started = await start_invitation(self.client, spec, TASK_QUEUE, search_attributes=labels)
        first_run = started.result_run_id
        await self.idle(inv.id)
        for _ in range(RESENDS_BEFORE_ACCEPT):
            await resend_invitation(self.client, inv.id)
        await accept_invitation(self.client, inv.id, self.token_of(inv.id), "user-l")
        await invitation_handle(self.client, inv.id).result()
        chain = await self.runs(invitation_workflow_id(inv.id), first_run)
        if len(chain) < 2:
            raise RuntimeError("the invitation did not continue as new: lower the bound")
        for number, history in enumerate(chain, start=1):
            self.save(f"invitation_continued_as_new_run{number}", history)

    async def invitation_issued_by_its_workflow(self) -> None:
        """Issued by the workflow itself (update-with-start of ``issued``), then accepted."""
        org = self.app.register_organization(
            name="Org history-invite", slug="history-invite", org_type="partner"
        )
        invitee = Invitee(
            email="person0@history-invite.example.com", role="member",
            first_name="Issued", last_name="Byworkflow",
        )  # fmt: skip
        status = await invite(
            self.client,
            organization_id=org.id,
            organization_name=org.name,
            invitee=invitee,
            task_queue=TASK_QUEUE,
            organization_slug=org.slug,
            organization_tags=org.tags,
            activities=FAST_STEPS,
        )
        await self.idle(status.invitation_id)
        token = self.token_of(status.invitation_id)
        await accept_invitation(self.client, status.invitation_id, token, "user-i")
        await self.save_invitation("invitation_issued_accepted", status.invitation_id)

    async def bootstrap_welcomed(self) -> None:
        """0.5.0: the admin invitee is welcomed once the bootstrap completed; then accepts."""
        spec = bootstrap_input("history-welcome", domain=False)
        welcomed = await start_bootstrap(self.client, spec, TASK_QUEUE)
        admin_invitation, _ = (await welcomed.result()).invitation_ids
        await self.save_bootstrap("bootstrap_welcome_mail", welcomed, fails=False)
        await self.idle(admin_invitation)
        token = self.token_of(admin_invitation)
        await accept_invitation(self.client, admin_invitation, token, "user-w")
        await self.save_invitation("invitation_welcomed_accepted", admin_invitation)

    async def bootstrap_failed_mailed(self) -> None:
        """0.5.0: a failure after the invitations were issued, undone, then mailed to the
        operators (the worker's configured address)."""
        self.app.fail("activate", DNSNotVerified("recorded failure"))
        spec = bootstrap_input("history-mailfail")
        failing = await start_bootstrap(self.client, spec, TASK_QUEUE)
        await self.save_bootstrap("bootstrap_provisioning_failed_mail", failing, fails=True)

    # --- helpers ---------------------------------------------------------------------

    async def runs(self, workflow_id: str, run_id: str | None = None) -> list[WorkflowHistory]:
        """The histories of a workflow's runs, from ``run_id`` through continue-as-new."""
        out: list[WorkflowHistory] = []
        while True:
            handle = self.client.get_workflow_handle(workflow_id, run_id=run_id)
            history = await handle.fetch_history()
            out.append(history)
            last = history.events[-1]
            if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
                return out
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id

    async def save_invitation(self, name: str, inv_id: UUID) -> None:
        await invitation_handle(self.client, inv_id).result()
        (history,) = await self.runs(invitation_workflow_id(inv_id))
        self.save(name, history)

    async def save_bootstrap(self, name: str, handle: BootstrapHandle, *, fails: bool) -> None:
        if fails:
            with contextlib.suppress(WorkflowFailureError):
                await handle.result()
        else:
            await handle.result()
        self.save(name, await handle.fetch_history())

    async def idle(self, inv_id: UUID) -> None:
        """Wait until the invitation waits for its deadline (its proof check fetched).

        An update sent earlier would run in the first activation, before ``run``: a
        valid path too, but recording it would depend on timing.
        """
        handle = invitation_handle(self.client, inv_id)
        for _ in range(200):
            history = await handle.fetch_history()
            if any(event.HasField("timer_started_event_attributes") for event in history.events):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"invitation {inv_id} never started waiting")

    def token_of(self, inv_id: UUID) -> str:
        """The token in the last mail with a link the invitee received (a welcome mail
        has none)."""
        invitation = self.app.get_invitation(inv_id, ALL_ORGANIZATIONS)
        texts = [m.text for m in self.flows.mailer.sent_to(invitation.email) if "?token=" in m.text]
        return texts[-1].split("?token=", 1)[1].split()[0]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release", help="the version being released, e.g. 0.3.0")
    parser.add_argument(
        "--add",
        action="append",
        choices=Recorder.PATHS,
        default=[],
        metavar="PATH",
        help="record only this path, into the release's folder (repeatable)",
    )
    args = parser.parse_args()
    folder = release_folder(args.release)
    if folder.exists() and not args.add:
        raise SystemExit(f"{folder} exists: a release's histories are never re-recorded")

    recorded: dict[str, WorkflowHistory] = {}
    env = await start_dev_server()  # the tests' server: search attributes registered
    try:
        with tempfile.TemporaryDirectory() as scratch:
            await Recorder(env.client, Path(scratch), recorded.__setitem__).record(args.add)
    finally:
        await env.shutdown()
    if taken := sorted(name for name in recorded if (folder / f"{name}.json").exists()):
        raise SystemExit(f"not replacing recorded histories: {', '.join(taken)}")
    # Written only once every path ran: a failed recording leaves no half folder behind.
    folder.mkdir(exist_ok=bool(args.add))
    for name, history in recorded.items():
        (folder / f"{name}.json").write_text(history.to_json())
        print(f"recorded {folder.name}/{name}.json ({len(history.events)} events)")


if __name__ == "__main__":
    asyncio.run(main())
