"""Shared set-up for the workflow tests: an app, in-memory providers, a running worker.

Most workflow tests use the real Temporal dev server with in-memory DNS and mail (the
provider seams, where faults are injected) and a SQLite event store in the test's
temporary folder; duplicate and retry tests pass a PostgreSQL app instead.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from string import ascii_uppercase
from typing import Any, TypeVar, overload
from uuid import UUID

import httpx
from pydantic import SecretStr
from temporalio.client import Client
from tests.servers.bind import BindServer
from tests.servers.oidc import OIDCClient, OIDCProvider
from tests.servers.smtp import SMTPTestServer
from tests.servers.test_oidc import authorization, code_from, sign_in
from tests.support import TOKEN_SECRET, wait_for_async

from a4c_domain import OnboardingApplication
from a4c_domain.base import DomainAggregate
from a4c_outbound.transport import OutboundPolicy
from a4c_sso.discovery import provider_policy
from a4c_worker.activities import Links, OnboardingActivities
from a4c_worker.activities.base import PRODUCTION_SSO_POLICY
from a4c_worker.client import BootstrapHandle
from a4c_worker.providers.dns import (
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    InMemoryTXTLookup,
    Nameserver,
    ResolverDNSVerifier,
    ResolverSettings,
    RFC2136DNSProvider,
    RFC2136Settings,
)
from a4c_worker.providers.email import InMemoryMailer, OutgoingMail, SMTPMailer, SMTPSettings
from a4c_worker.sealing import SecretKeys
from a4c_worker.worker import create_worker
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import (
    BootstrapInput,
    ResendLimit,
    StepPolicy,
)
from a4c_worker.workflows.sso_models import SSOTestSignIn

App = TypeVar("App", bound=OnboardingApplication)
ZONE = "orgs.a4c.test"
LINKS = Links(
    accept_url_base="http://localhost:8080/invitations/accept",
    mail_domain="mail.a4c.test",
    dns_target="edge.a4c.test",
    zone=ZONE,
)
# Every wait shortened: sub-second back-off, a few attempts, short timeouts.
FAST_STEPS = StepPolicy(timeout_seconds=5, retry_initial_interval_seconds=0.1, max_attempts=3)
# Re-sends as fast and as often as a test asks (tests of the limit set their own).
UNLIMITED_RESENDS = ResendLimit(cooldown_seconds=0, max_resends=1_000)


@overload
def sqlite_app(folder: Path) -> OnboardingApplication: ...
@overload
def sqlite_app(folder: Path, app_class: type[App]) -> App: ...
def sqlite_app(
    folder: Path, app_class: type[OnboardingApplication] = OnboardingApplication
) -> OnboardingApplication:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(folder / "ev.db")}
    return app_class(env, token_secret=TOKEN_SECRET)


def bootstrap_input(
    slug: str, *, invitees: int = 2, domain: bool = True, **extra: Any
) -> BootstrapInput:
    fields: dict[str, Any] = {
        "name": f"Org {slug}",
        "slug": slug,
        "org_type": "provider",
        "tags": ["test"],
        "domain": f"{slug}.{ZONE}" if domain else None,
        "invitees": [
            {
                "email": f"person{i}@{slug}.example.com",
                "role": "admin" if i == 0 else "member",
                "first_name": f"First {ascii_uppercase[i % 26]}",
                "last_name": f"Last {ascii_uppercase[i % 26]}",
            }
            for i in range(invitees)
        ],
        "propagation_wait_seconds": 0.2,
        "dns_verify_attempts": 3,
        "dns_verify_initial_interval_seconds": 0.1,
        "invitation_ttl_seconds": 3600,
        "reminder_before_seconds": 600,
        "activities": FAST_STEPS,
        "resends": UNLIMITED_RESENDS,
    }
    fields.update(extra)
    return BootstrapInput.model_validate(fields)


# The tests' SSO key ring: what the API seals organizations' client secrets with and
# the worker opens them with.
SSO_SECRET_KEYS = "s1:" + base64.b64encode(b"tests-sso-client-secret-key-32b!").decode()
SSO_KEYS = SecretKeys.parse(SSO_SECRET_KEYS, "SSO_SECRET_KEYS")


async def provider_sign_in(
    provider: OIDCProvider, client: OIDCClient, email: str, generation: int = 1
) -> SSOTestSignIn:
    """A real code-flow sign-in at ``provider`` as ``email``, as the a4c test page gets
    it back: its code, the PKCE verifier, the redirect URI and nonce it started with."""
    auth = authorization(client)
    async with httpx.AsyncClient() as http:
        code = code_from(await sign_in(http, provider, auth, email), auth)
    return SSOTestSignIn(
        generation=generation,
        code=code,
        code_verifier=auth.verifier,
        redirect_uri=auth.params["redirect_uri"],
        nonce=auth.params["nonce"],
    )


def cover_with_sso(
    app: OnboardingApplication, org: UUID, domain: str, issuer: str, client: OIDCClient
) -> None:
    """What the e-mail domain and SSO configuration workflows record, in short."""
    app.request_email_domain_verification(organization_id=org, domain=domain)
    app.verify_email_domain(organization_id=org, domain=domain)
    app.configure_sso(
        organization_id=org,
        issuer=issuer,
        client_id=client.client_id,
        client_secret=SSO_KEYS.seal(client.client_secret),
    )
    app.record_sso_test(organization_id=org, generation=1, subject="tester", email_domain=domain)
    app.activate_sso(
        organization_id=org, generation=1, authorization_endpoint=issuer + "/authorize"
    )


@dataclass
class Flows:
    """Everything a workflow test touches."""

    app: OnboardingApplication
    client: Client
    task_queue: str
    dns: InMemoryDNSProvider = field(default_factory=InMemoryDNSProvider)
    mailer: InMemoryMailer = field(default_factory=InMemoryMailer)
    verifier: InMemoryDNSVerifier | None = None
    links: Links = LINKS
    txt: InMemoryTXTLookup = field(default_factory=InMemoryTXTLookup)
    sso_policy: OutboundPolicy = PRODUCTION_SSO_POLICY
    sso_keys: SecretKeys = field(default_factory=lambda: SSO_KEYS)

    def __post_init__(self) -> None:
        if self.verifier is None:
            self.verifier = InMemoryDNSVerifier(self.dns)

    def activities(self) -> OnboardingActivities:
        assert self.verifier is not None
        return OnboardingActivities(
            self.app,
            self.dns,
            self.verifier,
            self.mailer,
            self.links,
            txt=self.txt,
            sso_policy=self.sso_policy,
            sso_keys=self.sso_keys,
        )

    @asynccontextmanager
    async def worker(self, app: OnboardingApplication | None = None) -> AsyncIterator[None]:
        acts = self.activities()
        if app is not None:
            acts.app = app
        async with create_worker(self.client, self.task_queue, acts.all()):
            yield

    def use_bind(self, bind: BindServer) -> None:
        """Publish to and verify at a real BIND (RFC 2136), its zone as the worker's."""
        self.links = self.links.model_copy(update={"zone": bind.zone.rstrip(".")})
        # The slots are typed as the doubles most tests drive; these tests put real ones in.
        self.dns = RFC2136DNSProvider(  # type: ignore[assignment]
            RFC2136Settings(
                server=bind.host,
                port=bind.port,
                zone=bind.zone,
                key_name=bind.key_name,
                key_secret=SecretStr(bind.secret),
                key_algorithm=bind.algorithm,
                timeout=5,
            )
        )
        self.verifier = ResolverDNSVerifier(  # type: ignore[assignment]  # as above
            ResolverSettings(nameservers=[Nameserver(host=bind.host, port=bind.port)])
        )

    def events(self) -> list[tuple[str, UUID, int, dict[str, str]]]:
        """(event class, aggregate id, version, metadata) of every stored event, in order."""
        out = []
        for n in self.app.recorder.select_notifications(start=1, limit=100_000):
            ev = self.app.mapper.to_domain_event(n)
            assert isinstance(ev, DomainAggregate.Event)
            out.append(
                (type(ev).__qualname__, ev.originator_id, ev.originator_version, ev.metadata)
            )
        return out

    def invitation_mails(self, address: str) -> list[OutgoingMail]:
        """The invitation and reminder mails ``address`` received (not the welcome mail
        an admin invitee also gets): the ones with a link."""
        kinds = ("<invitation.", "<reminder.")
        return [m for m in self.mailer.sent_to(address) if (m.message_id or "").startswith(kinds)]

    def event_names(self, aggregate_id: UUID) -> list[str]:
        return [name for name, agg, _, _ in self.events() if agg == aggregate_id]

    def event_counts(self) -> Counter[str]:
        return Counter(name for name, _, _, _ in self.events())


COMMANDS = (
    "register_organization",
    "configure_dns",
    "verify_dns",
    "remove_dns",
    "activate",
    "deactivate",
    "offboard",
    "invite",
    "record_email_sent",
    "record_email_failed",
    "record_organization_email_sent",
    "revoke_invitation",
    "accept_invitation",
    "expire_invitation",
    "reissue_token",
)


class FaultyApp(OnboardingApplication):
    """The real application with faults at the command seam.

    ``fail(command, exc, after_commit=...)``: the next call raises ``exc``, either before
    doing anything or after its events are committed (the "acted, then failed to report"
    case a retried activity must survive). ``hang(command)``: the next call commits, then
    blocks until ``release()``; with ``before_commit=True`` it blocks first, then commits.
    """

    # eventsourcing names the events table after the application: keep the real one's.
    name = OnboardingApplication.name

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._faults: dict[str, list[tuple[BaseException | None, bool]]] = {}
        self.released = threading.Event()
        self.hanging = threading.Event()
        self.calls: Counter[str] = Counter()
        for name in COMMANDS:
            setattr(self, name, self._wrap(name, getattr(self, name)))

    def fail(
        self, command: str, exc: BaseException, *, after_commit: bool = False, times: int = 1
    ) -> None:
        self._faults.setdefault(command, []).extend([(exc, after_commit)] * times)

    def hang(self, command: str, *, before_commit: bool = False) -> None:
        """The next call blocks until ``release()``: after committing, or before it."""
        self._faults.setdefault(command, []).append((None, not before_commit))

    def release(self) -> None:
        self.released.set()

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(**fields: Any) -> Any:
            self.calls[name] += 1
            queue = self._faults.get(name)
            fault = queue.pop(0) if queue else None
            if fault is not None and not fault[1]:
                if fault[0] is None:
                    self.hanging.set()
                    self.released.wait(60)
                    return method(**fields)
                raise fault[0]
            result = method(**fields)
            if fault is not None:
                exc, _ = fault
                if exc is None:
                    self.hanging.set()
                    self.released.wait(60)
                    raise RuntimeError(f"{name} hung and was released")
                raise exc
            return result

        return wrapper


async def wait_for_step(handle: BootstrapHandle, step: str) -> None:
    """Poll the progress query until the bootstrap is at ``step``."""

    async def at_step() -> bool:
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
        return progress.current_step == step

    await wait_for_async(at_step, what=f"the bootstrap to reach {step}", interval=0.05)


def smtp_mailer(server: SMTPTestServer) -> SMTPMailer:
    """A mailer delivering to the aiosmtpd test server in clear text, with short timeouts."""
    return SMTPMailer(
        SMTPSettings(
            host=server.host,
            port=server.port,
            security="none",
            timeout=5,
            from_address="a4c@mail.a4c.test",
        )
    )


@asynccontextmanager
async def sso_flows(folder: Path, client: Client, task_queue: str) -> AsyncIterator[Flows]:
    """Flows on a SQLite store in ``folder``, their worker running, which takes
    organizations' providers on this machine over http (the test providers)."""
    app = sqlite_app(folder)
    running = Flows(app=app, client=client, task_queue=task_queue)
    running.sso_policy = provider_policy(production=False, allow_private=True)
    try:
        async with running.worker():
            yield running
    finally:
        app.close()
