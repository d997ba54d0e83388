"""``a4c-worker`` end to end: a real worker process on the dev server, PostgreSQL storage.

``run`` is a subprocess (signals, exit codes, health endpoints over HTTP); the operator
commands run in-process through ``main`` (in a thread: ``main`` owns its event loop),
against that worker, so their exit codes and output are what an operator sees.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, free_port, wait_for_async

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, organization_id
from a4c_worker.cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, main
from a4c_worker.client import accept_invitation, bootstrap_handle, start_bootstrap
from a4c_worker.contracts import Invitee
from a4c_worker.workflows.models import BootstrapInput

READY_TIMEOUT = 60.0
# The worker process runs this checkout's code (as the webhooks daemon's tests do), not
# whichever the virtualenv was installed from.
SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    health_port: int
    log: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.health_port}{path}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def worker_env(
    temporal_env: WorkflowEnvironment,
    *,
    schema: str | None = None,
    sqlite: Path | None = None,
    **extra: str,
) -> dict[str, str]:
    """Mock-mode worker settings on a PostgreSQL ``schema`` or a ``sqlite`` file."""
    if schema is not None:
        store = postgres_env(schema)
    else:
        assert sqlite is not None
        store = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(sqlite)}
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(SRC),
        "WORKFLOW_MODE": "mock",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": f"a4c-cli-{uuid.uuid4().hex[:10]}",
        "HEALTH_HOST": "127.0.0.1",
        "HEALTH_PORT": str(free_port()),
        "SHUTDOWN_GRACE_SECONDS": "30",
        "LOG_FORMAT": "json",
        **store,
        **extra,
    }


def start_worker(env: dict[str, str], log: Path) -> WorkerProcess:
    """``a4c-worker run`` as a child process; returns once ``/ready`` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "a4c_worker.cli", "run"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    worker = WorkerProcess(process, env, int(env["HEALTH_PORT"]), log)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"worker exited with {process.returncode}:\n{worker.log_text()}")
        if http_get(worker.url("/ready"))[0] == 200:
            return worker
        time.sleep(0.2)
    stop_worker(worker)
    pytest.fail(f"worker not ready in {READY_TIMEOUT}s:\n{worker.log_text()}")


def stop_worker(worker: WorkerProcess, timeout: float = 60.0) -> int:
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
    return worker.process.wait(timeout=timeout)


@pytest.fixture(scope="module")
def worker(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    """One worker process shared by the command tests, on the embedded SQLite store.

    (The shutdown test below uses PostgreSQL, so ``run`` is exercised on both stores.)
    """
    folder = tmp_path_factory.mktemp("cli-worker")
    running = start_worker(
        worker_env(temporal_env, sqlite=folder / "events.sqlite"), folder / "w.log"
    )
    yield running
    code = stop_worker(running)
    assert code == 0, running.log_text()
    assert "worker polling" in running.log_text()
    assert TOKEN_SECRET not in running.log_text()


@dataclass
class Ran:
    code: int
    out: str
    err: str


async def cli(*argv: str, env: dict[str, str]) -> Ran:
    """``main`` as the console script runs it; the root logger is restored after it."""
    out, err = io.StringIO(), io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = await asyncio.to_thread(main, list(argv), env, out, err)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return Ran(code, out.getvalue(), err.getvalue())


def slug() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


# --- configuration and input errors (no servers needed) --------------------------------


def test_run_with_bad_configuration_exits_2_naming_each_variable() -> None:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WORKFLOW_MODE": "production",
        "A4C_TOKEN_SECRET": "short",
        "HEALTH_PORT": "not-a-port",
    }
    done = subprocess.run(
        [sys.executable, "-m", "a4c_worker.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_INVALID, done.stderr
    lines = done.stderr.strip().splitlines()
    assert "configuration error: A4C_TOKEN_SECRET: must be at least 32 bytes" in lines
    assert any(line.startswith("configuration error: HEALTH_PORT: ") for line in lines)
    assert "short" not in done.stderr.replace("A4C_TOKEN_SECRET", "")


async def test_validate_config_prints_the_effective_settings_with_secrets_masked() -> None:
    env = {
        "WORKFLOW_MODE": "mock",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "SMTP_PASSWORD": "cli-smtp-pass-unique",
        "SMTP_USERNAME": "me",
    }
    ran = await cli("validate-config", env=env)
    assert ran.code == EXIT_OK, ran.err
    shown = json.loads(ran.out)
    assert shown["WORKFLOW_MODE"] == "mock"
    assert shown["resolved"]["email_provider"] == "memory"
    assert shown["A4C_TOKEN_SECRET"] == "**********"
    assert TOKEN_SECRET not in ran.out + ran.err
    assert "cli-smtp-pass-unique" not in ran.out + ran.err


async def test_bad_bootstrap_input_exits_2_naming_the_field_before_connecting() -> None:
    # Nothing listens at this address: input is refused before any connection.
    env = {"WORKFLOW_MODE": "development", "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    ran = await cli("bootstrap", "--slug", "Not A Slug!", "--name", "X", env=env)
    assert (ran.code, ran.err) == (EXIT_INVALID, "invalid input: slug: must be lower-case\n")
    ran = await cli("bootstrap", "--slug", "ok-slug", "--name", " ", env=env)
    assert (ran.code, ran.err) == (EXIT_INVALID, "invalid input: name: must not be empty\n")
    ran = await cli("bootstrap", "--slug", "ok-slug", "--name", "X", "--invitee", "a@b", env=env)
    assert ran.code == EXIT_INVALID
    assert "invalid input: --invitee: 'a@b': expected EMAIL,ROLE,FIRST,LAST" in ran.err


async def test_unreachable_temporal_exits_3() -> None:
    env = {"WORKFLOW_MODE": "development", "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}
    ran = await cli("status", "anything", env=env)
    assert ran.code == EXIT_UNREACHABLE
    assert "cannot reach Temporal at 127.0.0.1:" in ran.err


# --- against the running worker ---------------------------------------------------------


def test_run_serves_health_ready_and_metrics(worker: WorkerProcess) -> None:
    status, body = http_get(worker.url("/health"))
    assert status == 200, body
    assert json.loads(body)["status"] == "ok"
    status, body = http_get(worker.url("/ready"))
    assert (status, json.loads(body)["status"]) == (200, "ok")
    status, body = http_get(worker.url("/metrics"))
    assert status == 200
    assert "a4c_worker_activities_running" in body


async def test_bootstrap_follows_to_completion_then_status_and_a_second_start(
    worker: WorkerProcess,
) -> None:
    org = slug()
    ran = await cli(
        "bootstrap",
        "--slug",
        org,
        "--name",
        "CLI Test Org",
        "--tag",
        "cli",
        "--invitee",
        "ada@example.com,admin,Ada,Lovelace",
        "--invitee",
        "grace@example.com,member,Grace,Hopper",
        env=worker.env,
    )
    assert ran.code == EXIT_OK, ran.out + ran.err
    lines = ran.out.splitlines()
    assert lines[0].startswith(f"bootstrap '{org}': workflow org-bootstrap-{org} run ")
    assert any(line.startswith("state=completed step=-") for line in lines), lines
    assert lines[-1].startswith(f"bootstrap completed: organization {organization_id(org)}, ")
    assert "2 invitation(s), 2 e-mail(s) sent, 0 failed" in lines[-1]

    ran = await cli("status", org, env=worker.env)
    assert ran.code == EXIT_OK, ran.err
    shown = json.loads(ran.out)
    assert shown["workflow_status"] == "COMPLETED"
    assert shown["progress"]["state"] == "completed"
    assert "activate" in shown["progress"]["completed_steps"]
    assert len(shown["progress"]["invitation_ids"]) == 2

    # The slug was bootstrapped: a second start is refused, and nothing new is written.
    app = OnboardingApplication(worker.env)
    try:
        before = app.recorder.max_notification_id()
        ran = await cli("bootstrap", "--slug", org, "--name", "CLI Test Org", env=worker.env)
        assert ran.code == EXIT_FAILED
        assert "was bootstrapped already" in ran.err
        assert app.recorder.max_notification_id() == before
        assert app.get_organization(organization_id(org)).status == "active"
    finally:
        app.close()

    status, metrics = http_get(worker.url("/metrics"))
    assert status == 200
    assert 'workflow_type="OrganizationBootstrapWorkflow"' in metrics
    assert 'a4c_worker_activities_started_total{activity_type="register_organization"}' in metrics


async def test_bootstrap_from_file_without_following(
    worker: WorkerProcess, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    org = slug()
    spec = tmp_path / "bootstrap.json"
    spec.write_text(json.dumps({"name": "From File", "slug": org, "org_type": "partner"}))
    ran = await cli("bootstrap", "--file", str(spec), "--no-follow", env=worker.env)
    assert ran.code == EXIT_OK, ran.err
    assert len(ran.out.splitlines()) == 1
    result = await bootstrap_handle(temporal_env.client, org).result()
    assert result.organization_id == organization_id(org)


async def test_invite_then_revoke(worker: WorkerProcess) -> None:
    org = slug()
    ran = await cli("bootstrap", "--slug", org, "--name", "Invite Org", env=worker.env)
    assert ran.code == EXIT_OK, ran.out + ran.err
    ran = await cli(
        "invite",
        "--org-slug",
        org,
        "--email",
        "Linus@Example.com",
        "--role",
        "member",
        "--first-name",
        "Linus",
        "--last-name",
        "Torvalds",
        env=worker.env,
    )
    assert ran.code == EXIT_OK, ran.err
    invited = json.loads(ran.out)
    assert invited["workflow_id"] == f"invitation-{invited['invitation_id']}"

    for blank in ("", "  "):  # refused before reaching the workflow, in the caller's terms
        ran = await cli("revoke", invited["invitation_id"], "--reason", blank, env=worker.env)
        assert (ran.code, ran.err) == (EXIT_INVALID, "invalid input: reason: must not be empty\n")
    ran = await cli("revoke", invited["invitation_id"], "--reason", "changed plans", env=worker.env)
    assert ran.code == EXIT_OK, ran.err
    assert json.loads(ran.out)["state"] == "revoked"

    app = OnboardingApplication(worker.env)
    try:
        invitation = app.get_invitation(uuid.UUID(invited["invitation_id"]), ALL_ORGANIZATIONS)
        token = app.invitation_token(invitation.id, ALL_ORGANIZATIONS)
        assert token not in worker.log_text() + ran.out + ran.err  # the mailed token
        assert (invitation.email, invitation.status) == ("linus@example.com", "revoked")
        assert invitation.email_status == "sent"  # the workflow sent the mail first
    finally:
        app.close()

    ran = await cli("revoke", invited["invitation_id"], "--reason", "again", env=worker.env)
    assert ran.code == EXIT_FAILED  # the lifecycle is over: nothing left to revoke
    assert ran.err == (
        f"revoke refused: invitation {invited['invitation_id']} is already revoked\n"
    )
    unknown = uuid.uuid4()
    ran = await cli("revoke", str(unknown), "--reason", "who?", env=worker.env)
    assert (ran.code, ran.err) == (EXIT_FAILED, f"no invitation {unknown} was found\n")


async def test_invite_again_is_the_same_invitation_and_a_conflict_is_refused(
    worker: WorkerProcess,
) -> None:
    org = slug()
    ran = await cli("bootstrap", "--slug", org, "--name", "Twice Org", env=worker.env)
    assert ran.code == EXIT_OK, ran.out + ran.err

    def invite(role: str) -> list[str]:
        return [
            "invite", "--org-slug", org, "--email", "grace@example.com", "--role", role,
            "--first-name", "Grace", "--last-name", "Hopper",
        ]  # fmt: skip

    first = await cli(*invite("member"), env=worker.env)
    again = await cli(*invite("member"), env=worker.env)
    assert (first.code, again.code) == (EXIT_OK, EXIT_OK), first.err + again.err
    assert json.loads(again.out) == json.loads(first.out)  # one invitation, one workflow
    ran = await cli(*invite("admin"), env=worker.env)
    assert (ran.code, ran.err) == (
        EXIT_FAILED,
        "invite refused: InvitationConflict: grace@example.com is already invited "
        "(generation 1) with different role\n",
    )
    ran = await cli(*invite("overlord"), env=worker.env)
    assert ran.code == EXIT_INVALID and ran.err.startswith("invalid input: role: ")
    ran = await cli("revoke", json.loads(first.out)["invitation_id"], "--reason", "done",
                    env=worker.env)  # fmt: skip
    assert ran.code == EXIT_OK, ran.err


async def test_revoking_an_accepted_invitation_says_it_is_accepted(
    worker: WorkerProcess, temporal_env: WorkflowEnvironment
) -> None:
    org = slug()
    ran = await cli(
        "bootstrap", "--slug", org, "--name", "Accept Org",
        "--invitee", "ada@example.com,admin,Ada,Lovelace", env=worker.env,
    )  # fmt: skip
    assert ran.code == EXIT_OK, ran.out + ran.err
    status = json.loads((await cli("status", org, env=worker.env)).out)
    invitation_id = uuid.UUID(status["progress"]["invitation_ids"][0])
    app = OnboardingApplication(worker.env)
    try:
        token = app.invitation_token(invitation_id, ALL_ORGANIZATIONS)
    finally:
        app.close()
    await accept_invitation(temporal_env.client, invitation_id, token, "user-ada")
    ran = await cli("revoke", str(invitation_id), "--reason", "too late", env=worker.env)
    assert (ran.code, ran.err) == (
        EXIT_FAILED,
        f"revoke refused: invitation {invitation_id} is already accepted\n",
    )


async def test_invite_into_unknown_organization_fails_naming_it(worker: WorkerProcess) -> None:
    ran = await cli(
        "invite",
        "--org-slug",
        "no-such-org",
        "--email",
        "x@example.com",
        "--role",
        "member",
        "--first-name",
        "X",
        "--last-name",
        "Y",
        env=worker.env,
    )
    assert ran.code == EXIT_FAILED
    assert ran.err == "OrganizationNotFound: organization 'no-such-org' not found\n"
    assert str(organization_id("no-such-org")) not in ran.err


async def test_status_and_cancel_of_unknown_slug_fail_clearly(worker: WorkerProcess) -> None:
    ran = await cli("status", "never-started", env=worker.env)
    assert (ran.code, ran.err.strip()) == (EXIT_FAILED, "no bootstrap for slug 'never-started'")
    ran = await cli("cancel", "never-started", env=worker.env)
    assert ran.code == EXIT_FAILED
    assert "never-started" in ran.err


async def test_cancel_compensates_a_running_bootstrap(
    worker: WorkerProcess, temporal_env: WorkflowEnvironment
) -> None:
    org = slug()
    # A long propagation wait keeps the bootstrap running until the cancel arrives.
    started = await cli(
        "bootstrap",
        "--slug",
        org,
        "--name",
        "Cancel Me",
        "--domain",
        f"{org}.orgs.a4c.localhost",
        "--propagation-wait-seconds",
        "600",
        "--no-follow",
        env=worker.env,
    )
    assert started.code == EXIT_OK, started.err
    for _ in range(100):
        status = await cli("status", org, env=worker.env)
        if status.code == 0 and json.loads(status.out)["progress"]["current_step"] == (
            "propagation_wait"
        ):
            break
        await asyncio.sleep(0.1)
    ran = await cli("cancel", org, "--reason", " ", env=worker.env)
    assert (ran.code, ran.err) == (EXIT_INVALID, "invalid input: reason: must not be empty\n")
    ran = await cli("cancel", org, "--reason", "operator said so", env=worker.env)
    assert ran.code == EXIT_OK, ran.err
    final = json.loads(ran.out)
    assert final["state"] == "cancelled"
    assert final["cancel_reason"] == "operator said so"
    assert {c["step"] for c in final["compensations"]} >= {"deactivate", "remove_dns"}
    description = await bootstrap_handle(temporal_env.client, org).describe()
    assert description.status == WorkflowExecutionStatus.FAILED
    app = OnboardingApplication(worker.env)
    try:
        assert app.get_organization(organization_id(org)).status == "deactivated"
    finally:
        app.close()


# --- graceful shutdown with work in flight ----------------------------------------------


async def test_sigterm_lets_the_running_activity_finish_then_exits_0(
    temporal_env: WorkflowEnvironment, pg_server: str, pg_schema: str, tmp_path: Path
) -> None:
    """SIGTERM while an activity is blocked in the event store: it completes, exit 0.

    The test holds an exclusive lock on the events table, so the first activity
    (register) hangs inside its INSERT; the signal arrives; ``/ready`` turns false;
    the lock is released; the activity's write commits and is reported; the process
    exits 0 well inside the grace period. A second worker then finishes the bootstrap
    with exactly one Registered event.
    """
    env = worker_env(temporal_env, schema=pg_schema, SHUTDOWN_GRACE_SECONDS="30")
    running = start_worker(env, tmp_path / "worker.log")
    org = slug()
    spec = BootstrapInput(
        name="Shutdown Org",
        slug=org,
        org_type="provider",
        invitees=[Invitee(email="a@example.com", role="admin", first_name="A", last_name="B")],
    )
    try:
        with psycopg.connect(pg_server) as lock:
            lock.execute(f'LOCK TABLE "{pg_schema}".a4c_events IN ACCESS EXCLUSIVE MODE')
            handle = await start_bootstrap(temporal_env.client, spec, env["TEMPORAL_TASK_QUEUE"])
            await wait_for_metric(running, "a4c_worker_activities_running 1.0")
            running.process.send_signal(signal.SIGTERM)
            ready = running.url("/ready")
            await wait_for_async(
                lambda: asyncio.to_thread(lambda: http_get(ready)[0] == 503), what="not ready"
            )
            await asyncio.sleep(0.5)
            assert running.process.poll() is None  # still waiting for the activity
            lock.rollback()  # release: the INSERT goes through
        code = await asyncio.to_thread(running.process.wait, 25)
        assert code == 0, running.log_text()
        assert "worker stopped cleanly" in running.log_text()
    finally:
        stop_worker(running)

    history = await handle.fetch_history()
    completed = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ]
    assert len(completed) == 1, "the in-flight activity reported its result before exit"

    second = start_worker(env, tmp_path / "worker2.log")
    try:
        result = await handle.result()
    finally:
        assert stop_worker(second) == 0
    assert result.organization_id == organization_id(org)
    with psycopg.connect(pg_server) as conn:
        rows = conn.execute(
            f'SELECT topic, count(*) FROM "{pg_schema}".a4c_events '
            "WHERE originator_id = %s GROUP BY topic",
            (organization_id(org),),
        ).fetchall()
    counts = {topic.rsplit(".", 1)[-1]: n for topic, n in rows}
    assert counts.get("Registered") == 1, counts
    assert counts.get("Activated") == 1, counts


async def wait_for_metric(worker: WorkerProcess, line: str) -> None:
    metrics = worker.url("/metrics")
    await wait_for_async(
        lambda: asyncio.to_thread(lambda: line in http_get(metrics)[1]), what=f"metric {line!r}"
    )


def test_a_taken_health_port_is_one_line_naming_its_variables(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Two workers on one host with the default port: the second says which variable."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        env = worker_env(temporal_env, sqlite=tmp_path / "e.db", HEALTH_PORT=str(busy))
        done = subprocess.run(
            [sys.executable, "-m", "a4c_worker.cli", "run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == EXIT_INVALID, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert f"127.0.0.1:{busy} (HEALTH_HOST, HEALTH_PORT)" in done.stderr, done.stderr
