"""The whole stack for the HTTP service's tests, started once per session.

``api_stack`` runs every real part, over real connections: the Temporal dev server
(the session's), an a4c worker on a queue of its own with the file mailer (invitation
e-mails are real ``.eml`` files) and in-memory DNS, the projector following the
SQLite event store in a thread, the OpenID provider (tests/servers/oidc.py), and
``a4c_api`` served by uvicorn on a free port, its invitation links pointing at itself.
Tests share it, so each uses slugs and addresses of its own (``unique_slug``).

``Stack.serve(**env)`` serves another instance of the API (other settings: production
mode, other rates, other keys) on the same store and Temporal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from tests.servers.http import ServedApp, serve_asgi
from tests.servers.oidc import OIDCClient, OIDCProvider
from tests.support import TOKEN_SECRET, free_port, wait_for
from tests.worker.flows import ZONE, bootstrap_input

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.observability import ApiMetrics
from a4c_api.settings import ApiSettings, load_settings
from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.queries import InvitationRecord, ReadModel
from a4c_projector.readmodel.tables import ensure_schema
from a4c_sso.discovery import provider_policy
from a4c_worker.activities import Links, OnboardingActivities
from a4c_worker.client import accept_invitation, bootstrap_handle, start_bootstrap
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.providers.dns import InMemoryDNSProvider, InMemoryDNSVerifier, InMemoryTXTLookup
from a4c_worker.providers.email import FileMailer, Mailer
from a4c_worker.sealing import SecretKeys
from a4c_worker.worker import create_worker
from a4c_worker.workflows.models import BootstrapResult

if TYPE_CHECKING:
    from tests.api.v1_support import World

OIDC_CALLBACK_PATH = "/sign-in/oidc/callback"
# The stacks' webhook secret keys (a4c_webhooks.sealing): their webhook routes answer.
WEBHOOK_SECRET_KEYS = "k1:" + base64.b64encode(b"api-stack-webhook-secret-key-32b").decode()
SSO_SECRET_KEYS = "s1:" + base64.b64encode(b"api-stack-sso-client-secret-k32b").decode()
A4C_API = str(Path(sys.executable).parent / "a4c-api")
LINK = re.compile(r"https?://[^\s\"'<>]+" + re.escape(ACCEPT_PATH) + r"\?token=[A-Za-z0-9_\-%.~]+")


def unique_slug(prefix: str = "org") -> str:
    """A slug no other test of the session uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Stack:
    folder: Path
    env: dict[str, str]  # the event store's configuration
    store: EventStore
    app: OnboardingApplication  # the worker's; tests read with it, never write
    client: Client
    task_queue: str
    temporal_address: str
    mail_dir: Path
    oidc: OIDCProvider
    oidc_client: OIDCClient
    operator_key: str
    settings: ApiSettings
    served: ServedApp
    metrics: ApiMetrics  # the served API's (its /metrics listener is `a4c-api run`'s)
    # The worker's DNS as customers publish it (e-mail domains' challenges), in memory.
    txt: InMemoryTXTLookup

    @property
    def base_url(self) -> str:
        return self.served.base_url

    @contextlib.contextmanager
    def serve(self, *, port: int | None = None, **overrides: str) -> Iterator[ServedApp]:
        """Another API instance on this stack: this one's environment with ``overrides``
        (its OpenID client is this one's, so its sign-in redirect is not registered), on
        ``port`` when it must know its URL first (to register a client of its own)."""
        env = {
            "API_MODE": self.settings.api_mode,
            "OIDC_ISSUER": self.oidc.issuer,
            "OIDC_CLIENT_ID": self.oidc_client.client_id,
            "OIDC_CLIENT_SECRET": self.oidc_client.client_secret,
            "API_KEYS": ",".join(grant.entry() for grant in self.settings.api_keys),
            "TEMPORAL_ADDRESS": self.temporal_address,
            "TEMPORAL_TASK_QUEUE": self.task_queue,
            "API_CONSISTENCY_TIMEOUT": str(self.settings.api_consistency_timeout),
            "DNS_ZONE": self.settings.dns_zone,
            "API_RESEND_COOLDOWN_SECONDS": str(self.settings.api_resend_cooldown_seconds),
            "WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEYS,
            "SSO_SECRET_KEYS": SSO_SECRET_KEYS,
            "API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION": str(
                self.settings.api_max_webhook_endpoints_per_organization
            ),
            **overrides,
        }
        app = create_app(load_settings(env), self.store.location)
        with serve_asgi(app, port=port) as served:
            yield served

    # --- reading ---------------------------------------------------------------------

    def read_model(self) -> ReadModel:
        return ReadModel(self.store.location)

    async def settle(self) -> None:
        """Wait (up to 10 s) until the projection shows every event written so far."""

        def catch_up() -> None:
            with self.read_model() as rm:
                rm.catch_up(10.0)

        await asyncio.to_thread(catch_up)

    def head(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    async def never_bootstrapped(self, slug: str) -> bool:
        """Temporal holds no bootstrap workflow of ``slug``: none was ever started."""
        try:
            await bootstrap_handle(self.client, slug).describe()
        except RPCError as exc:
            return exc.status == RPCStatusCode.NOT_FOUND
        return False

    def invitation(self, slug: str, email: str) -> InvitationRecord:
        """The latest invitation of ``email`` to ``slug`` (as projected)."""
        with self.read_model() as rm:
            org = rm.organization_by_slug(slug)
            assert org is not None, f"organization {slug} not projected"
            found = [i for i in rm.invitations(org.id) if i.email == email.lower()]
        assert found, f"no invitation of {email} to {slug}"
        return max(found, key=lambda i: i.generation)

    def links(self, email: str) -> list[str]:
        """The accept links mailed to ``email``, oldest first (from the real .eml files)."""
        found: list[tuple[float, str]] = []
        for path in self.mail_dir.glob("*.eml"):
            message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
            if email.lower() not in str(message["To"]).lower():
                continue
            body = message.get_body(preferencelist=("plain",))
            assert body is not None
            for link in LINK.findall(body.get_content()):
                found.append((path.stat().st_mtime_ns, link))
        return [link for _, link in sorted(found)]

    def link(self, email: str) -> str:
        """The newest accept link mailed to ``email``."""
        found = self.links(email)
        assert found, f"no invitation mail to {email} in {self.mail_dir}"
        return found[-1]

    @staticmethod
    def token_of(link: str) -> str:
        return parse_qs(urlsplit(link).query)["token"][0]

    # --- acting as the rest of the platform ------------------------------------------

    async def bootstrap(self, slug: str, *, invitees: int = 2, **extra: Any) -> BootstrapResult:
        """Onboard ``slug`` through its workflow (invitees person{i}@{slug}.example.com,
        the first an admin) and wait until it finished and is projected."""
        spec = bootstrap_input(slug, invitees=invitees, **extra)
        handle = await start_bootstrap(self.client, spec, self.task_queue)
        result = await handle.result()
        await self.wait_for_mail(len(spec.invitees), slug)
        await self.settle()
        return result

    async def wait_for_mail(self, count: int, slug: str) -> None:
        """Wait (up to 10 s) until ``count`` mails went to ``slug``'s invitees."""
        deadline = asyncio.get_running_loop().time() + 10.0
        while True:
            mails = [
                p for p in self.mail_dir.glob("*.eml") if f"@{slug}.example.com" in p.read_text()
            ]
            if len(mails) >= count:
                return
            assert asyncio.get_running_loop().time() < deadline, f"{count} mails to {slug}"
            await asyncio.sleep(0.05)

    async def make_member(self, slug: str, email: str, user_id: str) -> None:
        """Accept ``email``'s invitation to ``slug`` as ``user_id`` (through the workflow)."""
        invitation = self.invitation(slug, email)
        await accept_invitation(
            self.client, invitation.id, self.token_of(self.link(email)), user_id
        )
        await self.settle()

    def organization_id(self, slug: str) -> UUID:
        with self.read_model() as rm:
            org = rm.organization_by_slug(slug)
        assert org is not None
        return org.id

    def invitation_count(self) -> int:
        with self.read_model() as rm:
            return len(rm.invitations(ALL_ORGANIZATIONS))


def stack_activities(
    app: OnboardingApplication,
    mailer: Mailer,
    accept_url_base: str,
    txt: InMemoryTXTLookup | None = None,
) -> OnboardingActivities:
    """The worker's activities as the tests' stacks run them: DNS in memory in the
    worker's zone (customers' TXT records in ``txt``), mail through ``mailer``, accept
    links under ``accept_url_base``, organizations' identity providers on this machine
    over http."""
    links = Links(
        accept_url_base=accept_url_base,
        mail_domain="mail.api.test",
        dns_target="edge.api.test",
        zone=ZONE,
    )
    dns = InMemoryDNSProvider()
    return OnboardingActivities(
        app,
        dns,
        InMemoryDNSVerifier(dns),
        mailer,
        links,
        txt=txt or InMemoryTXTLookup(),
        sso_policy=provider_policy(production=False, allow_private=True),
        sso_keys=SecretKeys.parse(SSO_SECRET_KEYS, "SSO_SECRET_KEYS"),
    )


@contextlib.contextmanager
def a4c_api_run(folder: Path, **env: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``a4c-api run`` as an operator starts it, in development mode on a free port,
    Temporal unreachable, an empty SQLite store in ``folder``, ``env`` on top: the
    process (its output piped) and its base URL, once ``/health`` answers."""
    port = free_port()
    # The test says which proxies it trusts; the shell running the tests does not.
    inherited = {k: v for k, v in os.environ.items() if k != "API_FORWARDED_ALLOW_IPS"}
    process = subprocess.Popen(
        [A4C_API, "run"],
        env={
            **inherited,
            "API_MODE": "development",
            "API_PORT": str(port),
            "SQLITE_DBNAME": str(folder / "events.sqlite"),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
            "LOG_FORMAT": "json",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, timeout=30, what="a4c-api to answer /health")
        yield process, base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _follow(runner: Runner) -> threading.Thread:
    thread = threading.Thread(target=runner.run, name="api-stack-projector", daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="session")
async def api_stack(
    tmp_path_factory: pytest.TempPathFactory,
    temporal_env: WorkflowEnvironment,
    oidc_provider: OIDCProvider,
) -> AsyncIterator[Stack]:
    folder = tmp_path_factory.mktemp("api-stack")
    async with running_stack(folder, temporal_env, oidc_provider) as stack:
        yield stack


@contextlib.asynccontextmanager
async def running_stack(
    folder: Path, temporal_env: WorkflowEnvironment, oidc_provider: OIDCProvider
) -> AsyncIterator[Stack]:
    """Every part of a stack, its store in ``folder``, on the session's Temporal (a task
    queue of its own) and OpenID provider: ``api_stack``, or one a test may fill freely."""
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "ev.db")}
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db)
    runner = Runner(store, RunnerOptions(poll_interval=0.02, gap_grace=0.05))
    projector = _follow(runner)

    client = temporal_env.client
    temporal_address = client.service_client.config.target_host
    task_queue = f"a4c-api-{uuid.uuid4().hex[:10]}"
    mail_dir = folder / "mail"
    mail_dir.mkdir()
    operator_key, grant = new_key("stack-operator", None)
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    oidc_client = oidc_provider.register_client(public_url + OIDC_CALLBACK_PATH)
    settings = load_settings(
        {
            "API_MODE": "development",
            "API_PUBLIC_URL": public_url,
            "OIDC_ISSUER": oidc_provider.issuer,
            "OIDC_CLIENT_ID": oidc_client.client_id,
            "OIDC_CLIENT_SECRET": oidc_client.client_secret,
            "API_KEYS": grant.entry(),
            "TEMPORAL_ADDRESS": temporal_address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "API_CONSISTENCY_TIMEOUT": "10",
            "DNS_ZONE": ZONE,  # the worker's (its Links below)
            # Tests re-send at once; tests/api/test_v1_mail_limits.py serves the limits.
            "API_RESEND_COOLDOWN_SECONDS": "0",
            "WEBHOOK_SECRET_KEYS": WEBHOOK_SECRET_KEYS,
            "SSO_SECRET_KEYS": SSO_SECRET_KEYS,
            # The shared organizations take endpoints in many tests (the authorization
            # matrix alone makes dozens); tests/api/test_v1_webhooks.py serves the limit.
            "API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION": "10000",
        }
    )
    api = create_app(settings, store.location)
    with serve_asgi(api, port=port) as served:
        txt = InMemoryTXTLookup()
        activities = stack_activities(app, FileMailer(mail_dir), served.url(ACCEPT_PATH), txt)
        stack = Stack(
            folder=folder,
            env=env,
            store=store,
            app=app,
            client=client,
            task_queue=task_queue,
            temporal_address=temporal_address,
            mail_dir=mail_dir,
            oidc=oidc_provider,
            oidc_client=oidc_client,
            operator_key=operator_key,
            settings=settings,
            served=served,
            metrics=api.state.metrics,
            txt=txt,
        )
        try:
            async with create_worker(client, task_queue, activities.all()):
                yield stack
        finally:
            runner.stop()
            projector.join(timeout=10)
            app.close()


@pytest.fixture(scope="module")
async def world(api_stack: Stack) -> AsyncIterator[World]:
    """Every caller of the /v1 matrix (operators, each organization's admins, keys and
    members, the anonymous), over the stack's organizations; one per test module."""
    from tests.api.v1_support import keyed_world, organizations_of  # it imports this module

    orgs = await organizations_of(api_stack)
    with keyed_world(api_stack, orgs) as found:
        yield found
