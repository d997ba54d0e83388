"""What the delivery tests share: a store with organizations and endpoints, projected; the
daemon in-process (on a thread with its own event loop) or as a real process; the
public events an endpoint should get, read from the projector's feed. The fixtures over
them (``world``, ``running``) are in this directory's conftest."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from a4c_domain import OnboardingApplication
from a4c_domain.errors import ConcurrencyError
from a4c_outbound.transport import OutboundPolicy
from a4c_projector.queries import ReadModel
from a4c_webhooks.daemon import Daemon, DaemonOptions
from a4c_webhooks.sealing import SecretKeys
from a4c_webhooks.signing import new_secret
from tests.projector.conftest import ROOT, DaemonProcess, Store, catch_up_past_gaps, make_pg_store
from tests.webhooks.receiver import Receiver

TEST_SCHEDULE = (0.0, 0.2, 0.4)  # three attempts, then the stream parks


def secret_keys_text() -> str:
    return "k1:" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class World:
    store: Store
    keys_text: str
    organizations: list[UUID] = field(default_factory=list)

    @property
    def app(self) -> OnboardingApplication:
        return self.store.app

    @property
    def keys(self) -> SecretKeys:
        return SecretKeys.parse(self.keys_text)

    def organization(self, slug: str) -> UUID:
        view = self.app.register_organization(
            name=slug.title(), slug=slug, org_type="provider", tags=[]
        )
        self.organizations.append(view.id)
        return view.id

    def activity(self, organization_id: UUID, n: int, prefix: str = "user") -> None:
        """``n`` public events of the organization (invitations), each retried while
        another writer wins the race for the organization (two writers of one
        organization conflict, by design)."""
        for i in range(n):
            while True:
                try:
                    self.app.invite(
                        organization_id=organization_id,
                        email=f"{prefix}{i}@example.com",
                        role="member",
                        first_name="A",
                        last_name="B",
                    )
                    break
                except ConcurrencyError:
                    continue

    def endpoint(
        self,
        url: str,
        name: str = "hook",
        *,
        owner_id: UUID | None = None,
        organization_id: UUID | None = None,
        event_types: list[str] | None = None,
    ) -> tuple[UUID, str]:
        """A new endpoint and its secret (in clear, as the receiver holds it)."""
        secret = new_secret()
        view = self.app.add_webhook_endpoint(
            owner_id=owner_id,
            name=name,
            url=url,
            event_types=event_types,
            organization_id=organization_id,
            description="",
            secret=self.keys.seal(secret),
        )
        return view.id, secret

    def subscribed(
        self, receiver: Receiver, events: int, *, owned: bool = False
    ) -> tuple[UUID, UUID]:
        """Organization ``alpha`` with ``events`` public events, projected, and an endpoint
        delivering them to ``receiver``, which holds its secret (``owned``: alpha's own
        endpoint, else the platform's): ``(alpha, endpoint)``."""
        alpha = self.organization("alpha")
        endpoint, secret = self.endpoint(receiver.url, owner_id=alpha if owned else None)
        receiver.secrets = [secret]
        self.activity(alpha, events)
        self.project()
        return alpha, endpoint

    def project(self) -> None:
        projector = self.store.projector()
        try:
            catch_up_past_gaps(projector)
        finally:
            projector.close()

    def feed(self, organization_id: UUID | None = None, after: int = 0) -> list[str]:
        """Event ids of the projected public events (one organization's), in order."""
        with ReadModel(self.store.location) as read_model:
            rows = read_model.public_events(after, 10_000, organization_id=organization_id)
        return [json.loads(body)["id"] for _, body in rows]

    def enabled_since(self, endpoint_id: UUID) -> int:
        with ReadModel(self.store.location) as read_model:
            row = read_model.webhook_endpoint(endpoint_id)
        assert row is not None, "the endpoint is not projected"
        return row.enabled_since

    def expected(self, endpoint_id: UUID, organization_id: UUID | None = None) -> list[str]:
        """What the endpoint should get (of one organization): the feed after it was
        enabled."""
        return self.feed(organization_id, after=self.enabled_since(endpoint_id))

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **self.store.env,
            "WEBHOOK_SECRET_KEYS": self.keys_text,
            "WEBHOOKS_MODE": "development",
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "WEBHOOK_RETRY_SCHEDULE": ",".join(f"{d}s" for d in TEST_SCHEDULE),
            "WEBHOOK_POLL_INTERVAL": "0.1",
            "WEBHOOK_TIMEOUT": "2",
            "WEBHOOK_HTTP_PORT": "0",
            "LOG_FORMAT": "text",
            **extra,
        }


def make_world(schema: str, **env: str) -> World:
    return World(make_pg_store(schema, **env), secret_keys_text())


class RecordingDisabler:
    """Stands in for the worker: records each disable asked for."""

    def __init__(self) -> None:
        self.requests: list[tuple[UUID, str, list[str]]] = []

    async def disable(self, endpoint_id: UUID, reason: str, notify: list[str]) -> None:
        self.requests.append((endpoint_id, reason, notify))


class RunningDaemon:
    """A :class:`Daemon` on a thread with its own event loop, stopped like SIGTERM."""

    def __init__(self, world: World, **options: Any) -> None:
        self.disabler = RecordingDisabler()
        settings: dict[str, Any] = {
            "schedule": TEST_SCHEDULE,
            "disable_after": 3600.0,
            "poll_interval": 0.05,
            "shutdown_grace": 5.0,
            **options,
        }
        self.daemon = Daemon(
            world.store.location,
            world.keys,
            OutboundPolicy(allow_http=True, allow_private=True, timeout=2.0),
            DaemonOptions(**settings),
            self.disabler,
            admin_emails=lambda organization_id: [f"admin@{organization_id}.example"],
        )
        self._loop = asyncio.new_event_loop()
        self.result: list[int] = []
        self._thread = threading.Thread(target=self._main, name="daemon", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        self.result.append(self._loop.run_until_complete(self.daemon.run()))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self.daemon.stop)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the daemon did not stop"
        self._loop.close()


def webhooks_cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``python -m a4c_webhooks ARGS`` from the source tree, with exactly ``env``."""
    return subprocess.Popen(
        [sys.executable, "-m", "a4c_webhooks", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src"), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = webhooks_cli(env, *args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


class WebhooksDaemon(DaemonProcess):
    """``a4c-webhooks run`` as a real process, with exactly ``env``."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(webhooks_cli(env, "run"))
