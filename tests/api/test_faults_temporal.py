"""Writes while the Temporal dev server is down: 503 with ``Retry-After``, never
another 5xx, within the bound — and they succeed once it is back, the API not restarted.
Reads of an organization answer from the read models, or 503 when only Temporal could
say whether it exists.

The dev server is the test's own, SIGKILLed (some requests already in flight) and
started again on the same port with its persisted database (``--db-filename``); the
stack (worker, projector, a4c-api) stays up throughout. An API started while Temporal
was never reached answers the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from tests.api.conftest import Stack, running_stack, unique_slug
from tests.api.fault_support import BOUND, assert_no_other_5xx, assert_unavailable, timed
from tests.api.test_pages_journey import CSRF_INPUT, INVITATION_INPUT, dev_sign_in, open_link
from tests.api.test_pages_sso_test import organization_with_pending_sso
from tests.api.v1_support import onboarding
from tests.servers.http import serve_asgi
from tests.servers.oidc import OIDCProvider
from tests.servers.temporal import find_temporal_cli
from tests.servers.test_oidc import Authorization, sign_in
from tests.support import free_port, wait_for

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.pages.paths import SIGN_IN_DEV_PATH, SSO_TEST_PATH
from a4c_api.settings import load_settings
from a4c_projector.dialects.connection import connect
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.readmodel.tables import ensure_schema
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.converter import DATA_CONVERTER
from a4c_worker.search_attributes import dev_server_args

# The "continue to your provider" link of the single sign-on test page.
READY_LINK = re.compile(r'id="continue" href="([^"]+)"')


@dataclass
class Temporal:
    """A dev server of the test's own, its history in ``db`` (kept across restarts)."""

    port: int
    db: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(find_temporal_cli(), "server", "start-dev", "--headless", "--ip", "127.0.0.1"),
                *("--port", str(self.port), "--db-filename", str(self.db)),
                *("--log-level", "error", *dev_server_args()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.listening, timeout=30, what="the Temporal dev server")

    def listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None


@pytest.fixture
def temporal(tmp_path: Path) -> Iterator[Temporal]:
    server = Temporal(free_port(), tmp_path / "temporal.db")
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.kill()


@contextlib.asynccontextmanager
async def stack_on(temporal: Temporal, folder: Path, oidc: OIDCProvider) -> AsyncIterator[Stack]:
    client = await Client.connect(temporal.address, data_converter=DATA_CONVERTER)
    async with running_stack(folder, WorkflowEnvironment.from_client(client), oidc) as stack:
        yield stack


@dataclass
class Writes:
    """One of each write the API takes, ready to send (the accept form signed in)."""

    stack: Stack
    http: httpx.AsyncClient
    browser: httpx.Client  # the invitee's, signed in on the accept page
    accept_form: dict[str, str]
    slug: str
    invitation_ids: list[str]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.stack.operator_key}"}

    def all(self, new_slug: str) -> dict[str, Callable[[], Awaitable[httpx.Response]]]:
        base = f"/v1/organizations/{self.slug}"
        resend, revoke = self.invitation_ids
        invitee = {
            "email": f"late@{self.slug}.example.com",
            "role": "member",
            "first_name": "Late",
            "last_name": "Comer",
        }
        return {
            "onboard": lambda: self.http.post(
                "/v1/organizations", json=onboarding(new_slug), headers=self.headers
            ),
            "invite": lambda: self.http.post(
                f"{base}/invitations", json=invitee, headers=self.headers
            ),
            "resend": lambda: self.http.post(
                f"{base}/invitations/{resend}/resend", json={}, headers=self.headers
            ),
            "revoke": lambda: self.http.post(
                f"{base}/invitations/{revoke}/revoke", json={"reason": "test"}, headers=self.headers
            ),
            "cancel": lambda: self.http.post(
                f"/v1/organizations/{new_slug}/cancel",
                json={"reason": "test"},
                headers=self.headers,
            ),
            "accept": lambda: asyncio.to_thread(
                self.browser.post, ACCEPT_PATH, data=self.accept_form
            ),
        }


async def prepared_writes(stack: Stack, http: httpx.AsyncClient, browser: httpx.Client) -> Writes:
    slug = unique_slug("fault")
    await stack.bootstrap(slug, invitees=3)
    emails = [f"person{i}@{slug}.example.com" for i in range(3)]
    signed_in = await asyncio.to_thread(
        lambda: dev_sign_in(browser, open_link(browser, stack.link(emails[0])).text, emails[0])
    )
    form = {
        "csrf": CSRF_INPUT.findall(signed_in.text)[0],
        "invitation_id": INVITATION_INPUT.findall(signed_in.text)[0],
    }
    ids = [str(stack.invitation(slug, email).id) for email in emails[1:]]
    return Writes(stack, http, browser, form, slug, ids)


async def test_writes_while_temporal_is_down_are_503s_and_succeed_once_it_is_back(
    temporal: Temporal, tmp_path: Path, oidc_provider: OIDCProvider
) -> None:
    async with (
        stack_on(temporal, tmp_path, oidc_provider) as stack,
        httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http,
    ):
        with httpx.Client(base_url=stack.base_url, follow_redirects=True, timeout=60) as browser:
            writes = await prepared_writes(stack, http, browser)
            during = writes.all(unique_slug("during"))
            # Some requests are already in flight when the server dies.
            in_flight = [asyncio.ensure_future(timed(send())) for send in during.values()]
            await asyncio.sleep(0.01)
            temporal.kill()
            answers = await asyncio.gather(*in_flight)
            assert_no_other_5xx(list(answers))
            # While it is down, every write is a 503 with Retry-After, within the bound.
            for kind, send in during.items():
                response = await timed(send())
                assert_unavailable(response, page=kind == "accept")
            # Reads: an organization the read models hold is answered from them; one
            # they do not hold may be a bootstrap only Temporal knows of: not found is
            # not known, and it is no 200 with nothing in it either.
            known = await timed(
                http.get(f"/v1/organizations/{writes.slug}", headers=writes.headers)
            )
            assert known.status_code == 200 and known.json()["organization"] is not None
            nobody = f"/v1/organizations/{unique_slug('nobody')}"
            assert_unavailable(await timed(http.get(nobody, headers=writes.headers)))
            temporal.start()
            # Back: each write succeeds, the API not restarted; 503s meanwhile only.
            after = writes.all(unique_slug("after"))
            expected = {
                "onboard": {202},
                "invite": {201},
                "resend": {200},
                "revoke": {200},
                "cancel": {200, 409},  # cancelled, or already past the point of no return
                "accept": {200},
            }
            seen: dict[str, list[int]] = {kind: [] for kind in after}
            deadline = time.monotonic() + 60
            for kind, send in after.items():
                while True:
                    # A write that went through waits for the read models (read-your-
                    # writes, the stack's API_CONSISTENCY_TIMEOUT, 10 s) as ever.
                    response = await timed(send(), BOUND + 10)
                    seen[kind].append(response.status_code)
                    if response.status_code in expected[kind]:
                        break
                    assert_unavailable(response, page=kind == "accept")
                    assert time.monotonic() < deadline, f"{kind} never recovered: {seen}"
                    await asyncio.sleep(0.5)
            assert "You joined" in response.text


async def test_writes_before_temporal_was_ever_reached_are_503s_with_retry_after(
    tmp_path: Path,
) -> None:
    """The API starts while Temporal is down (it connects in the background)."""
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db)
    key, grant = new_key("operator", None)
    settings = load_settings(
        {
            "API_MODE": "development",
            "API_KEYS": grant.entry(),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
        }
    )
    with serve_asgi(create_app(settings, store.location)) as api:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as http:
            response = await timed(
                http.post(
                    "/v1/organizations",
                    json=onboarding(unique_slug("early")),
                    headers={"Authorization": f"Bearer {key}"},
                )
            )
    assert_unavailable(response)


async def test_the_sso_test_pages_answer_503_while_temporal_is_down(
    temporal: Temporal, tmp_path: Path, oidc_provider: OIDCProvider, own_provider: OIDCProvider
) -> None:
    """An admin's single sign-on test while the dev server is down: the page that asks the
    configuration where it is, and the provider's return that reports the sign-in (seen
    in the soak as a 500), answer the unavailable page (503, Retry-After)."""
    async with stack_on(temporal, tmp_path, oidc_provider) as stack:
        slug, admin, _ = await organization_with_pending_sso(stack, own_provider)
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as browser:
            page = await browser.get(f"{SSO_TEST_PATH}/{slug}")
            form = {"csrf": CSRF_INPUT.findall(page.text)[0], "email": admin}
            ready = await browser.post(SIGN_IN_DEV_PATH, data=form, follow_redirects=True)
            authorize = html.unescape(READY_LINK.findall(ready.text)[0])
            params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
            async with httpx.AsyncClient(timeout=60) as at_provider:
                signed = await sign_in(at_provider, own_provider, Authorization(params, ""), admin)
            back = urlsplit(signed.headers["location"])
            temporal.kill()
            answers = [
                await browser.get(f"{back.path}?{back.query}"),
                await browser.get(f"{SSO_TEST_PATH}/{slug}"),
            ]
    for answer in answers:
        assert_unavailable(answer, page=True)
