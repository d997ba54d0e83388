"""A SIGKILLed worker strands its work only briefly: the other worker takes it over.

Two real ``a4c-worker run`` processes (development mode, SMTP provider, PostgreSQL
store) on one dev server and task queue. Worker A alone runs two bootstraps until their
invitation mails are in flight: the SMTP server holds every DATA command it gets. Worker
B starts; A is SIGKILLed; the SMTP server lets mail through again; and a re-send is asked
of an invitation whose workflow A had cached (its sticky queue is A's).

What bounds the wait (docs/workflows.md, "When a worker dies"): an activity of a dead
worker is retried once its heartbeats stop for the heartbeat timeout, and a workflow
task or update meant for its cache moves to the task queue after the sticky queue's
schedule-to-start timeout. Before both existed, the mails waited out their 30 s
start-to-close timeout and every workflow task A had cached 10 s more.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from aiosmtpd.controller import Controller
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from tests.support import free_port, wait_for_async
from tests.worker.flows import bootstrap_input
from tests.worker.test_cli import WorkerProcess, start_worker, stop_worker, worker_env

from a4c_domain import organization_id
from a4c_worker.client import bootstrap_handle, resend_invitation, start_bootstrap
from a4c_worker.workflows.models import StepPolicy, invitation_workflow_id

# What a bootstrap's mail waits at most once its worker is gone: the heartbeat timeout
# (5 s), the first retry interval (1 s), the sticky queue's timeout (3 s) for the
# workflow task after it, plus generous slack for a busy 2-core machine. Waiting out the
# 30 s start-to-close timeout, as before, exceeds it.
MAIL_RECOVERY_BOUND = 20.0
# An update to a workflow the dead worker had cached: the sticky queue's timeout (3 s),
# then the update's three activities on the live worker, and 5 s of slack. The SDK's
# default sticky timeout (10 s) alone exceeds it.
UPDATE_RECOVERY_BOUND = 8.0
# Production's step policy (30 s start-to-close): what the old timeouts stranded.
PRODUCTION_STEPS = StepPolicy()
# How long after the kill an update is asked for (see its use).
KILL_NOTICED = 1.0
# A workflow task handed to a worker that then died: Temporal's workflow task timeout
# (10 s by default) and slack.
TASK_RECOVERY_BOUND = 25.0
T = TypeVar("T")


@dataclass
class HoldingHandler:
    """aiosmtpd handler that keeps mail, or, between :meth:`hold` and :meth:`release`,
    holds each DATA until released and then answers 421 (try later): the sender's
    attempt stays in flight as long as the test wants, and a held message is never
    delivered."""

    holding: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    held: int = 0
    delivered: list[EmailMessage] = field(default_factory=list)

    def hold(self) -> None:
        self.released.clear()
        self.holding = True

    def release(self) -> None:
        self.holding = False
        self.released.set()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.holding:
            self.held += 1
            await asyncio.to_thread(self.released.wait, 120)
            return "421 4.3.0 held by the test, try later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.delivered.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.delivered if str(m["To"]).lower() == address.lower()]

    def invitation_mails(self, address: str) -> list[EmailMessage]:
        """The mails with a link (not the welcome mail an admin invitee also gets)."""
        kinds = ("<invitation.", "<reminder.")
        return [m for m in self.to(address) if str(m["Message-ID"]).strip().startswith(kinds)]


@pytest.fixture
def holding_smtp() -> Iterator[tuple[HoldingHandler, int]]:
    handler = HoldingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release()
        controller.stop()


def topic_counts(conninfo: str, schema: str, originator: uuid.UUID) -> dict[str, int]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            f'SELECT topic, count(*) FROM "{schema}".a4c_events '
            "WHERE originator_id = %s GROUP BY topic",
            (originator,),
        ).fetchall()
    return {topic.rsplit(".", 1)[-1]: n for topic, n in rows}


async def timed(awaitable: Awaitable[T], since: float) -> tuple[float, T]:
    result = await awaitable
    return time.monotonic() - since, result


async def timeline(client: Client, invitation_id: uuid.UUID) -> list[str]:
    """The invitation workflow's history as "time event-type" lines (a failure's story)."""
    history = await client.get_workflow_handle(
        invitation_workflow_id(invitation_id)
    ).fetch_history()
    return [
        f"{e.event_time.ToDatetime().time()} {EventType.Name(e.event_type)}" for e in history.events
    ]


def smtp_worker_env(
    temporal_env: WorkflowEnvironment, schema: str, smtp_port: int
) -> dict[str, str]:
    """Development mode, mail through the test's SMTP server, the store in ``schema``."""
    return worker_env(
        temporal_env,
        schema=schema,
        WORKFLOW_MODE="development",
        EMAIL_PROVIDER="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_port),
        SMTP_SECURITY="none",
        SMTP_FROM="a4c@mail.a4c.test",
    )


async def test_a_killed_workers_mails_and_updates_finish_on_the_other_worker(
    temporal_env: WorkflowEnvironment,
    pg_server: str,
    pg_schema: str,
    holding_smtp: tuple[HoldingHandler, int],
    tmp_path: Path,
) -> None:
    smtp, smtp_port = holding_smtp
    client = temporal_env.client
    env = smtp_worker_env(temporal_env, pg_schema, smtp_port)
    queue = env["TEMPORAL_TASK_QUEUE"]
    run = uuid.uuid4().hex[:6]
    workers: list[WorkerProcess] = [start_worker(env, tmp_path / "a.log")]
    try:
        # An invitation whose workflow worker A runs, and so has cached.
        cached = bootstrap_input(f"dw-cached-{run}", invitees=1, domain=False)
        first = await start_bootstrap(client, cached, queue)
        cached_invitation = (await first.result()).invitation_ids[0]

        # Two bootstraps whose mails are in flight on A (the SMTP server holds them).
        smtp.hold()
        stranded = [
            bootstrap_input(f"dw-{i}-{run}", invitees=1, domain=False, activities=PRODUCTION_STEPS)
            for i in range(2)
        ]
        for spec in stranded:
            await start_bootstrap(client, spec, queue)
        await wait_for_async(lambda: asyncio.sleep(0, smtp.held >= 2), what="2 mails held")

        workers.append(start_worker(env | {"HEALTH_PORT": str(free_port())}, tmp_path / "b.log"))
        workers[0].process.send_signal(signal.SIGKILL)
        workers[0].process.wait(timeout=10)
        killed = time.monotonic()
        smtp.release()
        boots = asyncio.gather(
            *(timed(bootstrap_handle(client, s.slug).result(), killed) for s in stranded)
        )
        # An update reaching the server in the very instant of the kill may be handed to
        # the dead worker's poll before the server notices it closed: that one waits the
        # workflow task timeout (the next test). A moment later it meets the sticky queue.
        await asyncio.sleep(KILL_NOTICED)
        resend = timed(resend_invitation(client, cached_invitation), time.monotonic())
        finished, (update, _) = await asyncio.wait_for(asyncio.gather(boots, resend), 120)
    finally:
        for worker in workers:
            stop_worker(worker)
    mails = [elapsed for elapsed, _ in finished]
    print(f"recovery after SIGKILL: bootstraps {mails}, re-send update {update:.1f} s")
    assert max(mails) < MAIL_RECOVERY_BOUND, (mails, workers[1].log_text())
    assert update < UPDATE_RECOVERY_BOUND, (update, await timeline(client, cached_invitation))

    # Nothing twice: one invitation and one welcome mail delivered per (admin) invitee
    # (two invitation mails for the re-sent one), and each event once per aggregate.
    for spec, (_, result) in zip(stranded, finished, strict=True):
        (invitee,) = spec.invitees
        assert len(smtp.invitation_mails(invitee.email)) == 1
        assert len(smtp.to(invitee.email)) == 2
        org = topic_counts(pg_server, pg_schema, organization_id(spec.slug))
        expected = {"Registered": 1, "InvitationIssued": 1, "Activated": 1, "EmailSent": 1}
        assert org == expected, org
        (invitation_id,) = result.invitation_ids
        invitation = topic_counts(pg_server, pg_schema, invitation_id)
        assert invitation == {"Invited": 1, "EmailSent": 1}, invitation
    assert len(smtp.invitation_mails(cached.invitees[0].email)) == 2
    invitation = topic_counts(pg_server, pg_schema, cached_invitation)
    assert invitation.get("EmailSent") == 2 and invitation.get("TokenReissued") == 1, invitation


async def cached_on(
    client: Client, workflow_id: str, workers: list[WorkerProcess]
) -> WorkerProcess:
    """The worker that completed the workflow's last workflow task (so has it cached)."""
    identities: list[str] = []

    async def ran() -> bool:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        identities[:] = [
            e.workflow_task_completed_event_attributes.identity
            for e in history.events
            if e.HasField("workflow_task_completed_event_attributes")
        ]
        return bool(identities)

    await wait_for_async(ran, what=f"a workflow task of {workflow_id} completed")
    # The SDK's default identity is "<pid>@<host>".
    return next(w for w in workers if identities[-1].startswith(f"{w.process.pid}@"))


async def test_an_update_a_killed_worker_was_handed_is_retried_after_the_task_timeout(
    temporal_env: WorkflowEnvironment,
    pg_schema: str,
    holding_smtp: tuple[HoldingHandler, int],
    tmp_path: Path,
) -> None:
    """The one wait heartbeats and the sticky timeout do not shorten: a workflow task
    already handed to a worker that dies is given again only after the workflow task
    timeout (Temporal's default, 10 s). Worker A is stopped (SIGSTOP) so that its open
    poll takes the update's task and never answers, then killed."""
    smtp, smtp_port = holding_smtp
    client = temporal_env.client
    env = smtp_worker_env(temporal_env, pg_schema, smtp_port)
    queue = env["TEMPORAL_TASK_QUEUE"]
    a = start_worker(env, tmp_path / "a.log")
    workers = [a, start_worker(env | {"HEALTH_PORT": str(free_port())}, tmp_path / "b.log")]
    try:
        cached = bootstrap_input(f"dw-task-{uuid.uuid4().hex[:6]}", invitees=1, domain=False)
        result = await (await start_bootstrap(client, cached, queue)).result()
        (invitation,) = result.invitation_ids
        # Both workers poll; the invitation's workflow is cached on the one that ran it.
        holder = await cached_on(client, invitation_workflow_id(invitation), workers)
        holder.process.send_signal(signal.SIGSTOP)
        asked = time.monotonic()
        resend = asyncio.create_task(resend_invitation(client, invitation))
        await asyncio.sleep(1.0)  # the stopped worker's open poll has taken the task
        holder.process.send_signal(signal.SIGKILL)
        holder.process.wait(timeout=10)
        await asyncio.wait_for(resend, timeout=120)
        elapsed = time.monotonic() - asked
    finally:
        for worker in workers:
            stop_worker(worker)
    print(f"update handed to a worker killed mid-task: done after {elapsed:.1f} s")
    assert elapsed < TASK_RECOVERY_BOUND, elapsed
    assert len(smtp.invitation_mails(cached.invitees[0].email)) == 2
