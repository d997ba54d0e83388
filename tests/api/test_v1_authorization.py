"""The authorization matrix: every ``/v1`` route by every kind of caller, one table.

Operators (token or key) act anywhere; organization A's admin and A's key manage A's
invitations; A's plain member may only read A; B's admin gets exactly the 404 a
missing organization gets; nobody but an operator onboards or cancels; the anonymous
get 401. A refused write changes nothing (the event store's head stays put).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from tests.api.conftest import Stack, unique_slug
from tests.api.v1_support import (
    ADM_A,
    ADM_B,
    ANON,
    KEY_A,
    MEM_A,
    OP,
    OPK,
    V1_ROUTES,
    Caller,
    World,
    assert_problem,
    not_found_body,
    onboarding,
    quiet,
    wait_for_state,
)
from tests.servers.oidc import serve_provider

COLUMNS = (OP, OPK, ADM_A, KEY_A, MEM_A, ADM_B, ANON)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    body: dict[str, Any] | None = None


# A route: how to build its request on organization A (may prepare something first,
# as the operator), whether it writes, and the expected status for each caller.
Prepare = Callable[[World, httpx.AsyncClient], Awaitable[Call]]


async def _fresh_pending(world: World, client: httpx.AsyncClient) -> uuid.UUID:
    """A new pending invitation of A, issued by the operator key."""
    response = await client.post(
        f"/v1/organizations/{world.orgs.a}/invitations",
        json={
            "email": f"fresh-{uuid.uuid4().hex[:8]}@example.com",
            "role": "member",
            "first_name": "Fresh",
            "last_name": "Person",
        },
        headers=world.headers(OPK),
    )
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["id"])


async def onboard(world: World, client: httpx.AsyncClient) -> Call:
    return Call("POST", "/v1/organizations", onboarding(unique_slug("matrix"), invitees=0))


async def list_organizations(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", "/v1/organizations")


async def get_organization(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/organizations/{world.orgs.a}")


async def cancel(world: World, client: httpx.AsyncClient) -> Call:
    return Call("POST", f"/v1/organizations/{world.orgs.a}/cancel", {"reason": "matrix"})


# Offboarding A: with a grace period of an hour, so nothing changes; each case that
# started one cancels it after (as the operator key), and A stays as it was.
WAIT = 3600


async def offboard(world: World, client: httpx.AsyncClient) -> Call:
    return Call(
        "POST",
        f"/v1/organizations/{world.orgs.a}/offboard",
        {"reason": "matrix", "grace_period_seconds": WAIT},
    )


async def delete_organization(world: World, client: httpx.AsyncClient) -> Call:
    return Call(
        "DELETE", f"/v1/organizations/{world.orgs.a}?reason=matrix&grace_period_seconds={WAIT}"
    )


async def get_offboarding(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/organizations/{world.orgs.a}/offboarding")


async def cancel_offboarding(world: World, client: httpx.AsyncClient) -> Call:
    start = await offboard(world, client)
    started = await client.post(start.path, json=start.body, headers=world.headers(OPK))
    assert started.status_code == 202, started.text
    return Call("POST", f"/v1/organizations/{world.orgs.a}/offboard/cancel", {"reason": "matrix"})


async def call_offboarding_off(world: World, client: httpx.AsyncClient) -> None:
    """Whatever a case left waiting out its grace period, cancelled (none: a 409)."""
    response = await client.post(
        f"/v1/organizations/{world.orgs.a}/offboard/cancel",
        json={"reason": "matrix"},
        headers=world.headers(OPK),
    )
    assert response.status_code in (200, 409), response.text


async def invite(world: World, client: httpx.AsyncClient) -> Call:
    return Call(
        "POST",
        f"/v1/organizations/{world.orgs.a}/invitations",
        {
            "email": f"matrix-{uuid.uuid4().hex[:8]}@example.com",
            "role": "viewer",
            "first_name": "Matrix",
            "last_name": "Case",
        },
    )


async def list_invitations(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/organizations/{world.orgs.a}/invitations?status=pending")


async def get_invitation(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/organizations/{world.orgs.a}/invitations/{world.orgs.pending_a}")


async def revoke(world: World, client: httpx.AsyncClient) -> Call:
    invitation = await _fresh_pending(world, client)
    return Call(
        "POST",
        f"/v1/organizations/{world.orgs.a}/invitations/{invitation}/revoke",
        {"reason": "matrix"},
    )


async def resend(world: World, client: httpx.AsyncClient) -> Call:
    invitation = await _fresh_pending(world, client)
    return Call("POST", f"/v1/organizations/{world.orgs.a}/invitations/{invitation}/resend")


async def list_members(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/organizations/{world.orgs.a}/members")


async def list_events(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", f"/v1/events?organization={world.orgs.a}&limit=1")


# Webhook endpoints, A's (nested) or the platform's, at a public address (nothing is
# delivered on this stack).
WEBHOOK_URL = "https://93.184.215.14/matrix"


def _hooks(world: World, platform: bool) -> str:
    if platform:
        return "/v1/webhook-endpoints"
    return f"/v1/organizations/{world.orgs.a}/webhook-endpoints"


def webhook_case(
    platform: bool, method: str, suffix: str = "", body: dict[str, Any] | None = None
) -> Prepare:
    """A request on A's endpoints or the platform's: on the list itself (no ``suffix``),
    or on a fresh endpoint the operator key creates first (``suffix`` from "/{name}")."""

    async def prepare(world: World, client: httpx.AsyncClient) -> Call:
        base = _hooks(world, platform)
        name = f"matrix-{uuid.uuid4().hex[:8]}"
        if method == "POST" and not suffix:  # the create itself
            return Call(method, base, {"name": name, "url": WEBHOOK_URL})
        if not suffix:
            return Call(method, base)
        made = await client.post(
            base, json={"name": name, "url": WEBHOOK_URL}, headers=world.headers(OPK)
        )
        assert made.status_code == 201, made.text
        return Call(method, base + suffix.replace("{name}", name), body)

    whose = "platform" if platform else "organization"
    action = suffix.replace("/{name}", "").strip("/").replace("-", "_") or "all"
    prepare.__name__ = f"{whose}_webhook_{method.lower()}_{action}"
    return prepare


# Single sign-on: A's configuration at a provider served for the module (each case that
# started one cancels it after), A's e-mail domains (each a new one; verified at once,
# its record published first).
_SSO_PROVIDER: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def sso_provider(api_stack: Stack) -> Iterator[None]:
    # After the stack (a served app restores the loggers it found when it stops: one
    # started before the session's stack would take the stack's access-log capture along).
    with serve_provider() as provider:
        _SSO_PROVIDER["issuer"] = provider.issuer
        yield


def _sso(world: World) -> str:
    return f"/v1/organizations/{world.orgs.a}/sso"


async def put_sso(world: World, client: httpx.AsyncClient) -> Call:
    body = {"issuer": _SSO_PROVIDER["issuer"], "client_id": "matrix", "client_secret": "matrix-s"}
    return Call("PUT", _sso(world), body)


async def get_sso(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", _sso(world))


async def delete_sso(world: World, client: httpx.AsyncClient) -> Call:
    return Call("DELETE", _sso(world))


def _domains(world: World) -> str:
    return f"/v1/organizations/{world.orgs.a}/email-domains"


async def post_email_domain(world: World, client: httpx.AsyncClient) -> Call:
    return Call("POST", _domains(world), {"domain": f"matrix-{uuid.uuid4().hex[:8]}.example.com"})


async def list_email_domains(world: World, client: httpx.AsyncClient) -> Call:
    return Call("GET", _domains(world))


async def verify_email_domain(world: World, client: httpx.AsyncClient) -> Call:
    domain = f"matrix-{uuid.uuid4().hex[:8]}.example.com"
    asked = await client.post(_domains(world), json={"domain": domain}, headers=world.headers(OPK))
    assert asked.status_code == 202, asked.text
    record = asked.json()["record"]
    world.stack.txt.records[record["name"]] = [record["value"]]
    return Call("POST", f"{_domains(world)}/{domain}/verify")


ORG = "/v1/organizations/{slug}"
INVITATION = ORG + "/invitations/{invitation_id}"
# (route template) -> (request, writes?, expected status for each of COLUMNS:
#                      OP, OPK, ADM_A, KEY_A, MEM_A, ADM_B, ANON)
MATRIX: dict[tuple[str, str], tuple[Prepare, bool, tuple[int, ...]]] = {
    ("post", "/v1/organizations"): (onboard, True, (202, 202, 403, 403, 403, 403, 401)),
    ("get", "/v1/organizations"): (list_organizations, False, (200, 200, 200, 200, 200, 200, 401)),
    ("get", ORG): (get_organization, False, (200, 200, 200, 200, 200, 404, 401)),
    # A finished bootstrap cannot be cancelled: 409 for those allowed to ask.
    ("post", ORG + "/cancel"): (cancel, True, (409, 409, 403, 403, 403, 404, 401)),
    # Operators and A's owners only (A's admin is no owner); an hour's grace, cancelled.
    ("post", ORG + "/offboard"): (offboard, True, (202, 202, 403, 403, 403, 404, 401)),
    ("delete", ORG): (delete_organization, True, (202, 202, 403, 403, 403, 404, 401)),
    ("get", ORG + "/offboarding"): (get_offboarding, False, (200, 200, 200, 200, 200, 404, 401)),
    ("post", ORG + "/offboard/cancel"): (
        cancel_offboarding,
        True,
        (200, 200, 403, 403, 403, 404, 401),
    ),
    ("post", ORG + "/invitations"): (invite, True, (201, 201, 201, 201, 403, 404, 401)),
    ("get", ORG + "/invitations"): (list_invitations, False, (200, 200, 200, 200, 403, 404, 401)),
    ("get", INVITATION): (get_invitation, False, (200, 200, 200, 200, 403, 404, 401)),
    ("post", INVITATION + "/revoke"): (revoke, True, (200, 200, 200, 200, 403, 404, 401)),
    ("post", INVITATION + "/resend"): (resend, True, (200, 200, 200, 200, 403, 404, 401)),
    ("get", ORG + "/members"): (list_members, False, (200, 200, 200, 200, 403, 404, 401)),
    ("get", "/v1/events"): (list_events, False, (200, 200, 200, 200, 403, 404, 401)),
    # A's owners, admins and key, as operators; its plain member 403; B's admin A's 404.
    ("put", ORG + "/sso"): (put_sso, True, (202, 202, 202, 202, 403, 404, 401)),
    ("get", ORG + "/sso"): (get_sso, False, (200, 200, 200, 200, 403, 404, 401)),
    ("delete", ORG + "/sso"): (delete_sso, True, (200, 200, 200, 200, 403, 404, 401)),
    ("post", ORG + "/email-domains"): (
        post_email_domain,
        True,
        (202, 202, 202, 202, 403, 404, 401),
    ),
    ("get", ORG + "/email-domains"): (
        list_email_domains,
        False,
        (200, 200, 200, 200, 403, 404, 401),
    ),
    ("post", ORG + "/email-domains/{domain}/verify"): (
        verify_email_domain,
        True,
        (202, 202, 202, 202, 403, 404, 401),
    ),
}
HOOKS, PLATFORM_HOOKS = ORG + "/webhook-endpoints", "/v1/webhook-endpoints"
# (method, path after the list, body, writes?, the status of a success)
WEBHOOK_ROUTES: list[tuple[str, str, dict[str, Any] | None, bool, int]] = [
    ("POST", "", None, True, 201),
    ("GET", "", None, False, 200),
    ("GET", "/{name}", None, False, 200),
    ("PATCH", "/{name}", {"description": "matrix"}, True, 200),
    ("DELETE", "/{name}", None, True, 200),
    ("POST", "/{name}/disable", {"reason": "matrix"}, True, 200),
    ("POST", "/{name}/enable", None, True, 200),
    ("POST", "/{name}/rotate-secret", {}, True, 200),
]
for method, suffix, body, writes, ok in WEBHOOK_ROUTES:
    # A's: its admins and key as operators; its plain member 403; B's admin A's 404.
    MATRIX[(method.lower(), HOOKS + suffix)] = (
        webhook_case(False, method, suffix, body),
        writes,
        (ok, ok, ok, ok, 403, 404, 401),
    )
    # The platform's: operators only.
    MATRIX[(method.lower(), PLATFORM_HOOKS + suffix)] = (
        webhook_case(True, method, suffix, body),
        writes,
        (ok, ok, 403, 403, 403, 403, 401),
    )
CASES = [
    pytest.param(route, caller, expected[i], id=f"{prepare.__name__}-{caller.name.lower()}")
    for route, (prepare, _, expected) in MATRIX.items()
    for i, caller in enumerate(COLUMNS)
]


def test_the_matrix_has_a_row_for_every_v1_route() -> None:
    """V1_ROUTES is what the OpenAPI document lists (test_v1_routes); seven callers a row."""
    assert set(MATRIX) == V1_ROUTES
    assert all(len(expected) == len(COLUMNS) for _, _, expected in MATRIX.values())


@pytest.mark.parametrize(("route", "caller", "expected"), CASES)
async def test_authorization_matrix(
    world: World, route: tuple[str, str], caller: Caller, expected: int
) -> None:
    prepare, writes, _ = MATRIX[route]
    async with world.client() as client:
        call = await prepare(world, client)
        head = await quiet(world.stack) if writes and expected >= 400 else None
        response = await client.request(
            call.method, call.path, json=call.body, headers=world.headers(caller)
        )
        assert response.status_code == expected, (route, caller, response.text)
        if expected == 404:
            # Another tenant's organization is answered exactly as a missing one.
            assert response.json() == not_found_body(world.orgs.a)
        if expected >= 400:
            body = assert_problem(response, expected)
            if expected == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
            if expected == 403:
                assert body["type"] == "urn:a4c:problem:forbidden"
        if head is not None:
            assert await quiet(world.stack) == head, "a refused write stored something"
        if prepare in (offboard, delete_organization, cancel_offboarding):
            await call_offboarding_off(world, client)
        if prepare is put_sso:
            ended = await client.delete(_sso(world), headers=world.headers(OPK))
            assert ended.status_code == 200, ended.text
        if prepare is onboard and expected == 202:
            # Let it finish, so its writes do not run into the next case's check.
            await wait_for_state(
                world.stack,
                client,
                call.body["slug"] if call.body else "",
                world.headers(OP),
                {"completed"},
            )


async def test_each_caller_lists_only_the_organizations_it_may_see(world: World) -> None:
    orgs = world.orgs
    expected = {
        OP: {orgs.a, orgs.b},
        OPK: {orgs.a, orgs.b},
        ADM_A: {orgs.a},
        KEY_A: {orgs.a},
        MEM_A: {orgs.a},
        ADM_B: {orgs.b},
    }
    async with world.client() as client:
        for caller, visible in expected.items():
            response = await client.get("/v1/organizations", headers=world.headers(caller))
            assert response.status_code == 200
            slugs = {o["slug"] for o in response.json()["organizations"]}
            assert slugs & {orgs.a, orgs.b} == visible, caller
            if caller in (ADM_A, KEY_A, MEM_A, ADM_B):
                assert slugs == visible, caller  # nothing of any other tenant


async def test_another_tenants_invitation_is_not_found_like_a_missing_one(world: World) -> None:
    """B's admin naming A's invitation under B: the invitation answer for a missing id."""
    orgs = world.orgs
    async with world.client() as client:
        theirs = await client.get(
            f"/v1/organizations/{orgs.b}/invitations/{orgs.pending_a}",
            headers=world.headers(ADM_B),
        )
        missing_id = uuid.uuid4()
        missing = await client.get(
            f"/v1/organizations/{orgs.b}/invitations/{missing_id}", headers=world.headers(ADM_B)
        )
    body, missing_body = assert_problem(theirs, 404), assert_problem(missing, 404)
    assert body["type"] == missing_body["type"] == "urn:a4c:problem:invitation-not-found"
    assert body["detail"] == f"invitation {orgs.pending_a} not found"
    assert missing_body["detail"] == f"invitation {missing_id} not found"


async def test_an_operator_gets_the_same_404_for_a_missing_organization(world: World) -> None:
    slug = unique_slug("missing")
    async with world.client() as client:
        response = await client.get(f"/v1/organizations/{slug}", headers=world.headers(OP))
    assert_problem(response, 404)
    assert response.json() == not_found_body(slug)
