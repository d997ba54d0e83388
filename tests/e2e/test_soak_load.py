"""The soak's load (``bench/soaklib/load.py``) against a real stack, for a few seconds.

Two a4c-api instances (uvicorn, development mode: the dev sign-in) on one SQLite store,
the projector following it, a worker on the session's Temporal dev server mailing
through SMTP to aiosmtpd: the load's every operation kind succeeds at least once
(onboard, invite, the accept pages' flow, revoke, re-send, cancel, offboard and an
offboarding cancelled in its grace period), every deliberately
bad request is refused with its documented type and stores nothing, no answer is a
violation, and the settle finishes every plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from temporalio.testing import WorkflowEnvironment

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.settings import load_settings
from a4c_domain import OnboardingApplication
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.readmodel.tables import ensure_schema
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.providers.email.smtp import SMTPMailer, SMTPSettings
from a4c_worker.worker import create_worker
from soaklib import load_offboard, load_sso
from soaklib.facts import Ledger, Offboarding, Onboarding
from soaklib.load import Load
from soaklib.load_bad import CASES, Existing, draw
from soaklib.load_http import Http
from soaklib.load_ops import Ops
from soaklib.load_plan import Mailbox, Org, person
from tests.api.conftest import stack_activities
from tests.servers.http import serve_asgi
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET, free_port
from tests.worker.flows import ZONE

SEED = 18
RATE = 6.0  # operations a second
DURATION = 8.0  # seconds of load
SETTLE = 35.0  # seconds at most to finish every plan
PROJECTOR_PAUSE = 4.0  # seconds the projector is stopped in the fault test


@dataclass
class Sink:
    """The session's aiosmtpd as the load reads it."""

    server: SMTPTestServer

    def messages(self) -> list[EmailMessage]:
        return list(self.server.handler.messages)


class NoMail:
    def messages(self) -> list[EmailMessage]:
        return []


class Projector:
    """The projector in a thread of its own, stopped and started again at will (a new
    runner each time, as a restarted process would be)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._running: tuple[Runner, threading.Thread] | None = None

    def start(self) -> None:
        runner = Runner(self.store, RunnerOptions(poll_interval=0.02, gap_grace=0.05))
        thread = threading.Thread(target=runner.run, name="soak-load-projector", daemon=True)
        thread.start()
        self._running = runner, thread

    def stop(self) -> None:
        if self._running is not None:
            runner, thread = self._running
            runner.stop()
            thread.join(timeout=10)
            self._running = None


@dataclass
class LoadStack:
    api_urls: list[str]
    operator_key: str
    projector: Projector
    apis: list[contextlib.ExitStack]  # each API's server: closing one stops it

    async def stop_api(self, index: int) -> None:
        await asyncio.to_thread(self.apis[index].close)


@pytest.fixture
async def load_stack(
    tmp_path: Path, temporal_env: WorkflowEnvironment, smtp_server: SMTPTestServer
) -> AsyncIterator[LoadStack]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "ev.db")}
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db)
    client = temporal_env.client
    task_queue = f"soak-load-{uuid.uuid4().hex[:10]}"
    operator_key, grant = new_key("soak-load", None)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    settings = load_settings(
        {
            "API_MODE": "development",
            "API_PUBLIC_URL": urls[0],
            "API_KEYS": grant.entry(),
            "TEMPORAL_ADDRESS": client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "DNS_ZONE": ZONE,
            # The load re-sends as soon as the first mail came (the soak's APIs do too).
            "API_RESEND_COOLDOWN_SECONDS": "0",
        }
    )
    mailer = SMTPMailer(
        SMTPSettings(
            host=smtp_server.host, port=smtp_server.port, security="none",
            from_address="a4c@soak.example.com",
        )
    )  # fmt: skip
    activities = stack_activities(app, mailer, urls[0] + ACCEPT_PATH)
    projector = Projector(store)
    apis = [contextlib.ExitStack() for _ in ports]
    projector.start()
    try:
        for api, port in zip(apis, ports, strict=True):
            api.enter_context(serve_asgi(create_app(settings, store.location), port=port))
        async with create_worker(client, task_queue, activities.all()):
            yield LoadStack(urls, operator_key, projector, apis)
    finally:
        for api in apis:
            api.close()
        projector.stop()
        app.close()


def _succeeded(ledger: Ledger, kind: str, *statuses: str) -> bool:
    return any(ledger.requests.get(kind, {}).get(status, 0) for status in statuses)


async def test_the_load_runs_every_operation_refuses_every_bad_request_and_settles(
    load_stack: LoadStack, smtp_server: SMTPTestServer
) -> None:
    ledger = Ledger()
    load = Load(
        load_stack.api_urls, load_stack.operator_key, Sink(smtp_server), random.Random(SEED),
        RATE, ledger, dns_zone=ZONE, request_timeout=15.0, prefix=f"ld{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    await load.run(DURATION)
    await asyncio.wait_for(load.settle(SETTLE), SETTLE + 15)

    report = f"{ledger.requests}\n{ledger.unexpected}\n{ledger.unfinished}"
    assert ledger.violations == [], report
    assert ledger.unexpected == [], report
    assert ledger.unfinished == [], report
    # Every kind of operation succeeded at least once, through each API's answers.
    assert _succeeded(ledger, "onboard", "202"), report
    assert _succeeded(ledger, "get_organization", "200"), report
    assert any(o.cancelled for o in ledger.onboardings), report
    for kind in ("invite", "accept", "revoke", "resend"):
        assert any(a.kind == kind and a.done for a in ledger.actions), (kind, report)
    assert any(o.ended == "offboarded" for o in ledger.offboardings), report
    # Bad requests: several cases, each refused as documented (no violation above),
    # and never answered 2xx or 5xx.
    bad = {kind: outcomes for kind, outcomes in ledger.requests.items() if kind.startswith("bad:")}
    assert len(bad) >= 3, report
    assert set(bad) <= {f"bad:{case}" for case in CASES}
    for kind, outcomes in bad.items():
        assert all(o.startswith("4") for o in outcomes), (kind, outcomes)


async def test_offboardings_end_organizations_midway_and_one_is_kept_in_its_grace_period(
    load_stack: LoadStack, smtp_server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Most organizations offboarded, some while their invitees are midway (an accept
    then finds them no longer active: expected, not unexpected), half of them with a
    grace period their cancel arrives in (kept: their invitees go on)."""
    monkeypatch.setattr(load_offboard, "OFFBOARD_SHARE", 0.8)
    monkeypatch.setattr(load_offboard, "CANCEL_SHARE", 0.4)
    monkeypatch.setattr(load_offboard, "GRACE", 8.0)
    ledger = Ledger()
    load = Load(
        load_stack.api_urls, load_stack.operator_key, Sink(smtp_server), random.Random(SEED),
        RATE, ledger, dns_zone=ZONE, request_timeout=15.0, prefix=f"ob{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    await load.run(DURATION)
    await asyncio.wait_for(load.settle(SETTLE), SETTLE + 15)

    report = f"{ledger.requests}\n{ledger.unexpected}\n{ledger.unfinished}"
    assert (ledger.violations, ledger.unexpected, ledger.unfinished) == ([], [], []), report
    asked = [o for o in ledger.offboardings if 200 <= o.status < 300]
    ended = {o.ended for o in asked}
    assert ended == {"offboarded", "kept"}, ([(o.cancel, o.ended) for o in asked], report)
    assert any(o.cancelled for o in asked), report
    assert _succeeded(ledger, "offboard", "202") and _succeeded(ledger, "get_offboarding", "200")
    assert _succeeded(ledger, "cancel_offboarding", "200"), report


async def test_every_bad_case_is_refused_as_documented_and_stores_nothing(
    load_stack: LoadStack,
) -> None:
    """Each case once (the load draws them at random): its status and type, and its
    onboarding's slug not found afterwards; a conflict leaves the organization as it was."""
    ledger = Ledger()
    http = Http(load_stack.api_urls, load_stack.operator_key, ledger, timeout=15.0)
    ops = Ops(http, ledger, Mailbox(), in_flight=8, max_body_bytes=1 << 20)
    rng = random.Random(SEED)
    try:
        slug = f"bad-case-{uuid.uuid4().hex[:8]}"
        body = {"name": "Existing Ltd", "slug": slug, "org_type": "partner"}
        made = await http.v1("onboard", "POST", "/v1/organizations", json_body=body)
        assert made.status == 202, made.text
        existing = Existing(slug, "Existing Ltd", body)
        for case in CASES:
            bad = draw(rng, ZONE, existing, 1 << 20, case=case)
            assert bad.case == case
            await ops.bad(bad, existing.name if case == "slug_conflict" else None)
    finally:
        await http.aclose()
    assert ledger.violations == [], ledger.requests
    for case in CASES:
        outcomes = dict(ledger.requests[f"bad:{case}"])
        if case == "huge_body":
            # The API answers 413 and closes the connection before the body is read: a
            # client still sending may see the connection cut instead, and tries again.
            outcomes.pop("disconnected", None)
        assert list(outcomes) == [str(draw(rng, ZONE, existing, 1 << 20, case=case).status)]
    # Every refusal naming a valid slug of its own was looked up: not there.
    assert set(ledger.requests["bad_lookup"]) <= {"404", "200"}


class Scripted:
    """An API that answers POST /v1/organizations from a script: each answer once, in
    order (``hang``: no answer within the load's request timeout), keeping each body."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        self.bodies.append(await request.body())
        answer = self.script.pop(0)
        if answer == "hang":
            await asyncio.sleep(HANG)
            answer = "202"
        status = answer.split("+")[0]
        headers = {"Retry-After": "0"} if answer.endswith("+retry-after") else {}
        body = b'{"type": "about:blank", "title": "x", "status": %s}' % status.encode()
        response = Response(body, int(status), headers, media_type="application/problem+json")
        await response(scope, receive, send)


HANG = 1.0  # seconds a scripted answer is held: past the load's request timeout below
SHORT_TIMEOUT = 0.3


async def test_fault_answers_are_counted_retried_with_the_same_request_and_judged() -> None:
    """Excused (a timeout, 503 with Retry-After) and not excused (503 without it, 500):
    all counted and tried again with the same body; only the latter are violations."""
    script = ["hang", "503", "500", "503+retry-after", "202"]
    api = Scripted(list(script))
    ledger = Ledger()
    with serve_asgi(api) as served:
        http = Http([served.base_url], "a4c_key", ledger, timeout=SHORT_TIMEOUT)
        ops = Ops(http, ledger, Mailbox(), in_flight=4, max_body_bytes=1 << 20)
        record = Onboarding("fault-org", None, [], 0)
        org = Org(1, "fault-org", "Fault Org", None, {}, False, record)
        try:
            await ops.onboard(org)
        finally:
            await http.aclose()
    assert ledger.requests["onboard"] == {
        "timeout": 1, "503-without-retry-after": 1, "500": 1, "503": 1, "202": 1
    }  # fmt: skip
    assert ledger.violations == ["onboard: 503 without Retry-After", "onboard: answered 500"]
    assert len(api.bodies) == len(script) and len(set(api.bodies)) == 1  # the same request
    assert org.state == "started" and org.record.status == 202


async def test_a_dead_api_grows_nothing_and_a_seed_draws_the_same_load() -> None:
    """Nothing listens: every request fails to connect (counted, no violation), the
    operations alive stay bounded (arrivals past it are shed), the settle ends them; two
    runs with one seed draw the same onboardings."""
    closed = f"http://127.0.0.1:{free_port()}"
    drawn = []
    for _ in range(2):
        ledger = Ledger()
        load = Load(
            [closed], "a4c_key", NoMail(),
            random.Random(SEED), 40.0, ledger, dns_zone=ZONE, max_pending=8, prefix="dead",
        )  # fmt: skip
        await load.run(1.0)
        await asyncio.wait_for(load.settle(0.5), 10)
        assert ledger.violations == [] and ledger.unexpected == []
        assert sum(n for o, n in ledger.requests["load"].items() if o.startswith("shed")) > 0
        assert {o for k, v in ledger.requests.items() if k != "load" for o in v} == {
            "connect_error"
        }
        assert ledger.unfinished  # what could not be done is said
        drawn.append([(o.slug, o.domain, o.invitees) for o in ledger.onboardings])
    assert drawn[0] == drawn[1] and drawn[0]


async def test_an_api_that_dies_and_a_projector_that_stops_are_ridden_out(
    load_stack: LoadStack, smtp_server: SMTPTestServer
) -> None:
    """Mid-run, one API stops for good and the projector stops for a while: requests
    to the dead API fail to connect and go to the other; links the read models do not
    show yet are tried again; nothing is a violation and every plan still finishes."""
    ledger = Ledger()
    load = Load(
        load_stack.api_urls, load_stack.operator_key, Sink(smtp_server), random.Random(SEED + 1),
        RATE, ledger, dns_zone=ZONE, request_timeout=15.0, prefix=f"lf{uuid.uuid4().hex[:6]}",
    )  # fmt: skip

    async def faults() -> None:
        await asyncio.sleep(2.0)
        await load_stack.stop_api(1)
        await asyncio.to_thread(load_stack.projector.stop)
        await asyncio.sleep(PROJECTOR_PAUSE)
        load_stack.projector.start()

    await asyncio.gather(load.run(DURATION), faults())
    await asyncio.wait_for(load.settle(SETTLE), SETTLE + 15)

    report = f"{ledger.requests}\n{ledger.unexpected}\n{ledger.unfinished}"
    assert ledger.violations == [] and ledger.unexpected == [], report
    assert ledger.unfinished == [], report
    assert any("connect_error" in outcomes for outcomes in ledger.requests.values()), report
    assert any(a.kind == "accept" and a.done for a in ledger.actions), report


class _Provider:
    issuer = "http://127.0.0.1:9/"

    def mark_unverified(self, email: str) -> None:
        pass


def test_single_sign_on_goes_to_organizations_with_an_admin_member_and_no_offboarding() -> None:
    setup = load_sso.SSOSetup(
        _Provider(), "client", "secret", load_sso.TxtPublisher("127.0.0.1", 9, "example.com",
                                                                "key", "c2VjcmV0", "hmac-sha256"),
    )  # fmt: skip

    def org(number: int, role: str, *, accepted: bool = True, offboarded: bool = False) -> Org:
        made = Org(
            number=number, slug=f"soak-{number}", name="Org", domain=None, timing={},
            cancel=False, record=Onboarding(f"soak-{number}", None, [], 202), state="completed",
            offboard=Offboarding(f"soak-{number}", 0.0, cancel=False) if offboarded else None,
        )  # fmt: skip
        invitee = person(random.Random(number), number, made, [])
        invitee.role, invitee.accepted = role, accepted
        made.invitees.append(invitee)
        return made

    fit, member, pending, leaving = (
        org(1, "admin"), org(2, "member"), org(3, "owner", accepted=False),
        org(4, "owner", offboarded=True),
    )  # fmt: skip
    assert load_sso.candidates([fit, member, pending, leaving]) == [fit]
    plans = [load_sso.plan(random.Random(n), fit, setup) for n in range(40)]
    assert all(p.admin is fit.invitees[0] for p in plans)
    assert all(p.record.domain == f"{fit.slug}.example.com" for p in plans)
    assert {tuple(p.steps) for p in plans} == {
        ("configure", "domain", "test", "done"),
        ("configure", "domain", "test", "deactivate", "done"),
    }
    assert {p.record.fail_first for p in plans} == {True, False}
    fit.sso = plans[0]
    assert load_sso.candidates([fit]) == []  # one configuration an organization
