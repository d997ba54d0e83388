"""One tenant cannot take or delete another tenant's DNS record (issue 9, item 2).

Real BIND (RFC 2136), the real Temporal dev server and a real event store: the attack
is a second bootstrap naming the first organization's domain and then failing (here:
cancelled during the propagation wait), whose compensation used to delete the whole
record set while the first organization still said "verified".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from tests.servers.bind import BindServer
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET
from tests.worker.flows import Flows, bootstrap_input, sqlite_app
from tests.worker.providers.test_rfc2136 import publish_foreign

from a4c_domain import OnboardingApplication, organization_id
from a4c_worker.client import BootstrapHandle, start_bootstrap
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.models import BootstrapInput

TARGET = "edge.a4c.test."


def served(bind: BindServer, fqdn: str) -> list[str]:
    """What BIND serves for ``fqdn`` right now, asked directly over TCP."""
    response = dns.query.tcp(dns.message.make_query(fqdn, "CNAME"), bind.host, port=bind.port)
    return [rdata.to_text() for rrset in response.answer for rdata in rrset]


def refusal_of(error: BaseException) -> ApplicationError:
    """The activity's own failure behind a bootstrap failure, checked non-retryable:
    Temporal gave up after the first attempt because the failure said so."""
    activity_error = error
    while not isinstance(activity_error, ActivityError):
        cause = getattr(activity_error, "cause", None)
        assert cause is not None, error
        activity_error = cause
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE, activity_error
    refusal = activity_error.cause
    assert isinstance(refusal, ApplicationError), activity_error
    return refusal


def spec_for(slug: str, fqdn: str, **extra: Any) -> BootstrapInput:
    return bootstrap_input(slug, invitees=1, **extra).model_copy(update={"domain": fqdn})


async def settle_or_cancel(handle: BootstrapHandle) -> ApplicationError:
    """Let the bootstrap fail by itself; if it gets as far as the propagation wait
    (the old code did), cancel it there, which runs its DNS compensation."""
    for _ in range(400):
        progress = await handle.query(OrganizationBootstrapWorkflow.progress)
        if progress.state != "running":
            break
        if progress.current_step == "propagation_wait":
            await handle.signal(OrganizationBootstrapWorkflow.cancel, "attacker gives up")
            break
        await asyncio.sleep(0.05)
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


@pytest.fixture
def flows(
    tmp_path: Path, temporal_client: Client, task_queue: str, bind_server: BindServer
) -> Iterator[Flows]:
    app = sqlite_app(tmp_path)
    flows = Flows(app=app, client=temporal_client, task_queue=task_queue)
    flows.use_bind(bind_server)
    yield flows
    app.close()


def victim_domain(bind: BindServer) -> str:
    return f"shop-{uuid.uuid4().hex[:8]}.{bind.zone.rstrip('.')}"


async def test_a_second_bootstrap_naming_a_taken_domain_is_refused_and_harms_nothing(
    flows: Flows, bind_server: BindServer
) -> None:
    fqdn = victim_domain(bind_server)
    async with flows.worker():
        victim = await start_bootstrap(flows.client, spec_for("victim", fqdn), flows.task_queue)
        await victim.result()
        assert served(bind_server, fqdn) == [TARGET]

        attack = spec_for("attacker", fqdn, propagation_wait_seconds=600)
        error = await settle_or_cancel(
            await start_bootstrap(flows.client, attack, flows.task_queue)
        )

    # The victim's record is still published, and its organization is intact.
    assert served(bind_server, fqdn) == [TARGET]
    owner = flows.app.get_organization(organization_id("victim"))
    assert (owner.status, owner.dns_status, owner.fqdn) == ("active", "verified", fqdn)
    # The attacker was refused at registration, before any event of it was stored.
    assert error.type == "BootstrapFailed"
    assert error.message.startswith("bootstrap of 'attacker' failed at register: DomainTaken")
    refusal = refusal_of(error)
    assert refusal.type == "DomainTaken"
    assert refusal.message == f"domain {fqdn} is already taken by another organization"
    assert flows.event_names(organization_id("attacker")) == []


@pytest.mark.parametrize("domain", ["apex", "outside"], ids=["zone-apex", "outside-the-zone"])
async def test_the_zone_apex_and_names_outside_the_zone_are_refused_before_any_event(
    flows: Flows, bind_server: BindServer, domain: str
) -> None:
    zone = bind_server.zone.rstrip(".")
    fqdn = zone if domain == "apex" else f"shop.elsewhere-{uuid.uuid4().hex[:6]}.test"
    slug = f"bad-{domain}"
    before = served(bind_server, zone)
    async with flows.worker():
        error = await settle_or_cancel(
            await start_bootstrap(flows.client, spec_for(slug, fqdn), flows.task_queue)
        )
    assert error.type == "BootstrapFailed"
    refusal = refusal_of(error)
    assert refusal.type == "DomainOutsideZone"
    assert f"domain {fqdn} " in refusal.message
    assert flows.event_names(organization_id(slug)) == []
    assert served(bind_server, zone) == before


async def test_two_bootstraps_racing_for_one_domain_exactly_one_wins(
    pg_schema: str,
    temporal_client: Client,
    task_queue: str,
    bind_server: BindServer,
) -> None:
    """On PostgreSQL: two workers (own task queue, own application and connections)."""
    apps = [
        OnboardingApplication(postgres_env(pg_schema), token_secret=TOKEN_SECRET) for _ in range(2)
    ]
    fqdn = victim_domain(bind_server)
    racers = [
        Flows(app=app, client=temporal_client, task_queue=f"{task_queue}-{i}")
        for i, app in enumerate(apps)
    ]
    for racer in racers:
        racer.use_bind(bind_server)
    try:
        async with racers[0].worker(), racers[1].worker():
            handles = await asyncio.gather(
                *(
                    start_bootstrap(temporal_client, spec_for(f"racer-{i}", fqdn), r.task_queue)
                    for i, r in enumerate(racers)
                )
            )
            outcomes = await asyncio.gather(*(h.result() for h in handles), return_exceptions=True)
        won = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
        lost = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(won) == 1, outcomes
        [failure] = lost
        assert refusal_of(failure).type == "DomainTaken"
        winner = apps[0].get_organization(organization_id(f"racer-{won[0]}"))
        assert (winner.status, winner.dns_status) == ("active", "verified")
        assert apps[0].domain_owner(fqdn) == winner.id
        assert served(bind_server, fqdn) == [TARGET]
    finally:
        for app in apps:
            app.close()


async def test_a_foreign_record_at_the_domain_is_a_conflict_and_survives_the_compensation(
    flows: Flows, bind_server: BindServer
) -> None:
    """Someone else published the name first (other data): the bootstrap fails on a
    non-retryable conflict, and its DNS compensation leaves that record alone."""
    fqdn = victim_domain(bind_server)
    publish_foreign(bind_server, f"{fqdn}.", "CNAME", "someone-else.example.com.")
    async with flows.worker():
        error = await settle_or_cancel(
            await start_bootstrap(flows.client, spec_for("late", fqdn), flows.task_queue)
        )
    assert served(bind_server, fqdn) == ["someone-else.example.com."]
    assert error.message.startswith("bootstrap of 'late' failed at configure_dns")
    refusal = refusal_of(error)
    assert refusal.type == "DNSRecordConflict"
    assert "already has CNAME someone-else.example.com." in refusal.message
    org = flows.app.get_organization(organization_id("late"))
    assert (org.status, org.dns_status) == ("deactivated", "removed")
