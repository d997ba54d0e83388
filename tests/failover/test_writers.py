"""Writers through ``OnboardingApplication`` while PostgreSQL fails over, both ways
(``pg_autoctl perform failover`` and SIGKILL of the primary with its keeper).

Every command that returned is stored, exactly once; one that raised is absent or
stored once; no (aggregate, version) or event id twice; and writes work again on the
new primary within a few seconds of each switch, through the same pools.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg

from a4c_domain import OnboardingApplication
from a4c_domain.ids import event_id, organization_id
from a4c_domain.invitation import Invitation
from tests.servers.pgfailover import FailoverCluster
from tests.support import TOKEN_SECRET

WRITERS = 4
# A failover here takes ~5 s; a command may take this long while it does, no longer.
SWITCH_BOUND = 20.0


@dataclass
class Outcome:
    kind: str  # "register" or "invite"
    aggregate: UUID
    started: float
    ended: float
    error: str | None = None


@dataclass
class Writers:
    apps: list[OnboardingApplication]
    outcomes: list[Outcome] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, number: int) -> None:
        app = self.apps[number % len(self.apps)]
        n = 0
        while not self.stop.is_set():
            n += 1
            slug = f"w{number}-{n}"
            org = organization_id(slug)
            if self._do(
                "register",
                org,
                app.register_organization,
                name=slug,
                slug=slug,
                org_type="provider",
            ):
                email = f"{slug}@example.com"
                self._do(
                    "invite",
                    Invitation.create_id(org, email, 1),
                    app.invite,
                    organization_id=org,
                    email=email,
                    role="member",
                    first_name="Ada",
                    last_name="Writer",
                )

    def _do(self, kind: str, aggregate: UUID, command: Any, **kwargs: Any) -> bool:
        started = time.monotonic()
        error = None
        try:
            command(**kwargs)
        except Exception as exc:
            error = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
        with self.lock:
            self.outcomes.append(Outcome(kind, aggregate, started, time.monotonic(), error))
        return error is None


def stored(cluster: FailoverCluster, schema: str) -> list[tuple[UUID, int, str]]:
    with psycopg.connect(cluster.conninfo) as conn:
        rows = conn.execute(
            f'SELECT originator_id, originator_version, topic FROM "{schema}".a4c_events'
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def test_writers_across_failovers(failover_cluster: FailoverCluster, failover_schema: str) -> None:
    cluster = failover_cluster
    env = {**cluster.store_env(), "POSTGRES_SCHEMA": failover_schema}
    env["A4C_TOKEN_SECRET"] = TOKEN_SECRET
    # Two "processes" (each its own pool), the threads of each sharing it.
    apps = [OnboardingApplication(env) for _ in range(2)]
    writers = Writers(apps)
    threads = [threading.Thread(target=writers.run, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    faults: list[tuple[str, float, float]] = []
    try:
        time.sleep(1)
        for kind in ("perform_failover", "kill_primary"):
            cluster.wait_healthy()
            at = time.monotonic()
            unavailable = getattr(cluster, kind)()
            faults.append((kind, at, unavailable))
            cluster.wait_healthy()
            time.sleep(1)
    finally:
        writers.stop.set()
        for thread in threads:
            thread.join(60)
        for app in apps:
            app.close()

    outcomes = writers.outcomes
    rows = stored(cluster, failover_schema)
    versions = Counter((o, v) for o, v, _ in rows)
    assert [k for k, n in versions.items() if n > 1] == []
    ids = Counter(event_id(o, v) for o, v, _ in rows)
    assert [k for k, n in ids.items() if n > 1] == []
    present = {o for o, _, _ in rows}
    done = [o for o in outcomes if o.error is None]
    lost = [o for o in done if o.aggregate not in present]
    assert lost == [], "acknowledged commands missing after the failover"
    # Applied once: each organization records its one invitation once (a second
    # InvitationIssued would be an invite applied twice).
    issued = Counter(o for o, _, topic in rows if topic.endswith(".InvitationIssued"))
    assert [o for o, n in issued.items() if n > 1] == []
    invited = {o.aggregate for o in done if o.kind == "invite"}
    assert len(issued) >= len(invited)
    failed = [o for o in outcomes if o.error is not None]
    # Each switch may fail a command (a bounded retry gave up: a typed, retryable
    # error); none may hang past the bound, and the writers go on afterwards.
    assert all(o.ended - o.started < SWITCH_BOUND for o in outcomes)
    assert all("a4c_domain.errors" in (o.error or "") for o in failed), [
        (o.kind, round(o.ended - o.started, 2), o.error) for o in failed
    ]
    for kind, at, unavailable in faults:
        after = [o for o in done if o.started > at + unavailable + 1]
        assert after, f"no command succeeded after {kind}"
    last = max(at for _, at, _ in faults)
    assert not [o for o in failed if o.started > last + SWITCH_BOUND]
    print(  # the figures for the report (pytest -s)
        {k: round(u, 2) for k, _, u in faults},
        f"{len(done)} done, {len(failed)} failed",
        Counter(o.error.split(":")[0] for o in failed if o.error),
    )


def test_a_pooled_connection_finds_the_new_primary(
    failover_cluster: FailoverCluster, failover_schema: str
) -> None:
    """An app whose pool holds connections to the primary, listed first, writes again at
    once after a switch, though the first host in its list is now the standby."""
    failover_cluster.wait_healthy()
    primary = failover_cluster.primary_port()
    env = {**failover_cluster.store_env(), "POSTGRES_SCHEMA": failover_schema}
    ports = sorted(env["POSTGRES_PORT"].split(","), key=lambda p: p != str(primary))
    env["POSTGRES_PORT"] = ",".join(ports)
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    try:
        app.register_organization(name="Before", slug="before", org_type="provider")
        failover_cluster.perform_failover()
        assert failover_cluster.primary_port() != primary
        started = time.monotonic()
        view = app.register_organization(name="After", slug="after", org_type="provider")
        assert view.position is not None
        assert time.monotonic() - started < 5
        # Its connections are on the new primary; ended there, they are replaced.
        pids = failover_cluster.backend_pids()
        assert pids
        with psycopg.connect(failover_cluster.conninfo, autocommit=True) as admin:
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        view = app.register_organization(name="Ended", slug="ended", org_type="provider")
        assert view.position is not None
    finally:
        app.close()
