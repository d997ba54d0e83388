"""``/v1/organizations/{slug}/sso`` and ``…/email-domains`` on the API stack (real
Temporal, worker, projector), a second test OpenID provider (keys of its own) as the
organization's: a configuration is checked and waits for its test sign-in, its client
secret sealed at once and never shown; a provider lying about its issuer is a 422 named
after it; one configuration at a time; DELETE abandons a configuration being tried and
ends the one in force. An e-mail domain's TXT record is answered, checked once
published, verified; another organization's request for it then a 409."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tests.api.v1_support import ADM_A, ADM_B, OPK, World, assert_problem
from tests.servers.oidc import OIDCProvider, serve_provider
from tests.support import wait_for_async
from tests.worker.flows import provider_sign_in

from a4c_api.v1 import sso as sso_routes
from a4c_domain.email_domains import CHALLENGE_PREFIX
from a4c_worker.sso_client import report_sso_test

SECRET = "the-client-secret-" + uuid.uuid4().hex
CALLBACK = "http://127.0.0.1:9/sso/callback"  # never contacted: the test reads it


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=world.base_url, timeout=60) as http:
        yield http
        # Organization A is shared with other modules: leave it without single sign-on.
        ended = await http.delete(
            f"/v1/organizations/{world.orgs.a}/sso", headers=world.headers(OPK)
        )
        assert ended.status_code == 200, ended.text
        assert ended.json()["state"] == "none"


@pytest.fixture
def own_provider() -> Iterator[OIDCProvider]:
    with serve_provider() as provider:
        yield provider


def settings(provider: OIDCProvider, client_id: str = "a4c-org") -> dict[str, Any]:
    return {"issuer": provider.issuer, "client_id": client_id, "client_secret": SECRET}


def sso_path(world: World) -> str:
    return f"/v1/organizations/{world.orgs.a}/sso"


async def test_a_provider_is_checked_then_awaits_its_test_and_the_secret_never_shows(
    world: World, client: httpx.AsyncClient, own_provider: OIDCProvider
) -> None:
    put = await client.put(
        sso_path(world), json=settings(own_provider), headers=world.headers(ADM_A)
    )
    assert put.status_code == 202, put.text
    body = put.json()
    assert (body["state"], body["issuer"], body["client_id"]) == (
        "pending",
        own_provider.issuer,
        "a4c-org",
    )
    progress = body["configuration"]
    assert progress["state"] == "waiting_for_test"
    assert progress["authorization_endpoint"] == own_provider.url("/authorize")
    assert put.headers["Location"] == sso_path(world)
    got = await client.get(sso_path(world), headers=world.headers(ADM_A))
    assert got.status_code == 200 and got.json()["state"] == "pending"

    # The secret: in no answer, no read-model row; the event store has it sealed.
    assert SECRET not in put.text + got.text
    assert SECRET not in repr(world.stack.app.get_sso_connection(world.orgs.a_id))
    stored = [
        n.state.decode(errors="replace")
        for n in world.stack.app.recorder.select_notifications(start=1, limit=100_000)
        if "SSOConnection" in n.topic
    ]
    assert stored and not any(SECRET in s for s in stored)

    again = await client.put(
        sso_path(world), json=settings(own_provider), headers=world.headers(ADM_A)
    )
    assert assert_problem(again, 409)["type"] == "urn:a4c:problem:sso-configuration-running"

    # Cancelled while it waits: abandoned, none in force.
    ended = await client.delete(sso_path(world), headers=world.headers(ADM_A))
    assert ended.status_code == 200, ended.text
    assert ended.json()["state"] == "none"
    assert ended.json()["configuration"]["state"] == "abandoned"


async def test_a_check_still_running_when_the_wait_is_over_answers_202_and_get_shows_its_end(
    world: World, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API waits a second for the check; the provider takes three to answer each of
    # its two requests (discovery, keys), well inside the check's own timeout.
    monkeypatch.setattr(sso_routes, "CHECK_WAIT_SECONDS", 1.0)
    with serve_provider(delay=3.0) as slow:
        put = await client.put(sso_path(world), json=settings(slow), headers=world.headers(ADM_A))
        assert put.status_code == 202, put.text
        body = put.json()
        assert body["state"] == "none"  # nothing recorded yet: still checking
        assert body["configuration"]["state"] == "checking_provider"
        assert put.headers["Location"] == sso_path(world)

        async def checked() -> bool:
            got = await client.get(sso_path(world), headers=world.headers(ADM_A))
            return bool(got.json()["configuration"]["state"] == "waiting_for_test")

        await wait_for_async(checked, what="the slow provider's check to end")
    got = (await client.get(sso_path(world), headers=world.headers(ADM_A))).json()
    assert (got["state"], got["issuer"]) == ("pending", slow.issuer)
    assert SECRET not in put.text


async def test_a_provider_lying_about_its_issuer_is_refused_by_name(
    world: World, client: httpx.AsyncClient
) -> None:
    with serve_provider(discovery_overrides={"issuer": "https://elsewhere.example.com"}) as liar:
        put = await client.put(sso_path(world), json=settings(liar), headers=world.headers(ADM_A))
    body = assert_problem(put, 422)
    assert body["type"] == "urn:a4c:problem:issuer-mismatch"
    assert "elsewhere.example.com" in body["detail"] and SECRET not in put.text
    got = (await client.get(sso_path(world), headers=world.headers(ADM_A))).json()
    assert got["state"] == "none" and got["configuration"]["state"] == "refused"


async def test_the_connection_in_force_is_ended_by_delete(
    world: World, client: httpx.AsyncClient, own_provider: OIDCProvider
) -> None:
    relying = own_provider.register_client(CALLBACK)
    body = {
        "issuer": own_provider.issuer,
        "client_id": relying.client_id,
        "client_secret": relying.client_secret,
    }
    put = await client.put(sso_path(world), json=body, headers=world.headers(OPK))
    assert put.status_code == 202, put.text
    generation = put.json()["pending_generation"]
    # What the test sign-in page sends once the admin is back from the provider.
    signed_in = await provider_sign_in(own_provider, relying, "admin@a.example.com", generation)
    done = await report_sso_test(world.stack.client, world.orgs.a_id, signed_in)
    assert done.state == "active"

    async def active() -> bool:
        got = await client.get(sso_path(world), headers=world.headers(ADM_A))
        return bool(got.json()["state"] == "active")

    await wait_for_async(active, what="single sign-on in force")
    got = (await client.get(sso_path(world), headers=world.headers(ADM_A))).json()
    assert (got["active_issuer"], got["active_client_id"]) == (
        own_provider.issuer,
        relying.client_id,
    )
    ended = await client.delete(
        sso_path(world) + "?reason=moving+providers", headers=world.headers(ADM_A)
    )
    assert ended.status_code == 200, ended.text
    assert (ended.json()["state"], ended.json()["deactivation_reason"]) == (
        "none",
        "moving providers",
    )


async def test_an_email_domain_is_verified_once_its_record_is_published(
    world: World, client: httpx.AsyncClient
) -> None:
    domain = f"mail-{uuid.uuid4().hex[:8]}.example.com"
    domains = f"/v1/organizations/{world.orgs.a}/email-domains"
    asked = await client.post(domains, json={"domain": domain}, headers=world.headers(ADM_A))
    assert asked.status_code == 202, asked.text
    record = asked.json()["record"]
    assert asked.json()["status"] == "pending"
    assert record["name"] == f"_a4c-challenge.{domain}" and record["type"] == "TXT"
    assert record["value"].startswith(CHALLENGE_PREFIX)
    again = await client.post(domains, json={"domain": domain}, headers=world.headers(ADM_A))
    assert again.json()["record"] == record  # the first challenge stands
    listed = (await client.get(domains, headers=world.headers(ADM_A))).json()
    assert {"domain": domain, "status": "pending", "record": record, "verified_at": None} in (
        listed["email_domains"]
    )

    world.stack.txt.records[record["name"]] = [record["value"]]
    checking = await client.post(f"{domains}/{domain}/verify", headers=world.headers(ADM_A))
    assert checking.status_code == 202, checking.text

    async def verified() -> bool:
        rows = (await client.get(domains, headers=world.headers(ADM_A))).json()["email_domains"]
        return any(r["domain"] == domain and r["status"] == "verified" for r in rows)

    await wait_for_async(verified, what="the e-mail domain verified")
    done = await client.post(f"{domains}/{domain}/verify", headers=world.headers(ADM_A))
    assert done.status_code == 200 and done.json()["status"] == "verified"

    # One owner: B's request for it is refused; a domain never asked for is not found.
    taken = await client.post(
        f"/v1/organizations/{world.orgs.b}/email-domains",
        json={"domain": domain},
        headers=world.headers(ADM_B),
    )
    assert assert_problem(taken, 409)["type"] == "urn:a4c:problem:email-domain-taken"
    missing = await client.post(
        f"{domains}/never-{uuid.uuid4().hex[:6]}.example.com/verify", headers=world.headers(ADM_A)
    )
    assert assert_problem(missing, 404)["type"] == "urn:a4c:problem:email-domain-not-found"
