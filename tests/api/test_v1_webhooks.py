"""``/v1/…/webhook-endpoints`` on the real stack: an API instance holding webhook secret
keys (and organization A's key) serves them; endpoints are written through their
workflow on the stack's worker and read from the projected read model.

Created once with the secret shown once, idempotent by name, 409 naming what differs;
each organization sees its own only (another's is the 404 of a missing organization),
operators every one; update, disable, enable, delete and create again, rotation (the
previous secret kept sealed for the overlap); the URL rules (https in production, no
private, loopback or link-local address, after resolving); unknown event types; and the
secret in no GET, no log record and no access-log line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
    World,
    assert_problem,
    not_found_body,
    organizations_of,
)

from a4c_api.cli import new_key
from a4c_api.v1.common import CONSISTENT_HEADER
from a4c_domain.ids import webhook_endpoint_id
from a4c_projector.webhook_queries import WebhookEndpointRow
from a4c_webhooks.sealing import SecretKeys

# A public address the API need not resolve (nothing is ever sent to it here: no
# delivery daemon runs on this stack).
PUBLIC = "https://93.184.215.14/hooks"
WEBHOOK_KEYS = f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def payload_keys() -> str:
    return f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"


@pytest.fixture(scope="module")
async def hooks(api_stack: Stack) -> AsyncIterator[World]:
    """An API instance with webhooks configured, knowing organization A's key."""
    orgs = await organizations_of(api_stack)
    key_a, grant_a = new_key("org-a-hooks", orgs.a_id)
    keys = ",".join([*(g.entry() for g in api_stack.settings.api_keys), grant_a.entry()])
    with api_stack.serve(
        API_KEYS=keys,
        API_PUBLIC_URL=api_stack.settings.api_public_url,
        WEBHOOK_SECRET_KEYS=WEBHOOK_KEYS,
    ) as served:
        yield World(stack=api_stack, orgs=orgs, key_a=key_a, served=served)


def endpoint(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": PUBLIC, **extra}


def name() -> str:
    return f"hook-{uuid.uuid4().hex[:8]}"


def row(world: World, owner: uuid.UUID | None, endpoint_name: str) -> WebhookEndpointRow | None:
    with world.stack.read_model() as rm:
        return rm.webhook_endpoint(webhook_endpoint_id(owner, endpoint_name))


# --- create -----------------------------------------------------------------------------


async def test_create_shows_the_secret_once_and_is_idempotent(hooks: World) -> None:
    slug, hook = hooks.orgs.a, name()
    base = f"/v1/organizations/{slug}/webhook-endpoints"
    body = endpoint(hook, event_types=["organization.activated"], description="provisioning")
    async with hooks.client() as client:
        created = await client.post(base, json=body, headers=hooks.headers(ADM_A))
        assert created.status_code == 201, created.text
        assert created.headers[CONSISTENT_HEADER] == "true"
        assert created.headers["Location"] == f"{base}/{hook}"
        shown = created.json()
        secret = shown["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
        assert shown["owner"] == slug and shown["organization"] == slug
        assert shown["event_types"] == ["organization.activated"]
        assert (shown["status"], shown["description"]) == ("enabled", "provisioning")

        got = await client.get(created.headers["Location"], headers=hooks.headers(KEY_A))
        assert got.status_code == 200, got.text
        assert "secret" not in got.json()
        assert got.json() == {k: v for k, v in shown.items() if k != "secret"}

        again = await client.post(base, json=body, headers=hooks.headers(OP))
        assert again.status_code == 200, again.text
        assert "secret" not in again.json() and again.json()["id"] == shown["id"]
        assert again.headers["Location"] == f"{base}/{hook}"

        other = await client.post(
            base, json={**body, "url": PUBLIC + "/other"}, headers=hooks.headers(ADM_A)
        )
        conflict = assert_problem(other, 409)
        assert conflict["type"] == "urn:a4c:problem:webhook-endpoint-conflict"
        assert conflict["fields"] == ["url"]
    # Stored sealed: the read model holds what opens to the secret, never the secret.
    stored = row(hooks, hooks.orgs.a_id, hook)
    assert stored is not None and stored.secret != secret
    assert SecretKeys.parse(WEBHOOK_KEYS).open(stored.secret) == secret


async def test_an_unknown_event_type_is_named(hooks: World) -> None:
    async with hooks.client() as client:
        answer = await client.post(
            f"/v1/organizations/{hooks.orgs.a}/webhook-endpoints",
            json=endpoint(name(), event_types=["organization.activated", "no.such", "nope"]),
            headers=hooks.headers(ADM_A),
        )
    body = assert_problem(answer, 422)
    [error] = body["errors"]
    assert error["field"] == "event_types"
    assert "'no.such'" in error["message"] and "'nope'" in error["message"]
    assert "organization.activated" not in error["message"]


# --- who sees what ----------------------------------------------------------------------


async def test_each_organization_sees_its_own_and_operators_every_one(hooks: World) -> None:
    orgs, shared = hooks.orgs, name()
    platform = name()
    async with hooks.client() as client:
        for slug, caller in ((orgs.a, ADM_A), (orgs.b, ADM_B)):
            made = await client.post(
                f"/v1/organizations/{slug}/webhook-endpoints",
                json=endpoint(shared),
                headers=hooks.headers(caller),
            )
            assert made.status_code == 201, made.text
        made = await client.post(
            "/v1/webhook-endpoints",
            json=endpoint(platform, organization=orgs.b),
            headers=hooks.headers(OPK),
        )
        assert made.status_code == 201, made.text
        assert (made.json()["owner"], made.json()["organization"]) == (None, orgs.b)

        async def names(path: str, caller: Any) -> set[tuple[str | None, str]]:
            answer = await client.get(path, headers=hooks.headers(caller))
            assert answer.status_code == 200, answer.text
            return {(e["owner"], e["name"]) for e in answer.json()["webhook_endpoints"]}

        of_a = await names(f"/v1/organizations/{orgs.a}/webhook-endpoints", KEY_A)
        assert (orgs.a, shared) in of_a and {o for o, _ in of_a} == {orgs.a}
        of_b = await names(f"/v1/organizations/{orgs.b}/webhook-endpoints", ADM_B)
        assert (orgs.b, shared) in of_b and {o for o, _ in of_b} == {orgs.b}
        every = await names("/v1/webhook-endpoints", OP)
        assert {(orgs.a, shared), (orgs.b, shared), (None, platform)} <= every

        # Another organization's: exactly the answer of a missing organization.
        for path in ("", f"/{shared}"):
            theirs = await client.get(
                f"/v1/organizations/{orgs.a}/webhook-endpoints{path}", headers=hooks.headers(ADM_B)
            )
            assert_problem(theirs, 404)
            assert theirs.json() == not_found_body(orgs.a)
            ghost = unique_slug("ghost")
            missing = await client.get(
                f"/v1/organizations/{ghost}/webhook-endpoints{path}", headers=hooks.headers(OP)
            )
            assert missing.json() == not_found_body(ghost)
        # A name only another owner has is as unknown as one nobody has.
        only_b = await client.get(f"/v1/webhook-endpoints/{shared}", headers=hooks.headers(OP))
        nobody = await client.get(f"/v1/webhook-endpoints/{name()}", headers=hooks.headers(OP))
        assert assert_problem(only_b, 404)["type"] == assert_problem(nobody, 404)["type"]
        assert only_b.json()["detail"] == f"webhook endpoint {shared!r} not found"

        refused = {
            (MEM_A, f"/v1/organizations/{orgs.a}/webhook-endpoints"): 403,
            (ADM_A, "/v1/webhook-endpoints"): 403,
            (KEY_A, f"/v1/webhook-endpoints/{platform}"): 403,
            (ANON, f"/v1/organizations/{orgs.a}/webhook-endpoints"): 401,
        }
        for (caller, path), status in refused.items():
            answer = await client.get(path, headers=hooks.headers(caller))
            assert_problem(answer, status)


async def test_a_platform_endpoint_names_an_existing_organization(hooks: World) -> None:
    async with hooks.client() as client:
        answer = await client.post(
            "/v1/webhook-endpoints",
            json=endpoint(name(), organization=unique_slug("nobody")),
            headers=hooks.headers(OP),
        )
    assert [e["field"] for e in assert_problem(answer, 422)["errors"]] == ["organization"]


# --- changes ----------------------------------------------------------------------------


async def test_update_disable_enable_delete_and_create_again(hooks: World) -> None:
    hook = name()
    base = f"/v1/organizations/{hooks.orgs.a}/webhook-endpoints"
    one = f"{base}/{hook}"
    headers = hooks.headers(ADM_A)
    async with hooks.client() as client:
        first = await client.post(base, json=endpoint(hook), headers=headers)
        assert first.status_code == 201, first.text

        changed = await client.patch(
            one,
            json={"url": PUBLIC + "/v2", "event_types": ["invitation.accepted"]},
            headers=headers,
        )
        assert changed.status_code == 200, changed.text
        assert changed.headers[CONSISTENT_HEADER] == "true"
        assert (changed.json()["url"], changed.json()["event_types"]) == (
            PUBLIC + "/v2",
            ["invitation.accepted"],
        )
        described = await client.patch(one, json={"description": "v2"}, headers=headers)
        assert described.json()["url"] == PUBLIC + "/v2"  # what is left out stays
        every = await client.patch(one, json={"event_types": None}, headers=headers)
        assert every.json()["event_types"] is None and every.json()["description"] == "v2"
        same = await client.patch(one, json={"description": "v2"}, headers=headers)
        assert same.status_code == 200 and same.json() == every.json()

        disabled = await client.post(
            one + "/disable", json={"reason": "maintenance"}, headers=headers
        )
        assert disabled.status_code == 200, disabled.text
        assert (disabled.json()["status"], disabled.json()["disabled_reason"]) == (
            "disabled",
            "maintenance",
        )
        assert not disabled.json()["disabled_automatically"]
        enabled = await client.post(one + "/enable", headers=headers)
        assert (enabled.json()["status"], enabled.json()["disabled_reason"]) == ("enabled", None)

        deleted = await client.delete(one, headers=headers)
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["status"] == "deleted"
        assert_problem(await client.get(one, headers=headers), 404)
        assert_problem(await client.post(one + "/enable", headers=headers), 404)
        listed = await client.get(base, headers=headers)
        assert hook not in {e["name"] for e in listed.json()["webhook_endpoints"]}

        again = await client.post(base, json=endpoint(hook), headers=headers)
        assert again.status_code == 201, again.text
        assert again.json()["id"] == first.json()["id"]
        assert again.json()["secret"] != first.json()["secret"]
        assert (again.json()["url"], again.json()["event_types"]) == (PUBLIC, None)


async def test_rotation_shows_the_new_secret_and_keeps_the_old_for_the_overlap(
    hooks: World,
) -> None:
    hook = name()
    path = "/v1/webhook-endpoints"
    headers = hooks.headers(OP)
    async with hooks.client() as client:
        first = await client.post(path, json=endpoint(hook), headers=headers)
        assert first.status_code == 201, first.text
        before = datetime.now(UTC)
        rotated = await client.post(
            f"{path}/{hook}/rotate-secret", json={"overlap_seconds": 3600}, headers=headers
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["secret"]
        assert new.startswith("whsec_") and new != first.json()["secret"]
        expires = datetime.fromisoformat(rotated.json()["previous_secret_expires_at"])
        assert before + timedelta(seconds=3590) < expires < before + timedelta(seconds=3700)
        too_long = await client.post(
            f"{path}/{hook}/rotate-secret",
            json={"overlap_seconds": 8 * 86400},
            headers=headers,
        )
        assert [e["field"] for e in assert_problem(too_long, 422)["errors"]] == ["overlap_seconds"]
    stored = row(hooks, None, hook)
    assert stored is not None and stored.previous_secret is not None
    opened = SecretKeys.parse(WEBHOOK_KEYS)
    assert opened.open(stored.secret) == new
    assert opened.open(stored.previous_secret) == first.json()["secret"]
    assert stored.previous_secret_expires_at == expires


# --- the URL rules ----------------------------------------------------------------------


def loopback_name() -> str:
    """A host name (not ``localhost``) the system resolves to a non-public address: this
    machine's own name."""
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    assert addresses, host
    return host


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://10.0.0.1/hook", "the address 10.0.0.1 is private"),
        ("https://169.254.169.254/latest/meta-data", "the address 169.254.169.254 is link-local"),
        ("https://localhost:8443/hook", "the host localhost is loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://hooks.invalid/hook", "does not resolve"),
    ],
)
async def test_a_url_the_rules_refuse_is_named(hooks: World, url: str, said: str) -> None:
    async with hooks.client() as client:
        answer = await client.post(
            "/v1/webhook-endpoints", json=endpoint(name(), url=url), headers=hooks.headers(OP)
        )
    [error] = assert_problem(answer, 422)["errors"]
    assert error["field"] == "url" and said in error["message"], error


async def test_a_name_resolving_to_a_private_address_is_refused(hooks: World) -> None:
    host = loopback_name()
    hook = name()
    base = f"/v1/organizations/{hooks.orgs.a}/webhook-endpoints"
    async with hooks.client() as client:
        refused = await client.post(
            base, json=endpoint(hook, url=f"http://{host}:8080/hook"), headers=hooks.headers(KEY_A)
        )
        [error] = assert_problem(refused, 422)["errors"]
        assert error["field"] == "url" and f"{host} resolves to" in error["message"], error
        # An update is held to the same rules.
        made = await client.post(base, json=endpoint(hook), headers=hooks.headers(KEY_A))
        assert made.status_code == 201, made.text
        moved = await client.patch(
            f"{base}/{hook}", json={"url": "https://10.1.2.3/"}, headers=hooks.headers(KEY_A)
        )
        assert [e["field"] for e in assert_problem(moved, 422)["errors"]] == ["url"]
    with hooks.stack.serve(
        API_KEYS=",".join(g.entry() for g in hooks.stack.settings.api_keys),
        WEBHOOK_SECRET_KEYS=WEBHOOK_KEYS,
        WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",
    ) as allowing:
        async with httpx.AsyncClient(base_url=allowing.base_url, timeout=60) as client:
            allowed = await client.post(
                "/v1/webhook-endpoints",
                json=endpoint(name(), url=f"http://{host}:8080/hook"),
                headers=hooks.headers(OPK),
            )
    assert allowed.status_code == 201, allowed.text


async def test_http_is_refused_in_production(hooks: World) -> None:
    stack = hooks.stack
    with stack.serve(
        API_MODE="production",
        API_SESSION_SECRET=secrets.token_urlsafe(32),
        API_PUBLIC_URL="https://127.0.0.1:9",
        TEMPORAL_PAYLOAD_KEYS=payload_keys(),
        API_KEYS=",".join(g.entry() for g in stack.settings.api_keys),
        WEBHOOK_SECRET_KEYS=WEBHOOK_KEYS,
    ) as production:
        async with httpx.AsyncClient(base_url=production.base_url, timeout=60) as client:
            answer = await client.post(
                "/v1/webhook-endpoints",
                json=endpoint(name(), url="http://93.184.215.14/hook"),
                headers=hooks.headers(OPK),
            )
    [error] = assert_problem(answer, 422)["errors"]
    assert error == {"field": "url", "message": "https is required"}
    assert answer.json()["detail"].endswith("url: https is required")


# --- configuration and secrecy ----------------------------------------------------------


async def test_without_secret_keys_the_routes_answer_503(hooks: World) -> None:
    """``WEBHOOK_SECRET_KEYS`` empty (unset): 503 for every caller; the anonymous still 401."""
    with hooks.stack.serve(WEBHOOK_SECRET_KEYS="") as unconfigured:
        async with httpx.AsyncClient(base_url=unconfigured.base_url, timeout=60) as client:
            answer = await client.get("/v1/webhook-endpoints", headers=hooks.headers(OPK))
            anonymous = await client.get("/v1/webhook-endpoints")
    body = assert_problem(answer, 503)
    assert body["type"] == "urn:a4c:problem:webhooks-not-configured"
    assert_problem(anonymous, 401)


async def test_no_secret_in_any_read_log_or_access_log(
    hooks: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hook = name()
    base = f"/v1/organizations/{hooks.orgs.b}/webhook-endpoints"
    headers = hooks.headers(ADM_B)
    shown: list[str] = []
    reads: list[httpx.Response] = []
    async with hooks.client() as client:
        made = await client.post(base, json=endpoint(hook), headers=headers)
        assert made.status_code == 201, made.text
        shown.append(made.json()["secret"])
        rotated = await client.post(f"{base}/{hook}/rotate-secret", json={}, headers=headers)
        assert rotated.status_code == 200, rotated.text
        shown.append(rotated.json()["secret"])
        conflict = await client.post(
            base, json=endpoint(hook, description="other"), headers=headers
        )
        assert_problem(conflict, 409)
        reads += [
            conflict,
            await client.post(base, json=endpoint(hook), headers=headers),
            await client.get(base, headers=headers),
            await client.get(f"{base}/{hook}", headers=headers),
            await client.get("/v1/webhook-endpoints", headers=hooks.headers(OP)),
            await client.patch(f"{base}/{hook}", json={"description": "d"}, headers=headers),
            await client.post(f"{base}/{hook}/disable", json={}, headers=headers),
            await client.delete(f"{base}/{hook}", headers=headers),
        ]
    stored = row(hooks, hooks.orgs.b_id, hook)
    assert stored is not None and stored.secret not in repr(stored)
    for secret in shown:
        body = secret.removeprefix("whsec_")
        for answer in reads:
            assert body not in answer.text
        for record in caplog.records:
            assert body not in record.getMessage()
        assert not any(body in line for line in hooks.served.access_log)


# --- limits -----------------------------------------------------------------------------

LIMIT = "2"  # API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION


def too_many(answer: httpx.Response) -> None:
    body = assert_problem(answer, 429)
    assert body["type"] == "urn:a4c:problem:too-many-webhook-endpoints", body
    assert "2 webhook endpoints" in body["detail"], body  # names the limit


async def test_an_organizations_endpoints_are_limited(hooks: World) -> None:
    """Each endpoint multiplies every event of its organization into deliveries: past
    ``API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION`` a create is refused (not the same
    create again, nor a re-create of an existing name), deleting one makes room, and the
    platform's endpoints (the operators') are not limited."""
    slug = unique_slug("hooklimit")
    await hooks.stack.bootstrap(slug, invitees=0, domain=False)
    base = f"/v1/organizations/{slug}/webhook-endpoints"
    headers = hooks.headers(OPK)
    first, second, third = name(), name(), name()
    with hooks.stack.serve(API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION=LIMIT) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as client:
            for hook in (first, second):
                made = await client.post(base, json=endpoint(hook), headers=headers)
                assert made.status_code == 201, made.text
            too_many(await client.post(base, json=endpoint(third), headers=headers))
            again = await client.post(base, json=endpoint(first), headers=headers)
            assert again.status_code == 200, again.text
            other = await client.post(
                base, json=endpoint(first, description="other"), headers=headers
            )
            assert assert_problem(other, 409)["fields"] == ["description"]

            platform = [name() for _ in range(3)]
            for hook in platform:
                made = await client.post(
                    "/v1/webhook-endpoints", json=endpoint(hook), headers=headers
                )
                assert made.status_code == 201, made.text
            for hook in platform:
                gone = await client.delete(f"/v1/webhook-endpoints/{hook}", headers=headers)
                assert gone.status_code == 200, gone.text

            deleted = await client.delete(f"{base}/{second}", headers=headers)
            assert deleted.status_code == 200, deleted.text
            made = await client.post(base, json=endpoint(third), headers=headers)
            assert made.status_code == 201, made.text
            too_many(await client.post(base, json=endpoint(second), headers=headers))
            listed = (await client.get(base, headers=headers)).json()["webhook_endpoints"]
    assert sorted(e["name"] for e in listed) == sorted([first, third])


async def test_creates_sent_at_once_stop_at_the_limit(hooks: World) -> None:
    """Eight creates at once used to each see the same count and all be made; one
    instance now makes exactly the limit and refuses the rest."""
    slug = unique_slug("hookburst")
    await hooks.stack.bootstrap(slug, invitees=0, domain=False)
    base = f"/v1/organizations/{slug}/webhook-endpoints"
    headers = hooks.headers(OPK)
    with hooks.stack.serve(API_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION=LIMIT) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as client:
            answers = await asyncio.gather(
                *(client.post(base, json=endpoint(name()), headers=headers) for _ in range(8))
            )
            listed = (await client.get(base, headers=headers)).json()["webhook_endpoints"]
    statuses = sorted(a.status_code for a in answers)  # no text: the 201s hold secrets
    assert statuses == [201] * 2 + [429] * 6, statuses
    for refused in (a for a in answers if a.status_code == 429):
        too_many(refused)
    assert len(listed) == 2
