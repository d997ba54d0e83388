"""Offboarding through ``/v1`` on the API tests' shared stack (real Temporal, the real
projector on a SQLite store, the test OpenID provider): started by an owner, followed,
joined, cancelled inside its grace period, refused while children live; and what ending
an organization ends: its keys, its members' rights, its writes, its accept page.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

import httpx
from playwright.async_api import Page, expect
from tests.api.conftest import Stack, unique_slug
from tests.api.v1_support import OP, OPK, World, assert_problem, quiet
from tests.worker.flows import bootstrap_input

from a4c_api.cli import new_key
from a4c_worker.client import start_bootstrap
from a4c_worker.workflows.models import BootstrapInput


def people(slug: str) -> list[dict[str, str]]:
    """An owner, a member, and one who never accepts."""
    return [
        {
            "email": f"person{i}@{slug}.example.com",
            "role": role,
            "first_name": f"First {'ABC'[i]}",
            "last_name": f"Last {'ABC'[i]}",
        }
        for i, role in enumerate(("owner", "member", "member"))
    ]


async def onboarded(stack: Stack, slug: str, **extra: Any) -> tuple[str, str]:
    """``slug`` onboarded, its owner and member signed up: their user ids."""
    spec = BootstrapInput.model_validate(
        {**bootstrap_input(slug, **extra).model_dump(), "invitees": people(slug)}
    )
    await (await start_bootstrap(stack.client, spec, stack.task_queue)).result()
    await stack.wait_for_mail(3, slug)
    await stack.settle()
    owner, member = f"owner-{slug}", f"member-{slug}"
    await stack.make_member(slug, f"person0@{slug}.example.com", owner)
    await stack.make_member(slug, f"person1@{slug}.example.com", member)
    return owner, member


async def until(
    client: httpx.AsyncClient, slug: str, headers: dict[str, str], states: set[str]
) -> dict[str, Any]:
    """GET the offboarding until its state is one of ``states``."""
    for _ in range(600):
        response = await client.get(f"/v1/organizations/{slug}/offboarding", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["offboarding"] is not None and body["offboarding"]["state"] in states:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the offboarding of {slug} never reached {states}")


async def test_an_owner_offboards_and_everything_of_the_organization_ends(
    world: World, page: Page
) -> None:
    stack = world.stack
    slug = unique_slug("leave")
    owner, member = await onboarded(stack, slug)
    org_id = stack.organization_id(slug)
    pending_link = stack.link(f"person2@{slug}.example.com")
    key, grant = new_key("leaving", org_id)
    keys = ",".join([*(g.entry() for g in stack.settings.api_keys), grant.entry()])
    as_owner = {"Authorization": f"Bearer {world.token(owner)}"}
    as_member = {"Authorization": f"Bearer {world.token(member)}"}
    as_key = {"Authorization": f"Bearer {key}"}
    with stack.serve(API_KEYS=keys, API_PUBLIC_URL=stack.settings.api_public_url) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60.0) as client:
            assert (
                await client.get(f"/v1/organizations/{slug}", headers=as_key)
            ).status_code == 200
            started = await client.post(
                f"/v1/organizations/{slug}/offboard",
                json={"reason": "contract ended"},
                headers=as_owner,
            )
            assert started.status_code == 202, started.text
            assert started.headers["Location"] == f"/v1/organizations/{slug}/offboarding"
            done = await until(client, slug, world.headers(OP), {"completed"})
            await stack.settle()
            row = (await client.get(f"/v1/organizations/{slug}", headers=world.headers(OP))).json()[
                "organization"
            ]
            # The organization's key stops working; its members' rights end.
            refused_key = await client.get(f"/v1/organizations/{slug}", headers=as_key)
            refused_owner = await client.get(f"/v1/organizations/{slug}", headers=as_owner)
            refused_member = await client.get(
                f"/v1/organizations/{slug}/members", headers=as_member
            )
            # A write is answered organization-inactive.
            invite = await client.post(
                f"/v1/organizations/{slug}/invitations",
                json={"email": "late@example.com", "role": "member", "first_name": "La",
                      "last_name": "Te"},
                headers=world.headers(OPK),
            )  # fmt: skip
            # The members' history stays.
            members = await client.get(
                f"/v1/organizations/{slug}/members", headers=world.headers(OP)
            )
            # Offboarding again: already done, nothing written.
            head = await quiet(stack)
            again = await client.delete(f"/v1/organizations/{slug}", headers=world.headers(OP))
            assert await quiet(stack) == head
            events = await client.get(
                "/v1/events",
                params={"organization": slug, "types": "organization.offboarded"},
                headers=world.headers(OP),
            )

    progress = done["offboarding"]
    assert progress["completed_steps"] == [
        "grace_period",
        "revoke_invitations",
        "remove_dns",
        "offboard",
        "mail_admins",
    ]
    assert [UUID(i) for i in progress["revoked_invitation_ids"]] == [
        stack.invitation(slug, f"person2@{slug}.example.com").id
    ]
    assert (row["status"], row["deactivation_reason"], row["dns_status"]) == (
        "offboarded",
        "contract ended",
        "removed",
    )
    assert_problem(refused_key, 401)
    for refused in (refused_owner, refused_member):
        body = assert_problem(refused, 403)
        assert body["type"] == "urn:a4c:problem:organization-inactive"
    assert assert_problem(invite, 409)["type"] == "urn:a4c:problem:organization-inactive"
    assert sorted(m["user_id"] for m in members.json()["members"]) == sorted([owner, member])
    assert again.status_code == 200, again.text
    assert again.json()["organization"]["status"] == "offboarded"
    assert [e["data"] for e in events.json()["data"]] == [{"reason": "contract ended"}]
    # The invitee who never accepted opens the mail's link: the page says why it is dead.
    opened = await page.goto(pending_link)
    assert opened is not None and opened.status == 410
    await expect(page.get_by_role("heading")).to_contain_text("no longer active")


async def test_a_second_request_joins_and_a_cancel_in_the_grace_period_changes_nothing(
    world: World,
) -> None:
    stack = world.stack
    slug = unique_slug("stay")
    await onboarded(stack, slug)
    async with world.client() as client:
        head = await quiet(stack)
        path = f"/v1/organizations/{slug}/offboard"
        first = await client.post(
            path, json={"reason": "first", "grace_period_seconds": 600}, headers=world.headers(OP)
        )
        second = await client.post(
            path, json={"reason": "second", "grace_period_seconds": 1}, headers=world.headers(OPK)
        )
        assert (first.status_code, second.status_code) == (202, 202), second.text
        waiting = await until(client, slug, world.headers(OP), {"waiting"})
        cancelled = await client.post(
            f"{path}/cancel", json={"reason": "customer stays"}, headers=world.headers(OP)
        )
        late = await client.post(f"{path}/cancel", json={}, headers=world.headers(OP))
        row = (await client.get(f"/v1/organizations/{slug}", headers=world.headers(OP))).json()
    assert waiting["offboarding"]["grace_ends_at"] is not None
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["offboarding"]["state"] == "cancelled"
    assert assert_problem(late, 409)["type"] == "urn:a4c:problem:cancel-refused"
    assert await quiet(stack) == head  # nothing was written
    assert row["organization"]["status"] == "active"


async def test_refused_while_a_child_organization_lives(world: World) -> None:
    stack = world.stack
    parent, child = unique_slug("parent"), unique_slug("child")
    await stack.bootstrap(parent, invitees=0, domain=False)
    await stack.bootstrap(child, invitees=0, domain=False, parent_id=stack.organization_id(parent))
    async with world.client() as client:
        refused = await client.post(
            f"/v1/organizations/{parent}/offboard", json={"reason": "x"}, headers=world.headers(OP)
        )
        child_gone = await client.post(
            f"/v1/organizations/{child}/offboard", json={"reason": "x"}, headers=world.headers(OP)
        )
        assert child_gone.status_code == 202, child_gone.text
        await until(client, child, world.headers(OP), {"completed"})
        await stack.settle()
        parent_gone = await client.post(
            f"/v1/organizations/{parent}/offboard", json={"reason": "x"}, headers=world.headers(OP)
        )
    body = assert_problem(refused, 409)
    assert body["type"] == "urn:a4c:problem:organization-has-children"
    assert parent_gone.status_code == 202, parent_gone.text


async def test_an_unknown_organization_is_not_found(world: World) -> None:
    async with world.client() as client:
        response = await client.post(
            f"/v1/organizations/{unique_slug('nobody')}/offboard",
            json={"reason": "x"},
            headers=world.headers(OP),
        )
    assert_problem(response, 404)
