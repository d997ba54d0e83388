"""The soak's checker (bench/soaklib/check.py) on a small real stack, then on a broken one.

The stack: a PostgreSQL event store with the cipher on (a schema of the test's own), the
worker in-process on the session's Temporal dev server with sealed payloads, DNS through
RFC 2136 at the session's BIND, mail through the session's aiosmtpd, and the projector's
engine brought to the head. One organization is onboarded (an invitee accepts, one stays
pending), one is cancelled during its propagation wait (compensated), one is onboarded
and then offboarded (its admin mailed, its record removed). ``check`` finds
nothing wrong there (nor in a mail delivered twice); then every kind of breakage is made
at once, and each is named. The stack is the module's: the tests run in file order, the
breaking one after those that need it sound.
(``soaklib`` is importable as is: pytest's ``pythonpath`` and mypy's ``mypy_path`` hold
``bench``.)
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import dns.name
import dns.query
import dns.tsigkeyring
import dns.update
import psycopg
import pytest
from eventsourcing.cryptography import AESCipher
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from a4c_domain import OnboardingApplication
from a4c_domain.identity import sso_user_id
from a4c_domain.ids import organization_id, webhook_endpoint_id
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.source import head
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.queries import ReadModel
from a4c_worker.client import accept_invitation, start_bootstrap, start_offboarding
from a4c_worker.codec import PayloadKeys
from a4c_worker.contracts import invitation_workflow_id
from a4c_worker.converter import DATA_CONVERTER, data_converter
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import OffboardingInput, bootstrap_workflow_id
from soaklib import check_leaks, check_sso
from soaklib.check import Violation, check
from soaklib.check_leaks import Findings, Needles, mail_text, tokens_in
from soaklib.check_mail import address_hash, duplicate_mails, organization_mail_occasion
from soaklib.check_store import OrganizationMailFact
from soaklib.check_webhooks import Arrival
from soaklib.facts import (
    DnsFacts,
    Ledger,
    Offboarding,
    Onboarding,
    SoakFacts,
    SSOTrial,
    StoreFacts,
    TemporalFacts,
)
from tests.servers.bind import BindServer
from tests.servers.postgres import fresh_schema, postgres_env
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET, wait_for_async
from tests.worker.flows import Flows, bootstrap_input, smtp_mailer, wait_for_step

API_KEY = f"soak-api-key-{uuid.uuid4().hex}"  # stands for any secret of facts.secrets


@dataclass
class Built:
    facts: SoakFacts
    schema: str
    client: Client
    active: str  # the onboarded organization's slug
    cancelled: str
    offboarded: str
    accepted: UUID  # its accepted invitation
    pending: UUID  # and its pending one
    bind: BindServer


def served_feed(env: dict[str, str]) -> list[dict[str, Any]]:
    """What a consumer following ``GET /v1/events`` from the start receives: the rows the
    API serves (the public-events read model, in position order), page by page."""
    store = open_event_store(env)
    received: list[dict[str, Any]] = []
    with ReadModel(store.location) as read_model:
        after = 0
        while page := read_model.public_events(after, 100):
            received.extend(json.loads(body) for _, body in page)
            after = page[-1][0]
    return received


def delivered_webhooks(env: dict[str, str]) -> dict[str, list[Arrival]]:
    """What a receiver of the platform endpoint ``soak-all`` got when all went well: each
    public event after the endpoint was enabled, once, in order, signed."""
    store = open_event_store(env)
    with ReadModel(store.location) as read_model:
        endpoint = read_model.webhook_endpoint(webhook_endpoint_id(None, "soak-all"))
        assert endpoint is not None
        rows = read_model.public_events(endpoint.enabled_since, 10_000)
    return {
        "soak-all": [Arrival(json.loads(body)["id"], body.encode(), True, True) for _, body in rows]
    }


def project_to_head(env: dict[str, str]) -> None:
    """What the soak's settle waits for: the projection at the store's head."""
    store = open_event_store(env)
    projector = Projector(store.location, store.mapper)
    try:
        with projector.db.transaction():
            top = head(projector.db)
        deadline = time.monotonic() + 30
        while projector.run_batch().position < top:
            assert time.monotonic() < deadline, "the projection did not reach the head"
    finally:
        projector.close()


@pytest.fixture(scope="module")
async def built(
    pg_server: str,
    temporal_env: WorkflowEnvironment,
    bind_server: BindServer,
    smtp_server: SMTPTestServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Built]:
    keys = PayloadKeys.generate("k1").entry()
    address = temporal_env.client.service_client.config.target_host
    client = await Client.connect(address, data_converter=data_converter(PayloadKeys.parse(keys)))
    task_queue = f"a4c-soak-check-{uuid.uuid4().hex[:10]}"
    tag = uuid.uuid4().hex[:8]
    active, cancelled, offboarded = f"soak-ok-{tag}", f"soak-cancel-{tag}", f"soak-off-{tag}"
    with fresh_schema(pg_server) as schema:
        cipher = {
            "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
            "CIPHER_KEY": AESCipher.create_key(32),
        }
        env = postgres_env(schema, **cipher)
        app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
        # A platform endpoint for every event, there before anything happens.
        app.add_webhook_endpoint(
            owner_id=None,
            name="soak-all",
            url="https://hooks.example.com/a4c",
            event_types=None,
            organization_id=None,
            secret="k1:sealed-by-the-api",
        )
        flows = Flows(app=app, client=client, task_queue=task_queue)
        flows.use_bind(bind_server)
        flows.mailer = smtp_mailer(smtp_server)  # type: ignore[assignment]  # a real one
        zone = bind_server.zone.rstrip(".")
        spec = bootstrap_input(active, domain=False).model_copy(
            update={"domain": f"{active}.{zone}"}
        )
        doomed = bootstrap_input(cancelled, propagation_wait_seconds=600).model_copy(
            update={"domain": f"{cancelled}.{zone}"}
        )
        leaver = bootstrap_input(offboarded, domain=False).model_copy(
            update={"domain": f"{offboarded}.{zone}"}
        )
        admin = leaver.invitees[0].email
        ending = OffboardingInput(slug=offboarded, reason="the load offboards", admins=[admin])
        try:
            async with flows.worker():
                result = await (await start_bootstrap(client, spec, task_queue)).result()
                handle = await start_bootstrap(client, doomed, task_queue)
                await wait_for_step(handle, "propagation_wait")
                await handle.signal(OrganizationBootstrapWorkflow.cancel, "the load cancels")
                with pytest.raises(WorkflowFailureError):
                    await handle.result()
                await (await start_bootstrap(client, leaver, task_queue)).result()
                await (await start_offboarding(client, ending, task_queue)).result()
                mails = [
                    m
                    for m in smtp_server.handler.messages
                    if any(f"@{slug}.example.com" in str(m["To"]) for slug in (active, offboarded))
                ]
                accepted, pending = result.invitation_ids
                [link_mail] = [m for m in mails if str(accepted) in str(m["Message-ID"])]
                [token] = tokens_in(mail_text(link_mail))
                await accept_invitation(client, accepted, token, "user-soak")
            project_to_head(env)
            logs = tmp_path_factory.mktemp("soak-logs")
            (logs / "worker.log").write_text(
                f'{{"message": "mail to an address at {active}.example.com sent"}}\n'
            )
            facts = SoakFacts(
                store=StoreFacts(conninfo=f"{pg_server} target_session_attrs=read-write", env=env),
                temporal=TemporalFacts(address, "default", task_queue, keys),
                dns=DnsFacts(bind_server.host, bind_server.port, zone),
                mails=mails,
                logs_dir=logs,
                metrics=['a4c_worker_mails_total{outcome="sent"} 2.0\n'],
                secrets={"API_KEY": API_KEY, "A4C_TOKEN_SECRET": TOKEN_SECRET},
                feed=served_feed(env),
                webhooks=delivered_webhooks(env),
                ledger=Ledger(
                    onboardings=[
                        Onboarding(active, spec.domain, [i.email for i in spec.invitees], 202),
                        Onboarding(cancelled, doomed.domain, [], 202, cancelled=True),
                        Onboarding(offboarded, leaver.domain, [admin], 202),
                    ],
                    offboardings=[
                        Offboarding(offboarded, 0, False, 202, starts=1, ended="offboarded")
                    ],
                ),
            )
            yield Built(
                facts, schema, client, active, cancelled, offboarded, accepted, pending,
                bind_server,
            )  # fmt: skip
        finally:
            app.close()
            async for run in client.list_workflows(
                f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
            ):
                await client.get_workflow_handle(run.id, run_id=run.run_id).terminate("test over")


async def test_a_sound_stack_breaks_no_promise(built: Built) -> None:
    found = await check(built.facts, timeout=60)
    assert found == [], "\n".join(map(str, found))


async def test_a_mail_sent_twice_is_no_violation(built: Built) -> None:
    """At-least-once mail: a retried send delivers a copy with the same Message-ID
    (bench/soaklib/check_mail.py says why that is allowed); it is counted, not reported."""
    mails = built.facts.mails
    twice = dataclasses.replace(built.facts, mails=[*mails, mails[0]])
    assert duplicate_mails(twice.mails) == duplicate_mails(mails) + 1 == 1
    assert await check(twice, timeout=60) == []


async def test_a_feed_served_out_of_order_is_named(built: Built) -> None:
    feed = built.facts.feed
    swapped = dataclasses.replace(built.facts, feed=[feed[1], feed[0], *feed[2:]])
    found = await check(swapped, timeout=60)
    assert [str(v) for v in found] == ["feed: served out of store order from event number 1 on"]


async def test_webhooks_lost_unsigned_reordered_or_altered_are_named(built: Built) -> None:
    got = built.facts.webhooks["soak-all"]
    assert len(got) >= 6
    lost = [got[0], *got[2:]]
    unsigned = [dataclasses.replace(got[0], verified=False), *got[1:]]
    swapped = [got[1], got[0], *got[2:]]  # the first two are the same organization's
    altered = [*got[:-1], dataclasses.replace(got[-1], body=got[-1].body.replace(b"{", b"{ ", 1))]
    refused_only = [dataclasses.replace(got[0], accepted=False), *got[1:]]
    again = [*got, got[2]]  # a repeat (at least once) is no violation
    cases = {
        "lost": (lost, "1 events never delivered, the first at position"),
        "unsigned": (unsigned, "1 requests whose signature did not verify"),
        "swapped": (swapped, "arrived after a later one"),
        "altered": (altered, "body is not the events API's"),
        "two bodies": ([*got, altered[-1]], "arrived with two bodies"),
        "refused only": (refused_only, "1 events never delivered"),
    }
    for case, (arrivals, words) in cases.items():
        broken = dataclasses.replace(built.facts, webhooks={"soak-all": arrivals})
        found = await check(broken, timeout=60)
        assert [v.check for v in found] == ["webhooks (soak-all)"], (case, found)
        assert words in found[0].detail, (case, found)
    repeated = dataclasses.replace(built.facts, webhooks={"soak-all": again})
    assert await check(repeated, timeout=60) == []


def update_zone(bind: BindServer, *, remove: str, add: str) -> None:
    """Remove every record at ``remove`` and publish a CNAME at ``add`` (as an operator
    editing the zone by hand would)."""
    keyring = dns.tsigkeyring.from_text({bind.key_name: bind.secret})
    update = dns.update.UpdateMessage(
        bind.zone,
        keyring=keyring,
        keyname=dns.name.from_text(bind.key_name),
        keyalgorithm=bind.algorithm,
    )
    update.delete(remove + ".")
    update.add(add + ".", 300, "CNAME", "edge.a4c.test.")
    dns.query.tcp(update, bind.host, port=bind.port, timeout=5)


def break_the_store(built: Built, conninfo: str, address: str, token: str) -> None:
    """A duplicated event row (the key dropped first), an event written without the
    cipher, an edited organization row, a deleted member, the applied log forgotten, a
    token quoted in a parked event's error, the offboarded organization's last event
    (the record of its admin's offboarded mail) lost."""
    table = f'"{built.schema}".a4c_events'
    org = organization_id(built.active)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            f"DELETE FROM {table} WHERE originator_id = %(id)s AND originator_version = "
            f"(SELECT max(originator_version) FROM {table} WHERE originator_id = %(id)s)",
            {"id": organization_id(built.offboarded)},
        )
        [(key,)] = conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            (table,),
        ).fetchall()
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{key}"')
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            "WHERE originator_id = %s AND originator_version = 1",
            (org,),
        )
        conn.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
            "VALUES (%s, 1, 'a4c_domain.invitation:Invitation.Invited', %s)",
            (uuid.uuid4(), f'{{"email": "{address}"}}'.encode()),
        )
        conn.execute(f'SET search_path TO "{built.schema}"')
        conn.execute("UPDATE organizations SET name = 'Edited by hand' WHERE id = %s", (org,))
        conn.execute("DELETE FROM members WHERE invitation_id = %s", (built.accepted,))
        conn.execute("DELETE FROM applied_ranges")
        conn.execute(
            "INSERT INTO dead_letters (notification_id, originator_id, originator_version, "
            "topic, error) VALUES (1000000, %s, 9, 'x', %s)",
            (built.pending, f"refused: token={token}"),
        )


async def test_every_kind_of_breakage_is_named(built: Built, tmp_path: Path) -> None:
    facts = built.facts
    org = organization_id(built.active)
    invitee = facts.ledger.onboardings[0].invitees[0]
    [pending_mail] = [m for m in facts.mails if str(built.pending) in str(m["Message-ID"])]
    [token] = tokens_in(mail_text(pending_mail))
    break_the_store(built, facts.store.conninfo, invitee, token)
    zone = facts.dns.zone
    update_zone(built.bind, remove=f"{built.active}.{zone}", add=f"{built.cancelled}.{zone}")
    update_zone(built.bind, remove=f"nothing.{zone}", add=f"{built.offboarded}.{zone}")
    # A mail for a token generation the pending invitation never had.
    stray = EmailMessage()
    stray["To"] = facts.ledger.onboardings[0].invitees[1]
    stray["Message-ID"] = f"<invitation.{built.pending}.2@mail.a4c.test>"
    stray.set_content("no EmailSent records this one")
    # A welcome mail for the cancelled organization, which nobody welcomed.
    stray_welcome = EmailMessage()
    stray_welcome["To"] = invitee
    stray_welcome["Message-ID"] = (
        f"<welcome.{organization_id(built.cancelled)}.{address_hash(invitee)}@mail.a4c.test>"
    )
    stray_welcome.set_content("no EmailSent records this one")
    # A token, a secret and an address where none may be.
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "api.log").write_text(f"GET /invitations/accept?token={token}\nkey {API_KEY}\n")
    metrics = [*facts.metrics, f'a4c_mails_total{{to="{invitee}"}} 1.0\n']
    # A workflow left running: a bootstrap no worker picks up, started by a client that
    # does not seal (its input, addresses and all, in clear in the history).
    stranded = f"soak-stranded-{uuid.uuid4().hex[:6]}"
    spec = bootstrap_input(stranded)
    plain = Client(
        built.client.service_client,
        namespace=built.client.namespace,
        data_converter=DATA_CONVERTER,
    )
    # (and without its search attributes, as a hand-made start would be).
    await plain.start_workflow(
        OrganizationBootstrapWorkflow.run,
        spec,
        id=bootstrap_workflow_id(stranded),
        task_queue=facts.temporal.task_queue,
    )
    # An invitation nobody can accept any more: its workflow ended while it is pending.
    await built.client.get_workflow_handle(invitation_workflow_id(built.pending)).terminate()

    async def listed() -> bool:
        query = f"WorkflowId = 'org-bootstrap-{stranded}'"
        return [r.status async for r in built.client.list_workflows(query)] == [
            WorkflowExecutionStatus.RUNNING
        ]

    await wait_for_async(listed, what="the stranded bootstrap to be listed")
    # The ledger knows the stranded bootstrap's invitees (their addresses are looked for).
    # And an offboarding of the active organization the API accepted, never run.
    ledger = dataclasses.replace(
        facts.ledger,
        onboardings=[
            *facts.ledger.onboardings,
            Onboarding(stranded, spec.domain, [i.email for i in spec.invitees], 202),
        ],
        offboardings=[*facts.ledger.offboardings, Offboarding(built.active, 0, False, 202)],
    )
    # The accepted invitation's mail and the admin's welcome mail lost (their EmailSent
    # then name no mail), stray ones.
    mails = [
        m
        for m in facts.mails
        if str(built.accepted) not in str(m["Message-ID"])
        and not str(m["Message-ID"]).strip().startswith("<welcome.")
    ]
    # The feed: its second event never served, its fourth served twice.
    feed = [facts.feed[0], *facts.feed[2:4], facts.feed[3], *facts.feed[4:]]
    broken = dataclasses.replace(
        facts,
        mails=[*mails, stray, stray_welcome],
        logs_dir=logs,
        metrics=metrics,
        ledger=ledger,
        feed=feed,
    )

    found = await check(broken, timeout=60)

    def named(check_name: str, *words: str) -> bool:
        return any(v.check == check_name and all(w in v.detail for w in words) for v in found)

    expected = {
        "duplicate row": named("duplicate-events", "2 events at version 1", str(org)),
        "edited row": named("read-models", f"organizations {org}"),
        "deleted member": named("members", f"accepted invitation {built.accepted} has no member"),
        "forgotten applied log": named("audit", "never applied nor parked"),
        "removed record": named("dns", f"active organization {built.active}: BIND serves no"),
        "record left": named("dns", f"deactivated organization {built.cancelled}: BIND still"),
        "offboarded record left": named(
            "dns", f"offboarded organization {built.offboarded}: BIND still"
        ),
        "offboarded mail not recorded": named(
            "offboarding", built.offboarded, "0 offboarded mails recorded for its 1 admins"
        ),
        "offboarding never run": named(
            "offboarding", built.active, "no offboarding workflow exists"
        ),
        "stray mail": named("mail", str(built.pending), "no EmailSent records it (token 2)"),
        "lost mail": named("mail", str(built.accepted), "but no such mail arrived"),
        "lost welcome": named("mail", str(org), "welcome mail", "but no such mail arrived"),
        "stray welcome": named(
            "mail", str(organization_id(built.cancelled)), "no EmailSent of the organization"
        ),
        "token in a log": named("leaks", "invitation token", "the log file api.log"),
        "token in a read model": named("leaks", "invitation token", "table dead_letters"),
        "secret in a log": named("leaks", "the secret API_KEY", "the log file api.log"),
        "address in metrics": named("leaks", "address", "the metrics"),
        "address in the store": named("leaks", "address", "the event store"),
        "address in a history": named("leaks", f"onboarding {stranded}", "workflow histories"),
        "stranded workflow": named("workflows", f"bootstrap of {stranded} is still running"),
        "unfindable workflow": named(
            "workflows", f"{bootstrap_workflow_id(stranded)} does not carry its organization's"
        ),
        "ended too soon": named("workflows", f"invitation {built.pending}", "ended terminated"),
        "event not served": named("feed", "public events never served", facts.feed[1]["id"]),
        "event served twice": named("feed", "1 events served twice", facts.feed[3]["id"]),
    }
    missed = [kind for kind, caught in expected.items() if not caught]
    assert not missed, (missed, "\n".join(map(str, found)))
    assert all(isinstance(v, Violation) for v in found)
    assert not any(v.check == "checker" for v in found), found
    for violation in found:  # what the checker says never quotes what it found
        for secret in (token, API_KEY, invitee, TOKEN_SECRET):
            assert secret.lower() not in violation.detail.lower(), violation


def test_a_token_across_a_chunk_boundary_is_found_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logs are read in chunks (a soak's may be large): a token cut by a chunk's end is
    still found, and one inside the overlap two chunks share is counted once."""
    token = "T" * 43
    needles = Needles(tokens={token.encode(): "the token"})
    monkeypatch.setattr(check_leaks, "CHUNK", 64)
    monkeypatch.setattr(check_leaks, "OVERLAP", 50)
    (tmp_path / "big.log").write_text("." * 40 + f" {token} " + "." * 100 + f" {token}\n")
    findings = Findings()
    check_leaks.scan_logs(tmp_path, needles, findings)
    assert [v.detail for v in findings.violations()] == [
        "the token found 2x in the log file big.log (first: near byte 14)"
    ]


async def test_the_check_is_bounded_in_time(built: Built) -> None:
    """Out of time, the checker says so (a violation) rather than hang the soak."""
    found = await check(built.facts, timeout=0.001)
    assert found and all(v.check == "checker" for v in found), found


# --- single sign-on (soaklib.check_sso): what the checker makes of bad inputs ----------

SSO_ORG = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
ISSUER = "http://127.0.0.1:9/"


def sso_activated(org: UUID, address: str, generation: int) -> OrganizationMailFact:
    message = f"<sso_activated.{org}.{address_hash(address)}.{generation}@soak.a4c.test>"
    return OrganizationMailFact(org, "sso_activated", message)


def test_an_sso_read_model_row_disagreeing_with_the_store_is_named() -> None:
    held = check_sso.Connection("active", 2, 2, ISSUER, None)
    slugs = {SSO_ORG: "soak-sso"}
    assert check_sso.connection_violations({SSO_ORG: held}, {SSO_ORG: held}, slugs) == []
    stale = dataclasses.replace(held, status="none", active_generation=None, active_issuer=None)
    (found,) = check_sso.connection_violations({SSO_ORG: held}, {SSO_ORG: stale}, slugs)
    assert found.check == "sso" and "soak-sso" in found.detail
    (missing,) = check_sso.connection_violations({SSO_ORG: held}, {}, slugs)
    assert "no read-model row" in missing.detail
    (orphan,) = check_sso.connection_violations({}, {SSO_ORG: held}, slugs)
    assert "no SSOConnection" in orphan.detail
    key = uuid.uuid4()
    assert check_sso.domain_violations({key: "verified"}, {key: "verified"}) == []
    assert len(check_sso.domain_violations({key: "verified"}, {key: "pending"})) == 1


def test_an_activation_mail_missing_duplicated_or_for_no_activation_is_named() -> None:
    admins = ("ada@soak-sso.example.com", "alan@soak-sso.example.com")
    activation = check_sso.Activation(SSO_ORG, 2, admins)
    each = [sso_activated(SSO_ORG, a, 2) for a in admins]
    slugs = {SSO_ORG: "soak-sso"}
    assert check_sso.mail_violations([activation], each, slugs) == []
    assert organization_mail_occasion(each[0].message_id) == 2
    (twice,) = check_sso.mail_violations([activation], [*each, each[0]], slugs)
    assert "3 sso_activated mails recorded for its 2 admins" in twice.detail
    (short,) = check_sso.mail_violations([activation], each[:1], slugs)
    assert "1 sso_activated mails recorded for its 2 admins" in short.detail
    stray = sso_activated(SSO_ORG, admins[0], 1)
    (extra,) = check_sso.mail_violations([activation], [*each, stray], slugs)
    assert "configuration 1" in extra.detail and "no completed" in extra.detail
    assert not any(a in str(v) for v in (twice, short, extra) for a in admins)


def test_what_the_load_saw_of_single_sign_on_is_held_against_the_store() -> None:
    trial = SSOTrial(
        slug="soak-sso", issuer=ISSUER, domain="soak-sso.example.com", fail_first=False,
        deactivate=True, configured=True, domain_verified=True, activated=True,
    )  # fmt: skip
    active = check_sso.Connection("active", 1, 1, ISSUER, None)
    ended = check_sso.Connection("none", 1, None, None, None)
    assert check_sso.trial_violations(dataclasses.replace(trial, deactivated=True), ended,
                                      {trial.domain}) == []  # fmt: skip
    (still,) = check_sso.trial_violations(dataclasses.replace(trial, deactivated=True), active,
                                          {trial.domain})  # fmt: skip
    assert "ended by DELETE" in still.detail
    (lost,) = check_sso.trial_violations(trial, ended, {trial.domain})
    assert "seen active" in lost.detail
    (unverified,) = check_sso.trial_violations(trial, active, set())
    assert "e-mail domain" in unverified.detail


def test_a_member_must_be_who_its_invitation_says_accepted_and_an_sso_id_its_identity() -> None:
    invitation_id = uuid.uuid4()
    user = sso_user_id(ISSUER, "sub-1")
    accepted = {"accepted_by": user, "accepted_issuer": ISSUER, "accepted_subject": "sub-1"}
    member = {"user_id": user, "issuer": ISSUER, "subject": "sub-1"}
    invitations = {invitation_id: accepted}
    assert check_sso.identity_violations({invitation_id: member}, invitations) == []
    (other,) = check_sso.identity_violations(
        {invitation_id: {**member, "subject": "sub-2"}}, invitations
    )
    assert "not who its invitation says accepted" in other.detail
    forged = {"accepted_by": "sso:x", "accepted_issuer": ISSUER, "accepted_subject": "sub-1"}
    (made_up,) = check_sso.identity_violations(
        {invitation_id: {**member, "user_id": "sso:x"}}, {invitation_id: forged}
    )
    assert "sso user id" in made_up.detail


def test_an_invitee_seen_joining_through_the_provider_must_be_its_member_so() -> None:
    trial = SSOTrial(
        slug="soak-sso", issuer=ISSUER, domain="soak-sso.example.com", fail_first=False,
        deactivate=False, accepted_through=["ann@soak-sso.example.com"],
    )  # fmt: skip
    member = {
        "organization_id": SSO_ORG, "email": "ann@soak-sso.example.com",
        "user_id": sso_user_id(ISSUER, "s"), "issuer": ISSUER, "subject": "s",
    }  # fmt: skip
    assert check_sso.joined_violations(trial, SSO_ORG, [member]) == []
    dev = {**member, "user_id": "dev:1", "issuer": None, "subject": "dev:1"}
    (found,) = check_sso.joined_violations(trial, SSO_ORG, [dev])
    assert "joined through its provider" in found.detail and "ann@" not in found.detail
    assert len(check_sso.joined_violations(trial, SSO_ORG, [])) == 1
