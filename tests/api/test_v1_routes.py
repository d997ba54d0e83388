"""Every ``/v1`` route against the running service: onboarding (idempotent by slug,
409s before anything starts), reading, listing, cancelling; invitations through their
lifecycle; members; read-your-writes; the OpenAPI document."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from tests.api.conftest import unique_slug
from tests.api.v1_support import (
    V1_ROUTES,
    Caller,
    World,
    assert_problem,
    onboarding,
    quiet,
    wait_for_state,
)
from tests.support import wait_for_async
from tests.worker.flows import ZONE

from a4c_api.v1.common import CONSISTENT_HEADER

OP = Caller.OPERATOR
ADMIN_A = Caller.ADMIN_A


# --- the document -----------------------------------------------------------------------


async def test_the_openapi_document_lists_every_route(world: World) -> None:
    async with world.client() as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    found = {
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    assert found == V1_ROUTES
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "bearer" in document["components"]["securitySchemes"]
    onboard = document["paths"]["/v1/organizations"]["post"]
    assert {"202", "200", "401", "403", "409", "422"} <= set(onboard["responses"])
    assert CONSISTENT_HEADER in onboard["responses"]["202"]["headers"]
    assert "Location" in onboard["responses"]["202"]["headers"]
    schemas = document["components"]["schemas"]
    assert schemas["OnboardRequest"]["examples"], "the request is documented with an example"
    assert "token_hash" not in str(schemas["Invitation"])


# --- organizations ----------------------------------------------------------------------


async def test_onboarding_is_idempotent_by_slug(world: World) -> None:
    slug = unique_slug("idem")
    request = onboarding(slug, invitees=1)
    headers = world.headers(OP)
    async with world.client() as client:
        first = await client.post("/v1/organizations", json=request, headers=headers)
        assert first.status_code == 202, first.text
        assert first.headers["Location"] == f"/v1/organizations/{slug}"
        # Read your writes: a GET right after the POST finds it.
        got = await client.get(first.headers["Location"], headers=headers)
        assert got.status_code == 200
        assert got.json()["id"] == first.json()["id"]

        again = await client.post("/v1/organizations", json=request, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == first.json()["id"]

        other = await client.post(
            "/v1/organizations", json={**request, "name": "Someone Else"}, headers=headers
        )
        conflict = assert_problem(other, 409)
        assert conflict["type"] == "urn:a4c:problem:organization-conflict"
        assert conflict["fields"] == ["name"]

        done = await wait_for_state(world.stack, client, slug, headers, {"completed"})
        assert done["organization"]["status"] == "active"
        # Once it has ended: the same request still answers 200, another still 409.
        after = await client.post("/v1/organizations", json=request, headers=headers)
        assert after.status_code == 200, after.text
        assert after.headers[CONSISTENT_HEADER] == "true"
        assert after.json()["organization"]["name"] == f"Org {slug}"
        retagged = await client.post(
            "/v1/organizations", json={**request, "tags": ["other"]}, headers=headers
        )
        assert assert_problem(retagged, 409)["fields"] == ["tags"]


async def test_onboarding_refuses_a_domain_another_organization_holds(world: World) -> None:
    holder, latecomer = unique_slug("holder"), unique_slug("late")
    domain = f"shared-{uuid.uuid4().hex[:8]}.{ZONE}"
    headers = world.headers(Caller.OPERATOR_KEY)
    async with world.client() as client:
        first = await client.post(
            "/v1/organizations", json=onboarding(holder, domain=domain), headers=headers
        )
        assert first.status_code == 202, first.text
        done = await wait_for_state(world.stack, client, holder, headers, {"completed"})
        assert done["organization"]["fqdn"] == domain
        head = await quiet(world.stack)
        taken = await client.post(
            "/v1/organizations", json=onboarding(latecomer, domain=domain), headers=headers
        )
        body = assert_problem(taken, 409)
        assert body["type"] == "urn:a4c:problem:domain-taken"
        assert holder not in body["detail"]  # the domain only, never who holds it
        missing = await client.get(f"/v1/organizations/{latecomer}", headers=headers)
        assert missing.status_code == 404
    assert await world.stack.never_bootstrapped(latecomer)
    assert await quiet(world.stack) == head


async def test_onboarding_refuses_an_unknown_parent_before_starting(world: World) -> None:
    slug = unique_slug("orphan")
    async with world.client() as client:
        response = await client.post(
            "/v1/organizations",
            json=onboarding(slug, parent_id=str(uuid.uuid4())),
            headers=world.headers(OP),
        )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["parent_id"]
    assert await world.stack.never_bootstrapped(slug)


@pytest.mark.parametrize("name", ["See http://x", "<a>Acme</a>"])
async def test_onboarding_refuses_an_organization_name_that_is_not_a_name(
    world: World, name: str
) -> None:
    """The name reaches every mail about the organization: no link, no markup in it."""
    slug = unique_slug("named")
    async with world.client() as client:
        response = await client.post(
            "/v1/organizations",
            json={**onboarding(slug), "name": name},
            headers=world.headers(OP),
        )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["name"]
    assert name not in response.text
    assert await world.stack.never_bootstrapped(slug)


@pytest.mark.parametrize("value", [False, True, "30"])
@pytest.mark.parametrize(
    ("route", "field"),
    [
        ("onboard", "propagation_wait_seconds"),
        ("onboard", "dns_verify_attempts"),
        ("offboard", "grace_period_seconds"),
    ],
)
async def test_a_number_is_a_json_number_not_a_boolean_or_a_string(
    world: World, route: str, field: str, value: object
) -> None:
    """JSON's ``false`` is not 0 seconds, nor ``true`` one attempt (found by the fuzz
    test): a 422 naming the field, and nothing started."""
    slug = unique_slug("typed")
    if route == "onboard":
        path, body = "/v1/organizations", {**onboarding(slug), "timing": {field: value}}
    else:
        path, body = f"/v1/organizations/{slug}/offboard", {"reason": "r", field: value}
    async with world.client() as client:
        response = await client.post(path, json=body, headers=world.headers(OP))
    problem = assert_problem(response, 422)
    assert [e["field"].rsplit(".", 1)[-1] for e in problem["errors"]] == [field], problem
    assert await world.stack.never_bootstrapped(slug)


async def test_an_organization_shows_its_bootstrap_progress(world: World) -> None:
    async with world.client() as client:
        response = await client.get(f"/v1/organizations/{world.orgs.a}", headers=world.headers(OP))
    assert response.status_code == 200
    body = response.json()
    assert body["organization"]["slug"] == world.orgs.a
    assert body["organization"]["status"] == "active"
    assert body["progress"]["state"] == "completed"
    assert body["progress"]["organization_id"] == str(world.orgs.a_id)


async def test_list_organizations_by_tag_and_status(world: World) -> None:
    orgs = world.orgs
    headers = world.headers(OP)
    async with world.client() as client:
        active = await client.get("/v1/organizations?tag=test&status=active", headers=headers)
        deactivated = await client.get("/v1/organizations?status=deactivated", headers=headers)
        untagged = await client.get("/v1/organizations?tag=no-such-tag", headers=headers)
        bad = await client.get("/v1/organizations?status=sleeping", headers=headers)
    assert {orgs.a, orgs.b} <= {o["slug"] for o in active.json()["organizations"]}
    assert not {orgs.a, orgs.b} & {o["slug"] for o in deactivated.json()["organizations"]}
    assert untagged.json() == {"organizations": []}
    assert [e["field"] for e in assert_problem(bad, 422)["errors"]] == ["query.status"]


async def test_cancel_a_bootstrap_in_progress(world: World) -> None:
    slug = unique_slug("cancel")
    request = onboarding(slug, domain=f"{slug}.{ZONE}")
    request["timing"]["propagation_wait_seconds"] = 120  # long enough to cancel in
    headers = world.headers(OP)
    async with world.client() as client:
        started = await client.post("/v1/organizations", json=request, headers=headers)
        assert started.status_code == 202, started.text
        await wait_for_state(world.stack, client, slug, headers, {"running"})
        cancelled = await client.post(
            f"/v1/organizations/{slug}/cancel", json={"reason": "wrong customer"}, headers=headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.headers[CONSISTENT_HEADER] == "true"
        body = cancelled.json()
        assert body["progress"]["state"] == "cancelled"
        assert body["progress"]["cancel_reason"] == "wrong customer"
        assert body["organization"]["status"] == "deactivated"
        again = await client.post(f"/v1/organizations/{slug}/cancel", json={}, headers=headers)
        assert assert_problem(again, 409)["type"] == "urn:a4c:problem:cancel-refused"
        missing = await client.post(
            f"/v1/organizations/{unique_slug('nobody')}/cancel", json={}, headers=headers
        )
        assert_problem(missing, 404)


# --- invitations and members ------------------------------------------------------------


async def test_an_invitation_through_its_lifecycle(world: World) -> None:
    stack, slug = world.stack, world.orgs.a
    email = f"lifecycle-{uuid.uuid4().hex[:8]}@Example.com"
    person = {"email": email, "role": "admin", "first_name": "Life", "last_name": "Cycle"}
    headers = world.headers(ADMIN_A)
    base = f"/v1/organizations/{slug}/invitations"
    seen: list[httpx.Response] = []
    async with world.client() as client:

        async def call(method: str, path: str, json: object = None) -> httpx.Response:
            response = await client.request(method, path, headers=headers, json=json)
            seen.append(response)
            return response

        issued = await call("POST", base, json=person)
        assert issued.status_code == 201, issued.text
        assert issued.headers[CONSISTENT_HEADER] == "true"
        invitation = issued.json()
        assert invitation["email"] == email.lower()
        assert (invitation["generation"], invitation["status"]) == (1, "pending")
        assert issued.headers["Location"] == f"{base}/{invitation['id']}"
        # Read your writes: the list right after shows it.
        listed = await call("GET", f"{base}?status=pending")
        assert invitation["id"] in {i["id"] for i in listed.json()["invitations"]}
        assert (await call("GET", f"{base}/{invitation['id']}")).json()["id"] == invitation["id"]

        same = await call("POST", base, json=person)
        assert same.status_code == 200 and same.json()["id"] == invitation["id"]
        changed = await call("POST", base, json={**person, "role": "viewer"})
        assert assert_problem(changed, 409)["fields"] == ["role"]

        resent = await call("POST", f"{base}/{invitation['id']}/resend")
        assert resent.status_code == 200, resent.text
        assert resent.json()["token_generation"] == 2
        revoked = await call("POST", f"{base}/{invitation['id']}/revoke", json={"reason": "typo"})
        assert revoked.status_code == 200, revoked.text
        assert (revoked.json()["status"], revoked.json()["revoke_reason"]) == ("revoked", "typo")
        twice = await call("POST", f"{base}/{invitation['id']}/revoke", json={"reason": "again"})
        assert assert_problem(twice, 409)["type"] == "urn:a4c:problem:invitation-revoked"
        no_resend = await call("POST", f"{base}/{invitation['id']}/resend")
        assert_problem(no_resend, 409)

        # After a revoked one, the next generation.
        second = await call("POST", base, json=person)
        assert second.status_code == 201, second.text
        assert second.json()["generation"] == 2
        assert second.json()["id"] != invitation["id"]

        # Generation 1, its re-send, generation 2: the last link is the one to accept.
        await wait_for_async(
            lambda: asyncio.to_thread(lambda: len(stack.links(email.lower())) == 3),
            what="the third mail",
        )
        user_id = f"user-{uuid.uuid4().hex[:8]}"
        await stack.make_member(slug, email.lower(), user_id)
        accepted = await call("POST", base, json=person)
        assert assert_problem(accepted, 409)["type"] == (
            "urn:a4c:problem:invitation-already-accepted"
        )
        members = await call("GET", f"/v1/organizations/{slug}/members?role=admin")
        joined = [m for m in members.json()["members"] if m["user_id"] == user_id]
        assert [(m["email"], m["role"]) for m in joined] == [(email.lower(), "admin")]

    tokens = [stack.token_of(link) for link in stack.links(email.lower())]
    for response in seen:
        assert "token_hash" not in response.text
        assert not any(token in response.text for token in tokens)


async def test_members_of_an_organization(world: World) -> None:
    orgs = world.orgs
    async with world.client() as client:
        response = await client.get(
            f"/v1/organizations/{orgs.a}/members", headers=world.headers(Caller.KEY_A)
        )
    assert response.status_code == 200
    members = {m["user_id"]: m for m in response.json()["members"]}
    assert members[orgs.admin_a]["role"] == "admin"
    assert members[orgs.member_a]["role"] == "member"
    assert members[orgs.admin_a]["email"] == f"person0@{orgs.a}.example.com"
    assert orgs.admin_b not in members


async def test_an_invitation_of_a_missing_organization_is_not_found(world: World) -> None:
    slug = unique_slug("ghost")
    async with world.client() as client:
        response = await client.post(
            f"/v1/organizations/{slug}/invitations",
            json={"email": "a@example.com", "role": "member", "first_name": "A", "last_name": "B"},
            headers=world.headers(OP),
        )
    assert assert_problem(response, 404)["type"] == "urn:a4c:problem:organization-not-found"


async def test_a_write_says_when_the_read_models_do_not_show_it_yet(world: World) -> None:
    """With no time to wait for the projection, the answer says so (A4C-Consistent:
    false) and still names the invitation it issued; a moment later the GET shows it."""
    stack, slug = world.stack, world.orgs.a
    keys = ",".join(grant.entry() for grant in stack.settings.api_keys)
    email = f"hasty-{uuid.uuid4().hex[:8]}@example.com"
    person = {"email": email, "role": "member", "first_name": "Has", "last_name": "Ty"}
    headers = world.headers(Caller.OPERATOR_KEY)
    with stack.serve(API_CONSISTENCY_TIMEOUT="0", API_KEYS=keys) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60.0) as client:
            issued = await client.post(
                f"/v1/organizations/{slug}/invitations", json=person, headers=headers
            )
            assert issued.status_code == 201, issued.text
            assert issued.headers[CONSISTENT_HEADER] == "false"
            invitation = issued.json()
            assert (invitation["email"], invitation["status"]) == (email, "pending")
            await stack.settle()
            shown = await client.get(issued.headers["Location"], headers=headers)
    assert shown.status_code == 200
    assert shown.json()["id"] == invitation["id"]
