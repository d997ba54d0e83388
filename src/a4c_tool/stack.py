"""``a4c dev``: the whole stack on one machine, on embedded defaults.

Starts the Temporal dev server (with its Web UI and the codec server that opens sealed
payloads for it), the projector, the worker and the API as child processes in one data
folder, runs the sample (:mod:`a4c_tool.stackreport`), then keeps running until Ctrl-C
and stops every child, the API first. A second run on the same folder adds nothing.
Configuration is :mod:`a4c_tool.stackconfig`; process mechanics :mod:`a4c_tool.processes`.
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_service.cli import INTERRUPTED
from a4c_tool.datafolder import check_temporal_state, claimed, store_identity
from a4c_tool.devstore import ensure_database
from a4c_tool.processes import (
    Child,
    PortInUse,
    StopRequested,
    StopSignals,
    port_open,
    wait_for_http,
    wait_for_port,
)
from a4c_tool.stackconfig import (
    DEV_WORKFLOW_MODE,
    PERSISTENCE_VARS,
    Ports,
    api_env,
    api_url,
    local_payload_keys,
    local_sso_keys,
    local_webhook_keys,
    store_env,
    temporal_binary,
)
from a4c_tool.stackreport import SampleRun
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import ACCEPT_PATH, DEFAULT_TASK_QUEUE
from a4c_worker.connection import TemporalConnection, TemporalSettings
from a4c_worker.search_attributes import dev_server_args

# The dev credential's name in API_KEYS; a fresh key each run, shown once.
DEV_KEY_NAME = "a4c-dev"


class OutputClosed(Exception):
    """Whoever read ``a4c dev``'s output went away (``| head`` exited): the stack stops."""


class Stack:
    """The children: their configuration, their start in order, their watch and stop."""

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
        self.logs_dir = self.data_dir / "logs"
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
        webhook_env = (
            {
                "WEBHOOK_SECRET_KEYS": local_webhook_keys(self.data_dir),
                # A developer's receiver runs on this machine.
                "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            }
            if postgres
            else {}
        )
        # Single sign-on: the API seals client secrets, the worker opens them; a
        # developer's test provider runs on this machine (http in development mode).
        sso_keys = {"SSO_SECRET_KEYS": local_sso_keys(self.data_dir)}
        base = self.child_env() | {"LOG_FORMAT": "json"}
        bin_dir = Path(sys.executable).parent
        logs = self.logs_dir
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
                **sso_keys,
                "SSO_ALLOW_PRIVATE_ADDRESSES": "true",
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
                **webhook_env,
                **sso_keys,
            },
            logs / "api.log",
        )
        # Webhooks are delivered from PostgreSQL only (a4c-webhooks refuses SQLite): with
        # --postgres the stack runs the daemon, and the API seals endpoint secrets for it;
        # on the SQLite store the API's webhook routes say webhooks are not configured.
        self.webhooks: Child | None = None
        if postgres:
            self.webhooks = Child(
                "webhooks",
                [str(bin_dir / "a4c-webhooks"), "run"],
                base
                | {
                    **temporal_env,
                    **webhook_env,
                    "WEBHOOKS_MODE": "development",  # http receivers
                    "WEBHOOK_HTTP_HOST": "127.0.0.1",
                    "WEBHOOK_HTTP_PORT": str(ports.webhooks_http),
                    "WEBHOOK_SHUTDOWN_GRACE": "5",
                },
                logs / "webhooks.log",
            )

    @property
    def children(self) -> tuple[Child, ...]:
        """In starting order; they stop in the reverse one (the API first)."""
        first = (self.temporal, self.codec_server, self.projector, self.worker, self.api)
        return first if self.webhooks is None else (*first, self.webhooks)

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
                order = [
                    (self.projector, f"{projector}/health", 60, f"{projector}/metrics"),
                    (self.worker, worker, 90, worker),
                    (
                        self.api,
                        f"http://127.0.0.1:{self.ports.api}/ready",
                        60,
                        f"{self.api_url}  (OpenAPI: {self.api_url}/docs)",
                    ),
                ]
                if self.webhooks is not None:
                    hooks = f"http://127.0.0.1:{self.ports.webhooks_http}"
                    order.append((self.webhooks, f"{hooks}/health", 60, f"{hooks}/metrics"))
                for child, ready, timeout, shown in order:
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

    def sample(self) -> SampleRun:
        """The sample bootstrap on these children, speaking through :meth:`say`."""
        return SampleRun(
            say=self.say,
            check=self.stop.check,
            store=self.store,
            child_env=self.child_env(),
            local_temporal=self.local_temporal,
            ports=self.ports,
            api_url=self.api_url,
            codec_url=self.codec_url,
            mail_dir=self.mail_dir,
            logs_dir=self.logs_dir,
        )


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
            sample = stack.sample()
            progress = asyncio.run(sample.bootstrap())
            sample.wait_for_projection()
            sample.report(dev_key)
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
