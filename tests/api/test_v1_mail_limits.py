"""The platform's mail cannot be used to flood or phish an address (issue 16, item 4).

Through the real ``/v1`` API: an invitation's re-sends are refused within the cooldown
and past the cap (429, ``Retry-After``, a problem type), whichever API instance is
asked; an organization's invitations per hour and pending invitations are limited
across instances; names that would carry a link or markup into the mail's greeting are
refused (422 naming the field) before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from tests.api.conftest import Stack, unique_slug
from tests.api.v1_support import assert_problem, onboarding

OPERATOR = "operator"


@contextlib.contextmanager
def instances(stack: Stack, count: int, **limits: str) -> Iterator[list[httpx.AsyncClient]]:
    """``count`` API instances on the stack, all with ``limits``, each behind a client that
    sends the operator key."""
    headers = {"Authorization": f"Bearer {stack.operator_key}"}
    with contextlib.ExitStack() as served:
        bases = [
            served.enter_context(stack.serve(port=None, **limits)).base_url for _ in range(count)
        ]
        yield [httpx.AsyncClient(base_url=b, headers=headers, timeout=60.0) for b in bases]


async def new_organization(stack: Stack) -> str:
    """An organization of its own (onboarded with nobody invited)."""
    slug = unique_slug("limits")
    await stack.bootstrap(slug, invitees=0, domain=False)
    return slug


@pytest.fixture
async def org(api_stack: Stack) -> AsyncIterator[str]:
    yield await new_organization(api_stack)


@pytest.fixture(scope="module")
async def names_org(api_stack: Stack) -> AsyncIterator[str]:
    yield await new_organization(api_stack)


def person(tag: str = "") -> dict[str, str]:
    return {
        "email": f"invitee-{tag or uuid.uuid4().hex[:8]}@outside.example",
        "role": "member",
        "first_name": "Grace",
        "last_name": "Hopper",
    }


def limited(response: httpx.Response, kind: str) -> int:
    """``response`` is a 429 of problem type ``kind``; its ``Retry-After`` in seconds."""
    body = assert_problem(response, 429)
    assert body["type"] == f"urn:a4c:problem:{kind}", body
    wait = int(response.headers["Retry-After"])
    assert wait >= 1 and body["retry_after"] == wait, (wait, body)
    return wait


async def invite(client: httpx.AsyncClient, slug: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/organizations/{slug}/invitations", json=body)


async def test_resends_within_the_cooldown_are_refused_by_every_instance(
    api_stack: Stack, org: str
) -> None:
    """The cooldown is the invitation's (its workflow's), not an instance's."""
    with instances(api_stack, 2, API_RESEND_COOLDOWN_SECONDS="3600") as (one, two):
        async with one, two:
            issued = await invite(one, org, person())
            assert issued.status_code == 201, issued.text
            resend = f"{issued.headers['Location']}/resend"
            for client in (one, two):
                wait = limited(await client.post(resend), "resend-too-soon")
                assert 3500 < wait <= 3600
            shown = await two.get(issued.headers["Location"])
    assert shown.json()["token_generation"] == 1  # nothing was re-sent


async def test_a_resend_flood_through_two_instances_stops_at_the_cap(
    api_stack: Stack, org: str
) -> None:
    """1 invite + 20 re-sends used to put 21 mails in one inbox; now 1 + the cap, even
    with the 20 sent at once through two instances."""
    someone = person()
    limits = {"API_RESEND_COOLDOWN_SECONDS": "0", "API_MAX_RESENDS": "3"}
    with instances(api_stack, 2, **limits) as (one, two):
        async with one, two:
            issued = await invite(one, org, someone)
            assert issued.status_code == 201, issued.text
            resend = f"{issued.headers['Location']}/resend"
            answers = await asyncio.gather(*((one, two)[n % 2].post(resend) for n in range(20)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 3 + [429] * 17, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 429):
        limited(refused, "too-many-resends")
    # Each accepted re-send answered once its mail was out; the refused ones sent none.
    assert len(api_stack.links(someone["email"])) == 1 + 3


async def test_an_organizations_invitations_per_hour_hold_across_instances(
    api_stack: Stack, org: str
) -> None:
    limits = {"API_INVITATIONS_PER_ORGANIZATION_PER_HOUR": "3"}
    with instances(api_stack, 2, **limits) as (one, two):
        async with one, two:
            answers = [await (one, two)[n % 2].post(
                f"/v1/organizations/{org}/invitations", json=person()
            ) for n in range(3)]  # fmt: skip
            assert [a.status_code for a in answers] == [201, 201, 201], [a.text for a in answers]
            for client in (one, two):
                wait = limited(await invite(client, org, person()), "too-many-invitations")
                assert 3500 < wait <= 3600  # when the first of the three leaves the hour
            # Revoking frees no place in the hour: the mails went out.
            first = answers[0].headers["Location"]
            revoked = await one.post(f"{first}/revoke", json={"reason": "typo"})
            assert revoked.status_code == 200, revoked.text
            limited(await invite(two, org, person()), "too-many-invitations")
            # Another organization is not limited by this one's invitations.
            other = await new_organization(api_stack)
            assert (await invite(one, other, person())).status_code == 201


async def test_an_organizations_pending_invitations_are_limited(api_stack: Stack, org: str) -> None:
    limits = {"API_MAX_PENDING_INVITATIONS_PER_ORGANIZATION": "2"}
    with instances(api_stack, 2, **limits) as (one, two):
        async with one, two:
            someone = person()
            first = await invite(one, org, someone)
            second = await invite(two, org, person())
            assert (first.status_code, second.status_code) == (201, 201), second.text
            wait = limited(await invite(one, org, person()), "too-many-pending-invitations")
            assert wait > 3600  # the first expiry is days away (the default TTL)
            # The same pending invitation again is no new mail: still answered.
            again = await invite(two, org, someone)
            assert again.status_code == 200, again.text
            # Revoking one frees its place at once.
            revoked = await two.post(f"{first.headers['Location']}/revoke", json={"reason": "left"})
            assert revoked.status_code == 200, revoked.text
            assert (await invite(one, org, person())).status_code == 201


HOSTILE_NAMES = [
    "Visit https://evil.example",
    "evil.example",
    "<a href='x'>Grace</a>",
    "Grace 2",
    "Grace@evil",
    "&#60;b&#62;",
]


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("name", HOSTILE_NAMES)
async def test_names_that_could_carry_a_link_or_markup_are_refused(
    api_stack: Stack, names_org: str, field: str, name: str
) -> None:
    headers = {"Authorization": f"Bearer {api_stack.operator_key}"}
    async with httpx.AsyncClient(base_url=api_stack.base_url, headers=headers) as client:
        response = await invite(client, names_org, {**person(), field: name})
        body = assert_problem(response, 422)
        assert [e["field"] for e in body["errors"]] == [field], body
        slug = unique_slug("names")
        invitees = onboarding(slug)["invitees"]
        invitees[0][field] = name
        onboard = await client.post("/v1/organizations", json=onboarding(slug, invitees=0) | {
            "invitees": invitees
        })  # fmt: skip
        body = assert_problem(onboard, 422)
        assert [e["field"] for e in body["errors"]] == [f"invitees.0.{field}"], body


async def test_names_as_people_write_them_are_taken(api_stack: Stack, names_org: str) -> None:
    headers = {"Authorization": f"Bearer {api_stack.operator_key}"}
    names = [("Zoë", "O'Brien-Smith"), ("J. R. R.", "Tolkien"), ("Ngô Bảo", "Châu"), ("李", "小龍")]
    async with httpx.AsyncClient(base_url=api_stack.base_url, headers=headers) as client:
        for first, last in names:
            named = {**person(), "first_name": first, "last_name": last}
            response = await invite(client, names_org, named)
            assert response.status_code == 201, response.text
            assert (response.json()["first_name"], response.json()["last_name"]) == (first, last)


@pytest.mark.parametrize(
    ("setting", "kind"),
    [
        ("API_INVITATIONS_PER_ORGANIZATION_PER_HOUR", "too-many-invitations"),
        ("API_MAX_PENDING_INVITATIONS_PER_ORGANIZATION", "too-many-pending-invitations"),
    ],
)
async def test_invites_sent_at_once_to_one_instance_stop_at_the_limit(
    api_stack: Stack, org: str, setting: str, kind: str
) -> None:
    """30 invites at once used to each see the same count and all be issued (30 mails);
    one instance now issues exactly the limit and refuses the rest."""
    with instances(api_stack, 1, **{setting: "3"}) as (one,):
        async with one:
            answers = await asyncio.gather(*(invite(one, org, person()) for _ in range(30)))
            listed = (await one.get(f"/v1/organizations/{org}/invitations")).json()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 3 + [429] * 27, statuses
    for refused in (a for a in answers if a.status_code == 429):
        limited(refused, kind)
    assert len(listed["invitations"]) == 3
