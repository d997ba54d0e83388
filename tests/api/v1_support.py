"""What the ``/v1`` tests share: two onboarded organizations with people in them, the
callers of the authorization matrix, and a server that also knows organization A's key.

Organization A has an admin and a plain member (both accepted their invitations) and a
pending invitation; organization B has an admin. They are onboarded once per session
(``organizations_of``); each test module that needs organization A's API key serves
its own API instance holding it (``keyed_world``), on the same store and Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from string import ascii_uppercase
from typing import Any
from uuid import UUID

import httpx
from tests.api.conftest import Stack, unique_slug
from tests.servers.http import ServedApp

from a4c_api.cli import new_key
from a4c_api.problems import PROBLEM_JSON


class Caller(enum.Enum):
    OPERATOR = "operator"  # a bearer token holding the operator role
    OPERATOR_KEY = "operator key"  # the stack's operator API key
    ADMIN_A = "admin of A"
    KEY_A = "organization A's key"
    MEMBER_A = "member of A"  # a plain member (role "member")
    ADMIN_B = "admin of B"
    ANONYMOUS = "anonymous"


# The matrix's columns, short (the authorization and events tests' tables).
OP, OPK, ADM_A, KEY_A, MEM_A, ADM_B, ANON = (
    Caller.OPERATOR,
    Caller.OPERATOR_KEY,
    Caller.ADMIN_A,
    Caller.KEY_A,
    Caller.MEMBER_A,
    Caller.ADMIN_B,
    Caller.ANONYMOUS,
)


@dataclass(frozen=True)
class Organizations:
    a: str
    b: str
    a_id: UUID
    b_id: UUID
    pending_a: UUID  # a pending invitation of A (person2)
    admin_a: str  # user ids, the subjects of their bearer tokens
    member_a: str
    admin_b: str


# Every /v1 route (method, path template): what the OpenAPI document must list, and
# what the authorization matrix must have a row for.
V1_ROUTES = {
    ("post", "/v1/organizations"),
    ("get", "/v1/organizations"),
    ("get", "/v1/organizations/{slug}"),
    ("post", "/v1/organizations/{slug}/cancel"),
    ("post", "/v1/organizations/{slug}/offboard"),
    ("delete", "/v1/organizations/{slug}"),
    ("get", "/v1/organizations/{slug}/offboarding"),
    ("post", "/v1/organizations/{slug}/offboard/cancel"),
    ("post", "/v1/organizations/{slug}/invitations"),
    ("get", "/v1/organizations/{slug}/invitations"),
    ("get", "/v1/organizations/{slug}/invitations/{invitation_id}"),
    ("post", "/v1/organizations/{slug}/invitations/{invitation_id}/revoke"),
    ("post", "/v1/organizations/{slug}/invitations/{invitation_id}/resend"),
    ("get", "/v1/organizations/{slug}/members"),
    ("get", "/v1/events"),
    ("put", "/v1/organizations/{slug}/sso"),
    ("get", "/v1/organizations/{slug}/sso"),
    ("delete", "/v1/organizations/{slug}/sso"),
    ("post", "/v1/organizations/{slug}/email-domains"),
    ("get", "/v1/organizations/{slug}/email-domains"),
    ("post", "/v1/organizations/{slug}/email-domains/{domain}/verify"),
    *(
        (method, base + path)
        for base in ("/v1/organizations/{slug}/webhook-endpoints", "/v1/webhook-endpoints")
        for method, path in (
            ("post", ""),
            ("get", ""),
            ("get", "/{name}"),
            ("patch", "/{name}"),
            ("delete", "/{name}"),
            ("post", "/{name}/disable"),
            ("post", "/{name}/enable"),
            ("post", "/{name}/rotate-secret"),
        )
    ),
}
OPERATOR_SUBJECT = "operator-0001"
_organizations: dict[int, Organizations] = {}
_building = asyncio.Lock()


async def organizations_of(stack: Stack) -> Organizations:
    """Organizations A and B with their people, onboarded once per stack."""
    async with _building:
        if id(stack) not in _organizations:
            _organizations[id(stack)] = await _onboard(stack)
        return _organizations[id(stack)]


async def _onboard(stack: Stack) -> Organizations:
    a, b = unique_slug("v1-a"), unique_slug("v1-b")
    await stack.bootstrap(a, invitees=3, domain=False)
    await stack.bootstrap(b, invitees=1, domain=False)
    admin_a, member_a, admin_b = f"user-admin-{a}", f"user-member-{a}", f"user-admin-{b}"
    await stack.make_member(a, f"person0@{a}.example.com", admin_a)
    await stack.make_member(a, f"person1@{a}.example.com", member_a)
    await stack.make_member(b, f"person0@{b}.example.com", admin_b)
    return Organizations(
        a=a,
        b=b,
        a_id=stack.organization_id(a),
        b_id=stack.organization_id(b),
        pending_a=stack.invitation(a, f"person2@{a}.example.com").id,
        admin_a=admin_a,
        member_a=member_a,
        admin_b=admin_b,
    )


@dataclass
class World:
    stack: Stack
    orgs: Organizations
    key_a: str
    served: ServedApp  # an API instance holding the operator key and A's key

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def token(self, sub: str, *, roles: tuple[str, ...] = ()) -> str:
        audience = self.stack.settings.bearer_audience
        assert audience is not None
        return self.stack.oidc.mint(sub, None, audience=audience, roles=roles)

    def headers(self, caller: Caller) -> dict[str, str]:
        """The ``Authorization`` header ``caller`` sends (none for the anonymous)."""
        operator_role = self.stack.settings.api_operator_role
        credentials: dict[Caller, Callable[[], str]] = {
            Caller.OPERATOR: lambda: self.token(OPERATOR_SUBJECT, roles=(operator_role,)),
            Caller.OPERATOR_KEY: lambda: self.stack.operator_key,
            Caller.ADMIN_A: lambda: self.token(self.orgs.admin_a),
            Caller.KEY_A: lambda: self.key_a,
            Caller.MEMBER_A: lambda: self.token(self.orgs.member_a),
            Caller.ADMIN_B: lambda: self.token(self.orgs.admin_b),
            Caller.ANONYMOUS: lambda: "",
        }
        credential = credentials[caller]()
        return {"Authorization": f"Bearer {credential}"} if credential else {}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=60.0)


@contextlib.contextmanager
def keyed_world(stack: Stack, orgs: Organizations) -> Iterator[World]:
    """An API instance that also accepts organization A's key (``new-key --organization``)."""
    key_a, grant_a = new_key("org-a", orgs.a_id)
    keys = ",".join([*(g.entry() for g in stack.settings.api_keys), grant_a.entry()])
    with stack.serve(API_KEYS=keys, API_PUBLIC_URL=stack.settings.api_public_url) as served:
        yield World(stack=stack, orgs=orgs, key_a=key_a, served=served)


def not_found_body(slug: str) -> dict[str, Any]:
    """The one answer for a missing organization and for another tenant's."""
    return {
        "type": "urn:a4c:problem:organization-not-found",
        "title": "Not Found",
        "status": 404,
        "detail": f"organization {slug!r} not found",
    }


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with ``status``; its body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert str(body["type"]).startswith(("urn:a4c:problem:", "about:blank"))
    return body


async def quiet(stack: Stack, settle_for: float = 0.3, within: float = 15.0) -> int:
    """The event store's head once nothing has been written for ``settle_for`` seconds
    (workflows of earlier tests may still be mailing); fails after ``within``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    head = stack.head()
    stable_since = loop.time()
    while loop.time() - stable_since < settle_for:
        assert loop.time() < deadline, "the event store never went quiet"
        await asyncio.sleep(0.05)
        now_head = stack.head()
        if now_head != head:
            head, stable_since = now_head, loop.time()
    return head


async def wait_for_state(
    stack: Stack,
    client: httpx.AsyncClient,
    slug: str,
    headers: Mapping[str, str],
    states: set[str],
) -> dict[str, Any]:
    """GET the organization until its bootstrap's progress is in one of ``states``; then,
    once the projection shows what the bootstrap wrote so far, GET it once more (a GET
    does not wait for the projection; a write does)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    path = f"/v1/organizations/{slug}"
    while True:
        response = await client.get(path, headers=dict(headers))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        progress = body.get("progress")
        if progress is not None and progress["state"] in states:
            break
        assert loop.time() < deadline, f"{slug} never reached {states}: {body}"
        await asyncio.sleep(0.1)
    await stack.settle()
    response = await client.get(path, headers=dict(headers))
    assert response.status_code == 200, response.text
    settled: dict[str, Any] = response.json()
    return settled


def onboarding(slug: str, *, invitees: int = 1, **extra: Any) -> dict[str, Any]:
    """A valid onboarding request (fast timings for the tests)."""
    body: dict[str, Any] = {
        "name": f"Org {slug}",
        "slug": slug,
        "org_type": "partner",
        "tags": ["v1", "api-test"],
        "invitees": [
            {
                "email": f"person{i}@{slug}.example.com",
                "role": "owner" if i == 0 else "member",
                "first_name": f"First {ascii_uppercase[i % 26]}",
                "last_name": f"Last {ascii_uppercase[i % 26]}",
            }
            for i in range(invitees)
        ],
        "timing": {
            "propagation_wait_seconds": 0.1,
            "dns_verify_attempts": 3,
            "dns_verify_initial_interval_seconds": 0.1,
        },
    }
    body.update(extra)
    return body
