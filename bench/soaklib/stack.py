"""The soak's stack: every a4c process twice, the Temporal dev server, BIND, an SMTP sink,
and an OpenID provider for the organizations that bring their own.

The event store is given (a pg_auto_failover cluster, or any PostgreSQL for a run by
hand); everything else is started here, each process a :class:`a4c_tool.processes.Child`
with its log in ``root/logs``, so a fault can kill one and :meth:`SoakStack.restart`
start it again with the same configuration, as Kubernetes would. BIND also serves the
invitees' mail zone (:data:`soaklib.load_plan.MAIL_ZONE`), where the load publishes
e-mail domains' challenges and the workers look for them. The organizations' provider
(``tests.servers.oidc``, keys of its own) is served from the soak's own process: no fault
reaches it, as none reaches a customer's provider.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
from tests.servers.bind import KEY_ALGORITHM, KEY_NAME, TEST_ZONE, find_named, write_config
from tests.servers.oidc import OIDCClient, OIDCProvider, serve_provider

from a4c_api.cli import new_key
from a4c_api.pages.paths import SSO_CALLBACK_PATH
from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_tool.processes import Child, free_port, http_ok, port_open
from a4c_tool.stackconfig import temporal_binary
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import ACCEPT_PATH, DEFAULT_TASK_QUEUE, SSO_SECRET_KEYS_VARIABLE
from a4c_worker.search_attributes import dev_server_args
from soaklib.facts import DnsFacts, StoreFacts, TemporalFacts
from soaklib.hooks import DAEMON_TIMEOUT_SECONDS, RETRY_SCHEDULE
from soaklib.load_plan import MAIL_ZONE
from soaklib.load_sso import SSOSetup, TxtPublisher
from soaklib.mailsink import MailSink

BIN = Path(sys.executable).parent
READY_TIMEOUT = 120.0
ZONE = TEST_ZONE.rstrip(".")  # the worker's DNS_ZONE and RFC2136_ZONE: BIND's test zone


@dataclass
class Bind:
    """``named`` serving the zone the workers update; stopped and started by a fault.

    A :class:`Child` like the a4c processes: it dies with the soak (PR_SET_PDEATHSIG),
    so it is started from the main thread; waiting for it to answer may be done anywhere.
    """

    directory: Path
    port: int
    secret: str
    child: Child

    @classmethod
    def create(cls, directory: Path, env: dict[str, str], port: int) -> Bind:
        """``port``: from the stack's ports, so no other part is handed it too."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)  # named may switch to the bind user and writes its journal
        secret = base64.b64encode(secrets.token_bytes(32)).decode()
        conf = write_config(directory, "127.0.0.1", port, secret, other_zones=[MAIL_ZONE])
        argv = [find_named(), "-g", "-n", "1", "-c", str(conf)]
        return cls(directory, port, secret, Child("named", argv, env, directory / "named.log"))

    def start(self) -> None:
        self.child.start()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        query = dns.message.make_query(TEST_ZONE, "SOA")
        while time.monotonic() < deadline:
            self.child.check_alive()
            try:
                if dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.5).answer:
                    return
            except (OSError, dns.exception.Timeout):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"named did not start; see {self.directory / 'named.log'}")

    def stop(self) -> None:
        self.child.stop(grace_seconds=10)

    def publisher(self, zone: str) -> TxtPublisher:
        return TxtPublisher("127.0.0.1", self.port, zone, KEY_NAME, self.secret, KEY_ALGORITHM)


class SoakStack:
    """Two workers, two projectors, two APIs, two webhook daemons, the dev server, BIND and
    the SMTP sink."""

    def __init__(self, root: Path, store: StoreFacts) -> None:
        self.root = root
        self.logs = root / "logs"
        self.store = store
        self.token_secret = secrets.token_urlsafe(32)
        self.payload_keys = PayloadKeys.generate("soak-1").entry()
        self.api_key, grant = new_key("soak-operator", None)
        self.session_secret = secrets.token_urlsafe(32)
        # Seals the webhook endpoints' signing secrets (the API seals, the daemon opens).
        self.webhook_keys = PayloadKeys.generate("soak-hooks-1").entry()
        # Seals organizations' client secrets (the API seals, the worker opens).
        self.sso_keys = PayloadKeys.generate("soak-sso-1").entry()
        # The organizations' own provider, served by start(); one client for them all.
        self.provider: OIDCProvider | None = None
        self.sso_client: OIDCClient | None = None
        self._served = ExitStack()
        # Every port the stack hands out, so none is handed out twice: the kernel may
        # give a port just released to the next bind(0) (seen: projector-1's probes and
        # webhooks-2's on one port, and webhooks-2 could not start).
        self._given_ports: set[int] = set()
        self.temporal_port = self._free_port()
        self.temporal = TemporalFacts(
            address=f"127.0.0.1:{self.temporal_port}",
            namespace="default",
            task_queue=DEFAULT_TASK_QUEUE,
            payload_keys=self.payload_keys,
        )
        self.bind = Bind.create(root / "bind", dict(os.environ), self._free_port())
        self.dns = DnsFacts(host="127.0.0.1", port=self.bind.port, zone=ZONE)
        self.mail = MailSink(self._free_port())
        self.api_ports = [self._free_port(), self._free_port()]
        self.api_urls = [f"http://127.0.0.1:{port}" for port in self.api_ports]
        self.probe_ports: dict[str, int] = {}
        base = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "TEMPORAL_"))}
        base |= store.env | {"LOG_FORMAT": "json", "PYTHONUNBUFFERED": "1"}
        temporal_env = {
            "TEMPORAL_ADDRESS": self.temporal.address,
            "TEMPORAL_NAMESPACE": self.temporal.namespace,
            "TEMPORAL_TASK_QUEUE": self.temporal.task_queue,
            "TEMPORAL_PAYLOAD_KEYS": self.payload_keys,
        }
        self.temporal_child = Child(
            "temporal",
            [
                temporal_binary(), "server", "start-dev",
                "--db-filename", str(root / "temporal.db"),
                "--ip", "127.0.0.1", "--port", str(self.temporal_port),
                "--headless", "--log-level", "error", *dev_server_args(),
            ],
            base,
            self.logs / "temporal.log",
        )  # fmt: skip
        self.workers = [
            self._child(
                f"worker-{n}",
                ["a4c-worker", "run"],
                base
                | temporal_env
                | {
                    TOKEN_SECRET_VAR: self.token_secret,
                    "WORKFLOW_MODE": "development",
                    "EMAIL_PROVIDER": "smtp",
                    "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(self.mail.port),
                    "SMTP_SECURITY": "none",
                    "SMTP_FROM": "a4c soak <noreply@soak.a4c.test>",
                    "DNS_PROVIDER": "rfc2136",
                    "RFC2136_SERVER": "127.0.0.1",
                    "RFC2136_PORT": str(self.bind.port),
                    "RFC2136_ZONE": ZONE,
                    "RFC2136_KEY_NAME": KEY_NAME,
                    "RFC2136_KEY_SECRET": self.bind.secret,
                    "RFC2136_ALGORITHM": KEY_ALGORITHM,
                    "DNS_NAMESERVERS": f"127.0.0.1:{self.bind.port}",
                    "DNS_ZONE": ZONE,
                    "DNS_TARGET": f"ingress.{ZONE}",
                    # Where e-mail domains' challenges are looked for: BIND serves the
                    # invitees' mail zone too.
                    "EMAIL_DOMAIN_NAMESERVERS": f"127.0.0.1:{self.bind.port}",
                    SSO_SECRET_KEYS_VARIABLE: self.sso_keys,
                    "SSO_ALLOW_PRIVATE_ADDRESSES": "true",  # the provider is on 127.0.0.1
                    "ACCEPT_URL_BASE": self.api_urls[0] + ACCEPT_PATH,
                    "HEALTH_HOST": "127.0.0.1",
                    "HEALTH_PORT": str(self._probe(f"worker-{n}")),
                    "SHUTDOWN_GRACE_SECONDS": "5",
                },
            )
            for n in (1, 2)
        ]
        self.projectors = [
            self._child(
                f"projector-{n}",
                ["a4c-projector", "run"],
                base | {"PROJECTOR_HTTP_PORT": str(self._probe(f"projector-{n}"))},
            )
            for n in (1, 2)
        ]
        self.apis = [
            self._child(
                f"api-{n}",
                ["a4c-api", "run"],
                {k: v for k, v in base.items() if k != TOKEN_SECRET_VAR}
                | temporal_env
                | {
                    "API_MODE": "development",
                    "API_HOST": "127.0.0.1",
                    "API_PORT": str(port),
                    "API_METRICS_PORT": str(self._probe(f"api-{n}")),
                    "API_PUBLIC_URL": self.api_urls[0],
                    "API_KEYS": grant.entry(),
                    "API_SESSION_SECRET": self.session_secret,
                    "API_SHUTDOWN_GRACE_SECONDS": "2",
                    # The load re-sends at once; the cooldown is tested elsewhere.
                    "API_RESEND_COOLDOWN_SECONDS": "0",
                    "DNS_ZONE": ZONE,  # the domains onboardings may ask for
                    "WEBHOOK_SECRET_KEYS": self.webhook_keys,
                    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",  # the receivers are on 127.0.0.1
                    SSO_SECRET_KEYS_VARIABLE: self.sso_keys,
                },
            )
            for n, port in zip((1, 2), self.api_ports, strict=True)
        ]
        # Two delivery daemons: one active (its advisory lock), one standing by.
        self.webhooks = [
            self._child(
                f"webhooks-{n}",
                ["a4c-webhooks", "run"],
                {k: v for k, v in base.items() if k != TOKEN_SECRET_VAR}
                | temporal_env
                | {
                    "WEBHOOK_SECRET_KEYS": self.webhook_keys,
                    "WEBHOOKS_MODE": "development",
                    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
                    "WEBHOOK_RETRY_SCHEDULE": RETRY_SCHEDULE,
                    "WEBHOOK_TIMEOUT": str(DAEMON_TIMEOUT_SECONDS),
                    "WEBHOOK_SHUTDOWN_GRACE": "2",
                    "WEBHOOK_HTTP_HOST": "127.0.0.1",
                    "WEBHOOK_HTTP_PORT": str(self._probe(f"webhooks-{n}")),
                },
            )
            for n in (1, 2)
        ]

    def _free_port(self) -> int:
        """A free port this stack has not handed out before."""
        while (port := free_port()) in self._given_ports:
            pass
        self._given_ports.add(port)
        return port

    def _probe(self, name: str) -> int:
        self.probe_ports[name] = self._free_port()
        return self.probe_ports[name]

    def _child(self, name: str, argv: list[str], env: dict[str, str]) -> Child:
        return Child(name, [str(BIN / argv[0]), *argv[1:]], env, self.logs / f"{name}.log")

    @property
    def children(self) -> list[Child]:
        return [self.temporal_child, *self.services]

    @property
    def services(self) -> list[Child]:
        """The a4c processes, in starting order."""
        return [*self.projectors, *self.workers, *self.apis, *self.webhooks]

    @property
    def secrets(self) -> dict[str, str]:
        """What must appear in no log, event, read model, history or metric."""
        found = {
            "token secret": self.token_secret,
            "operator API key": self.api_key,
            "session secret": self.session_secret,
            "TSIG secret": self.bind.secret,
        }
        for entry in self.webhook_keys.split(","):
            found[f"webhook secret key {entry.split(':')[0]}"] = entry.split(":", 1)[-1]
        for entry in self.sso_keys.split(","):
            found[f"SSO secret key {entry.split(':')[0]}"] = entry.split(":", 1)[-1]
        if self.sso_client is not None:
            found["organizations' client secret"] = self.sso_client.client_secret
        if "CIPHER_KEY" in self.store.env:
            found["event store cipher key"] = self.store.env["CIPHER_KEY"]
        for entry in self.payload_keys.split(","):
            found[f"payload key {entry.split(':')[0]}"] = entry.split(":", 1)[-1]
        return found

    # --- starting and stopping --------------------------------------------------------

    def start(self) -> None:
        self.provider = self._served.enter_context(serve_provider())
        # The test page sends the admin back to its API's public URL: every replica's.
        callbacks = sorted({self.public_url(api) + SSO_CALLBACK_PATH for api in self.apis})
        self.sso_client = self.provider.register_client(callbacks)
        self.bind.start()
        self.bind.wait_ready()
        self.mail.start()
        self.temporal_child.start()
        self.wait_temporal()
        for child in self.services:
            child.start()
        for child in self.services:
            self.wait_ready(child)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop(grace_seconds=5)
        self.bind.stop()
        self.mail.stop()
        self._served.close()

    def public_url(self, api: Child) -> str:
        return api.env["API_PUBLIC_URL"]

    def sso_setup(self) -> SSOSetup:
        """What the load gives organizations their own provider with (once started)."""
        assert self.provider is not None and self.sso_client is not None  # start()
        return SSOSetup(
            provider=self.provider,
            client_id=self.sso_client.client_id,
            client_secret=self.sso_client.client_secret,
            txt=self.bind.publisher(MAIL_ZONE),
        )

    def restart(self, child: Child) -> None:
        """Start ``child`` again (after a kill), with its configuration, and wait for it."""
        if child.process is not None and child.process.poll() is None:
            child.stop(grace_seconds=5)
        elif child.process is not None:
            child.process.wait()
        child.start()
        if child is self.temporal_child:
            self.wait_temporal()
        else:
            self.wait_ready(child)

    def wait_temporal(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not port_open(self.temporal_port):
            self.temporal_child.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError("the Temporal dev server did not start")
            time.sleep(0.2)

    def health_url(self, child: Child) -> str:
        port = self.probe_ports[child.name]
        if child in self.apis:
            return self.api_urls[self.apis.index(child)] + "/health"
        return f"http://127.0.0.1:{port}/health"

    def wait_ready(self, child: Child, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not http_ok(self.health_url(child)):
            child.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} not healthy in {timeout:.0f}s")
            time.sleep(0.2)

    def active_projector(self) -> Child | None:
        """The replica answering ``/ready`` (it holds the projection's lock), if any."""
        return self._ready_one(self.projectors)

    def active_webhooks(self) -> Child | None:
        """The delivery daemon answering ``/ready`` (it holds the delivery lock), if any."""
        return self._ready_one(self.webhooks)

    def _ready_one(self, replicas: list[Child]) -> Child | None:
        for child in replicas:
            if http_ok(f"http://127.0.0.1:{self.probe_ports[child.name]}/ready"):
                return child
        return None

    def metrics_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{self.probe_ports[child.name]}/metrics" for child in self.services
        ]


def sigkill(child: Child) -> None:
    if child.process is not None and child.process.poll() is None:
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
