"""A save whose connection is lost at COMMIT ends applied exactly once.

The outcome of such a commit is unknown to the client: the server may have committed
(then "again" must find the events already there) or not (then it must save again).
``CutProxy`` makes both happen on purpose, on the real local PostgreSQL, for every kind
of save the commands make (a create saved without reading, a claim in the same save, a
save of several aggregates, an update) and both insert paths.

eventsourcing alone already handles a short cut: it retries the insert, which either
saves or meets the (aggregate, version) key, and the save loop decides again. What it
cannot handle is a server that stays away longer than its retries (a failover): the last
test, which failed before a4c ran the command again, with
``eventsourcing.persistence.OperationalError: couldn't get a connection after 1.00 sec``
for a registration that was in fact stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import UUID

import psycopg
import pytest

from a4c_domain import OnboardingApplication
from a4c_domain.ids import organization_id
from a4c_domain.invitation import Invitation
from tests.domain.support import FakeClock
from tests.failover.cutproxy import CutProxy
from tests.servers.postgres import PG_HOST, PG_PORT, postgres_env
from tests.support import TOKEN_SECRET

# The bytes that commit, per insert path: the lock-free insert function commits by
# itself (autocommit); the table-lock path sends COMMIT after its pipeline.
MARKERS = {"functions": b"a4c_domain.", "table-lock": b"COMMIT"}
EMAIL = "ada@example.com"
ORG = organization_id("cut")
INV = Invitation.create_id(ORG, EMAIL, 1)


@pytest.fixture
def proxy() -> Iterator[CutProxy]:
    cut = CutProxy((PG_HOST, int(PG_PORT)))
    yield cut
    cut.close()


def register(app: OnboardingApplication) -> object:
    return app.register_organization(
        name="Cut", slug="cut", org_type="provider", domain="cut.example.com"
    )


def invite(app: OnboardingApplication) -> object:
    return app.invite(
        organization_id=ORG, email=EMAIL, role="member", first_name="Ada", last_name="L"
    )


def reissue(app: OnboardingApplication) -> object:
    return app.reissue_token(organization_id=ORG, invitation_id=INV, token_generation=2)


def accept(app: OnboardingApplication) -> object:
    token = app.invitation_token(INV, ORG)
    return app.accept_invitation(organization_id=ORG, invitation_id=INV, token=token, user_id="u1")


def configure_dns(app: OnboardingApplication) -> object:
    return app.configure_dns(
        organization_id=ORG, fqdn="www.cut.example.com", target="lb.example.com", record_id="r1"
    )


def deactivate(app: OnboardingApplication) -> object:
    return app.deactivate(organization_id=ORG, reason="cut at commit")


# Each command, the ones it needs first, and the aggregates whose versions it adds.
COMMANDS: dict[
    str, tuple[list[Callable[[OnboardingApplication], object]], Callable[..., object]]
] = {
    "register with a claim": ([], register),
    "invite (two aggregates)": ([register], invite),
    "configure DNS (a second claim)": ([register], configure_dns),
    "reissue": ([register, invite], reissue),
    "accept": ([register, invite], accept),
    "deactivate (revokes too)": ([register, invite], deactivate),
}


def rows(schema: str) -> list[tuple[UUID, int, str]]:
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="test") as conn:
        found = conn.execute(
            f'SELECT originator_id, originator_version, topic FROM "{schema}".a4c_events'
            " ORDER BY notification_id"
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in found]


@pytest.mark.parametrize("mode", sorted(MARKERS))
@pytest.mark.parametrize("deliver", [True, False], ids=["committed", "not-committed"])
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_commit_whose_answer_is_lost_applies_once(
    proxy: CutProxy, pg_schema: str, mode: str, deliver: bool, name: str
) -> None:
    before, command = COMMANDS[name]
    env = {
        **postgres_env(pg_schema),
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "POSTGRES_ENABLE_DB_FUNCTIONS": "y" if mode == "functions" else "n",
    }
    direct = OnboardingApplication(env, clock=FakeClock())
    for step in before:
        step(direct)
    expected_direct = rows(pg_schema)
    # The same command on a second store, never cut: what "applied once" looks like.
    proxied = OnboardingApplication({**env, "POSTGRES_PORT": str(proxy.port)}, clock=FakeClock())
    try:
        proxy.arm(MARKERS[mode], deliver=deliver)
        result = command(proxied)
        assert proxy.cuts == 1
        again = command(direct)  # the same command again: a no-op, the same result
    finally:
        proxied.close()
        direct.close()
    stored = rows(pg_schema)
    new = stored[len(expected_direct) :]
    assert new, "the command stored nothing"
    # Committed: the command ran again and found its events (a repeat: no position);
    # not committed: it saved them itself.
    assert (getattr(result, "position", 0) is None) == deliver
    assert len({(o, v) for o, v, _ in stored}) == len(stored)
    assert getattr(again, "id", None) == getattr(result, "id", None)
    # Exactly the events one uncut run stores: one per aggregate it changes.
    assert len({o for o, _, _ in new}) == len(new)


OUTAGE = 7.0  # longer than eventsourcing's own retries of one call (see below)


def test_a_lost_commit_then_an_outage_still_ends_applied_once(
    proxy: CutProxy, pg_schema: str
) -> None:
    """The primary dies at COMMIT and its successor takes a few seconds: eventsourcing's
    own retries of the insert give up first; the command runs again and finds it done."""
    env = {
        **postgres_env(pg_schema),
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "POSTGRES_PORT": str(proxy.port),
        "POSTGRES_CONNECT_TIMEOUT": "1",
    }
    app = OnboardingApplication(env, clock=FakeClock())
    try:
        proxy.arm(MARKERS["functions"], outage=OUTAGE)
        view = register(app)
    finally:
        app.close()
    assert proxy.cuts == 1
    assert getattr(view, "id", None) == ORG
    assert getattr(view, "position", 0) is None  # committed before the outage: found
    stored = rows(pg_schema)
    assert sorted(v for o, v, _ in stored if o == ORG) == [1]
