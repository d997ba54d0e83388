"""Races on one aggregate: exactly one event per distinct change, the loser converges.

Two real processes against real PostgreSQL, in lockstep (a barrier before each command),
plus deterministic in-process injections of a rival write between load and save.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from typing import Any

import psycopg
import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, organization_id
from a4c_domain.errors import ConcurrencyError, OrganizationConflict
from tests.domain.racers import Outcome, Step, run_plan
from tests.domain.support import Store, events, notification_count, org_fields
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET

ROUNDS = 12


def dns(slug: str) -> dict[str, str]:
    return {"fqdn": f"{slug}.example.com", "target": "lb.example.com", "record_id": f"r-{slug}"}


def race(env: dict[str, str], plans: list[list[Step]]) -> list[tuple[list[Outcome], int]]:
    """Run each plan in its own spawned process, step by step in lockstep."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(plans)), ctx.Queue()
    procs = [
        ctx.Process(target=run_plan, args=(index, env, plan, barrier, results))
        for index, plan in enumerate(plans)
    ]
    for proc in procs:
        proc.start()
    collected = sorted(results.get(timeout=240) for _ in procs)  # back in plan order
    for proc in procs:
        proc.join(timeout=60)
        assert proc.exitcode == 0
    failures = [failure for _, _, _, failure in collected if failure is not None]
    assert failures == []
    return [(outcomes, lost) for _, outcomes, lost, _ in collected]


def versions_by_aggregate(conninfo: str, schema: str) -> dict[Any, list[int]]:
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version FROM "{schema}".a4c_events '
            "ORDER BY originator_id, originator_version"
        ).fetchall()
    out: dict[Any, list[int]] = {}
    for originator_id, version in rows:
        out.setdefault(originator_id, []).append(version)
    return out


@pytest.fixture(params=["n", "y"], ids=["table-lock", "lock-free"])
def pg_env(request: pytest.FixtureRequest, pg_schema: str) -> dict[str, str]:
    """An empty schema: the racing processes also race to create the tables."""
    return postgres_env(pg_schema, POSTGRES_ENABLE_DB_FUNCTIONS=request.param)


def test_processes_starting_together_on_an_empty_schema(pg_env: dict[str, str]) -> None:
    """Several pods creating the event store at once all start (DDL races are retried)."""
    outcomes = race(pg_env, [[] for _ in range(4)])
    assert outcomes == [([], 0)] * 4


def test_racing_the_same_commands(pg_env: dict[str, str], pg_server: str, pg_schema: str) -> None:
    plan: list[Step] = []
    for i in range(ROUNDS):
        slug = f"race-{i}"
        org = organization_id(slug)
        plan += [
            ("register_organization", org_fields(slug=slug, domain=f"{slug}.example.com")),
            ("configure_dns", {"organization_id": org, **dns(slug)}),
            ("verify_dns", {"organization_id": org}),
            ("activate", {"organization_id": org}),
        ]
    (first, lost_first), (second, lost_second) = race(pg_env, [plan, plan])
    # The store's uniqueness did refuse writes: the retry path really ran.
    assert lost_first + lost_second >= ROUNDS
    for mine, theirs in zip(first, second, strict=True):
        kinds = sorted([mine[0], theirs[0]])
        assert kinds == ["ok", "ok"], (mine, theirs)  # the loser converged to the no-op
        positions = [mine[1], theirs[1]]
        assert positions.count(None) == 1, positions  # exactly one wrote
    versions = versions_by_aggregate(pg_server, pg_schema)
    assert len(versions) == 2 * ROUNDS  # each organization and the claim on its domain
    assert sorted(versions.values()) == [[1]] * ROUNDS + [[1, 2, 3, 4]] * ROUNDS
    app = OnboardingApplication({**pg_env, "A4C_TOKEN_SECRET": TOKEN_SECRET})
    try:
        stored = events(app)
        written = {p for _, p in first + second if p is not None}
        # Every write reported (a registration's position is its claim's, written with
        # it), none extra.
        stored_positions = set(_positions(app))
        assert written <= stored_positions and len(written) == 4 * ROUNDS
        assert len(stored_positions) == 5 * ROUNDS
        assert Counter(type(e).__name__ for e in stored) == {
            "Registered": ROUNDS,
            "Claimed": ROUNDS,
            "DNSConfigured": ROUNDS,
            "DNSVerified": ROUNDS,
            "Activated": ROUNDS,
        }
    finally:
        app.close()


def _positions(app: OnboardingApplication) -> list[int]:
    return [n.id for n in app.recorder.select_notifications(start=1, limit=10_000)]


def test_racing_different_commands(pg_env: dict[str, str], pg_server: str, pg_schema: str) -> None:
    app = OnboardingApplication({**pg_env, "A4C_TOKEN_SECRET": TOKEN_SECRET})
    try:
        orgs, invitations = [], []
        for i in range(ROUNDS):
            org = app.register_organization(**org_fields(slug=f"diff-{i}"))
            orgs.append(org.id)
            inv = app.invite(
                organization_id=org.id,
                email=f"p{i}@example.com",
                role="member",
                first_name="P",
                last_name="Q",
            )
            invitations.append((inv.id, app.invitation_token(inv.id, ALL_ORGANIZATIONS)))
        plan_a: list[Step] = []
        plan_b: list[Step] = []
        for i, org_id in enumerate(orgs):
            inv_id, token = invitations[i]
            plan_a += [
                ("configure_dns", {"organization_id": org_id, **dns(f"diff-{i}")}),
                (
                    "accept_invitation",
                    {
                        "organization_id": ALL_ORGANIZATIONS,
                        "invitation_id": inv_id,
                        "token": token,
                        "user_id": "u-a",
                    },
                ),
            ]
            plan_b += [
                ("deactivate", {"organization_id": org_id, "reason": "raced"}),
                (
                    "revoke_invitation",
                    {
                        "organization_id": ALL_ORGANIZATIONS,
                        "invitation_id": inv_id,
                        "reason": "raced",
                    },
                ),
            ]
        (outcomes_a, _), (outcomes_b, _) = race(pg_env, [plan_a, plan_b])
        before = notification_count(app)
        for i, org_id in enumerate(orgs):
            configure, accept = outcomes_a[2 * i], outcomes_a[2 * i + 1]
            deactivate, revoke = outcomes_b[2 * i], outcomes_b[2 * i + 1]
            assert deactivate[0] == "ok" and deactivate[1] is not None
            names = [
                type(e).__name__
                for e in events(app)
                if e.originator_id == org_id
                and type(e).__name__ not in ("Registered", "InvitationIssued")
            ]
            if configure[0] == "ok":
                assert configure[1] is not None
                assert names == ["DNSConfigured", "Deactivated"]
            else:
                assert configure[0] == "OrganizationInactive"
                assert names == ["Deactivated"]
            inv_id, _ = invitations[i]
            inv_names = [type(e).__name__ for e in events(app) if e.originator_id == inv_id]
            # The deactivation revokes a pending invitation in its own save, so the
            # explicit revoke after it finds it revoked (a no-op) unless accept won first.
            if accept[0] == "ok":
                assert revoke[0] == "InvitationAlreadyAccepted"
                assert inv_names == ["Invited", "Accepted"]
            else:
                assert accept[0] in ("InvitationRevoked", "OrganizationInactive"), accept
                assert revoke[0] == "ok", revoke
                assert inv_names == ["Invited", "Revoked"]
        assert notification_count(app) == before
        for versions in versions_by_aggregate(pg_server, pg_schema).values():
            assert versions == list(range(1, len(versions) + 1))
    finally:
        app.close()


# --- deterministic: a rival write injected between our load and our save ---------------


def inject_before_save(
    monkeypatch: pytest.MonkeyPatch, app: OnboardingApplication, rival: Any, times: int = 1
) -> list[int]:
    """Make ``app.save`` run ``rival()`` first, ``times`` times; returns the call count."""
    real_save = app.save
    calls = [0]

    def save(*aggregates: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] <= times:
            rival()
        return real_save(*aggregates, **kwargs)

    monkeypatch.setattr(app, "save", save)
    return calls


def test_lost_race_converges_to_the_no_op(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    mine, rival = store.open(), store.open()
    org = mine.register_organization(**org_fields(domain="acme.example.com"))
    fields: dict[str, Any] = {"organization_id": org.id, **dns("acme")}
    calls = inject_before_save(monkeypatch, mine, lambda: rival.configure_dns(**fields))
    view = mine.configure_dns(**fields)
    assert calls[0] == 1  # our save was refused, the reload decided "already done"
    assert (view.position, view.dns_status, view.version) == (None, "configured", 2)
    assert notification_count(mine) == 3  # registered, its domain claimed, configured


def test_lost_create_race_converges(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    mine, rival = store.open(), store.open()
    calls = inject_before_save(
        monkeypatch, mine, lambda: rival.register_organization(**org_fields())
    )
    view = mine.register_organization(**org_fields())
    assert calls[0] == 1 and view.position is None and view.version == 1
    assert notification_count(mine) == 1


def test_lost_race_to_different_content_conflicts(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, rival = store.open(), store.open()
    org = mine.register_organization(**org_fields(domain="acme.example.com"))
    other = {**dns("acme"), "target": "elsewhere.example.com"}
    inject_before_save(
        monkeypatch, mine, lambda: rival.configure_dns(organization_id=org.id, **other)
    )
    with pytest.raises(OrganizationConflict):
        mine.configure_dns(organization_id=org.id, **dns("acme"))
    assert mine.get_organization(org.id).dns_target == "elsewhere.example.com"
    assert notification_count(mine) == 3  # registered, its domain claimed, configured


def test_an_aggregate_that_keeps_changing_is_a_retryable_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine, rival = store.open(), store.open()
    org = mine.register_organization(**org_fields())
    inv = mine.invite(
        organization_id=org.id, email="a@example.com", role="member", first_name="A", last_name="B"
    )
    counter = iter(range(1000))
    inject_before_save(
        monkeypatch,
        mine,
        lambda: rival.record_email_failed(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv.id,
            token_generation=1,
            reason=f"bounce {next(counter)}",
        ),
        times=1000,
    )
    before = notification_count(mine)
    with pytest.raises(ConcurrencyError) as info:
        mine.record_email_sent(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv.id,
            token_generation=1,
            message_id="m",
        )
    assert info.value.retryable
    stored = events(mine)[before:]
    assert stored and all(type(e).__name__ == "EmailFailed" for e in stored)
