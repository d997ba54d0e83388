"""One tenant's writes never slow another tenant's reads while the projection lags.

A store of its own whose projector is stopped (run only to set up, and to end the
waits), a worker writing to it, and an API serving it: tenant A floods it with no-op
re-POSTs of a pending invitation and with real invitations, each of which waits for a
projection that does not move; tenant B's reads and ``/ready`` must answer before any
of A's waits ends. Ordering only: A's waits end when the test runs the projector.
One caller's waits are bounded (``API_MAX_WAITS_PER_PRINCIPAL``): an API key's, and a
person's on the accept page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from tests.api.conftest import LINK, stack_activities
from tests.servers.http import ServedApp, serve_asgi
from tests.support import TOKEN_SECRET, wait_for_async

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.pages.paths import SIGN_IN_DEV_PATH
from a4c_api.settings import load_settings
from a4c_api.v1.common import CONSISTENT_HEADER
from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.tables import ensure_schema
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.providers.email import FileMailer
from a4c_worker.worker import create_worker

# Long enough that no wait of the test ends by timing out: the test ends them.
WAIT_SECONDS = "60"
NO_OP_REPOSTS = 40
REAL_WRITES = 4  # within the default bound of waits per caller
B_ROUNDS = 5
PENDING = {
    "email": "pending@a.example.com",
    "role": "member",
    "first_name": "Pen",
    "last_name": "D",
}


@dataclass
class Lagging:
    """A store, a worker writing to it, and tenants A and B; its projector stopped."""

    store: EventStore
    app: OnboardingApplication
    env: dict[str, str]
    a: UUID
    b: UUID
    key_a: str
    key_b: str
    keys: str  # API_KEYS
    mail_dir: Path

    @contextlib.contextmanager
    def projecting(self) -> Iterator[None]:
        """The projector running for the block (and caught up when the block starts)."""
        runner = Runner(self.store, RunnerOptions(poll_interval=0.02, gap_grace=0.05))
        thread = threading.Thread(target=runner.run, name="lagging-projector", daemon=True)
        thread.start()
        try:
            yield
        finally:
            runner.stop()
            thread.join(10)

    def catch_up(self) -> None:
        with ReadModel(self.store.location) as rm:
            rm.catch_up(10.0)

    def lag(self) -> None:
        """Write an event the stopped projector will not apply: every wait now waits."""
        self.app.register_organization(
            name="Unprojected", slug=f"c-{uuid.uuid4().hex[:8]}", org_type="provider"
        )

    @contextlib.contextmanager
    def serve(self, **overrides: str) -> Iterator[ServedApp]:
        env = {
            "API_MODE": "development",
            "API_KEYS": self.keys,
            "API_CONSISTENCY_TIMEOUT": WAIT_SECONDS,
            **self.env,
            **overrides,
        }
        with serve_asgi(create_app(load_settings(env), self.store.location)) as served:
            yield served


@pytest.fixture
async def lagging(tmp_path: Path, temporal_env: WorkflowEnvironment) -> AsyncIterator[Lagging]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "ev.db")}
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db)
    orgs = []
    for name in ("a", "b"):
        org = app.register_organization(
            name=f"Tenant {name.upper()}",
            slug=f"{name}-{uuid.uuid4().hex[:8]}",
            org_type="provider",
        )
        app.activate(organization_id=org.id)
        orgs.append(org.id)
    a, b = orgs
    app.invite(
        organization_id=a,
        email=PENDING["email"],
        role="member",
        first_name=PENDING["first_name"],
        last_name=PENDING["last_name"],
    )
    app.invite(
        organization_id=b,
        email="someone@b.example.com",
        role="admin",
        first_name="B",
        last_name="Admin",
    )
    key_a, grant_a = new_key("tenant-a", a)
    key_b, grant_b = new_key("tenant-b", b)
    client = temporal_env.client
    task_queue = f"a4c-lagging-{uuid.uuid4().hex[:10]}"
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    activities = stack_activities(
        app, FileMailer(mail_dir), "http://127.0.0.1:9/invitations/accept"
    )
    lagging = Lagging(
        store=store,
        app=app,
        env={
            **env,
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": task_queue,
        },
        a=a,
        b=b,
        key_a=key_a,
        key_b=key_b,
        keys=f"{grant_a.entry()},{grant_b.entry()}",
        mail_dir=mail_dir,
    )
    with lagging.projecting():
        await asyncio.to_thread(lagging.catch_up)
    lagging.lag()
    try:
        async with create_worker(client, task_queue, activities.all()):
            yield lagging
    finally:
        app.close()


def _slug(lagging: Lagging, organization_id: UUID) -> str:
    with ReadModel(lagging.store.location) as rm:
        org = rm.organization(organization_id)
    assert org is not None
    return org.slug


def _person(n: int) -> dict[str, str]:
    return {
        "email": f"new{n}-{uuid.uuid4().hex[:6]}@a.example.com",
        "role": "member",
        "first_name": "New",
        "last_name": "Person",
    }


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/ready")).status_code == 200


async def _mailed(lagging: Lagging, count: int) -> bool:
    return len(list(lagging.mail_dir.glob("*.eml"))) >= count


Answer = asyncio.Task[httpx.Response]


@dataclass
class Tenants:
    """An HTTP client of the lagging API, as tenant A and as tenant B."""

    client: httpx.AsyncClient
    lagging: Lagging

    def _as(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    def invite_in_a(self, person: dict[str, str]) -> Answer:
        slug = _slug(self.lagging, self.lagging.a)
        return asyncio.create_task(
            self.client.post(
                f"/v1/organizations/{slug}/invitations",
                json=person,
                headers=self._as(self.lagging.key_a),
            )
        )

    def reads_of_b(self) -> dict[str, Answer]:
        slug = _slug(self.lagging, self.lagging.b)
        headers = self._as(self.lagging.key_b)
        get = self.client.get
        return {
            "B's organization": asyncio.create_task(
                get(f"/v1/organizations/{slug}", headers=headers)
            ),
            "B's invitations": asyncio.create_task(
                get(f"/v1/organizations/{slug}/invitations", headers=headers)
            ),
            "/ready": asyncio.create_task(get("/ready")),
        }


@contextlib.asynccontextmanager
async def tenants(lagging: Lagging, **overrides: str) -> AsyncIterator[Tenants]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    with lagging.serve(**overrides) as served:
        async with httpx.AsyncClient(
            base_url=served.base_url, timeout=120.0, limits=limits
        ) as client:
            await wait_for_async(lambda: _ready(client), what="the API to be ready")
            yield Tenants(client, lagging)


async def _issued(lagging: Lagging, tenants: Tenants, count: int) -> list[Answer]:
    """``count`` real invitations by tenant A, once their workflows issued and mailed
    them: their requests are then waiting for the stopped projector."""
    writes = [tenants.invite_in_a(_person(n)) for n in range(count)]
    await wait_for_async(lambda: _mailed(lagging, count), what="A's invitations mailed")
    return writes


async def test_a_flood_of_one_tenants_writes_never_delays_another_tenants_reads(
    lagging: Lagging,
) -> None:
    async with tenants(lagging) as both:
        writes = await _issued(lagging, both, REAL_WRITES)
        no_ops = [both.invite_in_a(PENDING) for _ in range(NO_OP_REPOSTS)]
        try:
            # B reads, round after round, while A's requests wait: each round must answer
            # before any of A's waits ends (they end only when the projector runs).
            for _ in range(B_ROUNDS):
                reads = both.reads_of_b()
                ended = await _ended_before(set(reads.values()), no_ops, writes)
                assert not ended, (
                    f"{len(ended)} of tenant A's requests ended their wait for the projection "
                    f"(A4C-Consistent: {sorted({r.headers.get(CONSISTENT_HEADER) for r in ended})})"
                    " before tenant B's reads and /ready answered"
                )
                for what, task in reads.items():
                    assert task.result().status_code == 200, (what, task.result().text)
            # The no-op re-POSTs wrote nothing: they answer with the projector stopped.
            for answer in await asyncio.gather(*no_ops):
                assert answer.status_code == 200, answer.text
                assert answer.headers[CONSISTENT_HEADER] == "true", "shown already"
            assert not any(task.done() for task in writes), "A's writes did not wait"
        finally:
            with lagging.projecting():  # A's waits end now
                answers = await asyncio.gather(*writes, *no_ops, return_exceptions=True)
    for written in answers[:REAL_WRITES]:
        assert isinstance(written, httpx.Response), written
        assert written.status_code == 201, written.text
        assert written.headers[CONSISTENT_HEADER] == "true", "A's writes waited until shown"


async def _ended_before(
    first: set[Answer], no_ops: list[Answer], waits: list[Answer]
) -> list[httpx.Response]:
    """Wait until every task of ``first`` is done; the answers of A's requests that
    ended a wait meanwhile (a write's, or a no-op's that says it timed out)."""
    ended: list[httpx.Response] = []
    watched = first | {task for task in [*no_ops, *waits] if not task.done()}
    while not all(task.done() for task in first) and not ended:
        done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        for task in done - first:
            answer = task.result()
            if task in waits or answer.headers.get(CONSISTENT_HEADER) != "true":
                ended.append(answer)
    return ended


async def test_one_caller_waits_only_so_many_times_at_once(lagging: Lagging) -> None:
    """Past ``API_MAX_WAITS_PER_PRINCIPAL`` waits of one caller, its writes answer at
    once, saying the read models do not show them yet; the waits within the bound end
    when the projection shows their writes."""
    bound = 2
    async with tenants(lagging, API_MAX_WAITS_PER_PRINCIPAL=str(bound)) as both:
        writes = await _issued(lagging, both, bound + 2)
        try:
            pending = set(writes)
            while len(pending) > bound:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in set(writes) - pending:
                answer = task.result()
                assert answer.status_code == 201, answer.text
                assert answer.headers[CONSISTENT_HEADER] == "false", "answered without waiting"
        finally:
            with lagging.projecting():
                answers = await asyncio.gather(*pending, return_exceptions=True)
    for waited in answers:
        assert isinstance(waited, httpx.Response), waited
        assert waited.status_code == 201, waited.text
        assert waited.headers[CONSISTENT_HEADER] == "true", "waited until shown"


# --- the accept page: its wait counts against the person who signed in -----------------

CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')
INVITATION_INPUT = re.compile(r'name="invitation_id" value="([^"]+)"')


def _mailed_links(lagging: Lagging, email: str) -> list[str]:
    """The accept links mailed to ``email`` (from the real .eml files), in any order."""
    found = []
    for path in lagging.mail_dir.glob("*.eml"):
        message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        body = message.get_body(preferencelist=("plain",))
        if body is not None and email in str(message["To"]).lower():
            found.extend(LINK.findall(body.get_content()))
    return found


async def _accept_form(browser: httpx.AsyncClient, link: str, email: str) -> dict[str, str]:
    """``browser`` opens ``link`` and signs in as ``email`` (the dev sign-in); the accept
    form its page then shows."""
    token = parse_qs(urlsplit(link).query)["token"][0]
    opened = await browser.get(ACCEPT_PATH, params={"token": token})
    signed_in = await browser.post(
        SIGN_IN_DEV_PATH, data={"csrf": CSRF_INPUT.findall(opened.text)[0], "email": email}
    )
    return {
        "csrf": CSRF_INPUT.findall(signed_in.text)[0],
        "invitation_id": INVITATION_INPUT.findall(signed_in.text)[0],
    }


async def test_the_accept_page_waits_within_the_persons_own_bound(lagging: Lagging) -> None:
    """One person accepting two invitations (of A and of B) while the projection lags:
    with ``API_MAX_WAITS_PER_PRINCIPAL=1`` the first accept holds the person's one wait,
    so the second answers at once instead of waiting too."""
    email = f"twice-{uuid.uuid4().hex[:6]}@example.com"
    person = {"email": email, "role": "member", "first_name": "Two", "last_name": "Orgs"}
    with lagging.serve(API_MAX_WAITS_PER_PRINCIPAL="1") as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=120.0) as api:
            with lagging.projecting():  # both invitations issued and shown
                for key, organization in ((lagging.key_a, lagging.a), (lagging.key_b, lagging.b)):
                    invited = await api.post(
                        f"/v1/organizations/{_slug(lagging, organization)}/invitations",
                        json=person,
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    assert invited.status_code == 201, invited.text
                await wait_for_async(
                    lambda: _links_mailed(lagging, email, 2), what="both invitations mailed"
                )
        browser = functools.partial(
            httpx.AsyncClient, base_url=served.base_url, follow_redirects=True, timeout=120.0
        )
        async with browser() as first, browser() as second:
            first_link, second_link = _mailed_links(lagging, email)
            first_form = await _accept_form(first, first_link, email)
            second_form = await _accept_form(second, second_link, email)
            waiting = asyncio.create_task(first.post(ACCEPT_PATH, data=first_form))
            answered: Answer | None = None
            try:
                first_id = UUID(first_form["invitation_id"])
                await wait_for_async(
                    lambda: _accepted(lagging, first_id), what="the first accept written"
                )
                answered = asyncio.create_task(second.post(ACCEPT_PATH, data=second_form))
                done, _ = await asyncio.wait(
                    {waiting, answered}, return_when=asyncio.FIRST_COMPLETED
                )
                assert done == {answered}, "the second accept waited beside the person's first"
                assert answered.result().status_code == 200
                assert "You joined" in answered.result().text
            finally:
                with lagging.projecting():  # the first accept's wait ends now
                    joined = await waiting
                    if answered is not None:
                        await answered
    assert joined.status_code == 200 and "You joined" in joined.text


async def _links_mailed(lagging: Lagging, email: str, count: int) -> bool:
    return len(_mailed_links(lagging, email)) >= count


async def _accepted(lagging: Lagging, invitation_id: UUID) -> bool:
    return lagging.app.get_invitation(invitation_id, ALL_ORGANIZATIONS).status == "accepted"
