"""Bearer credentials: API keys by hash, JWTs checked against the provider's JWKS.

Every wrong credential is a 401 problem with ``WWW-Authenticate: Bearer`` that never
repeats the credential; the keys are fetched again for an unknown ``kid`` at most once
per interval; the operator role may come as a list claim or a space-separated one.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from tests.api.conftest import unique_slug
from tests.api.v1_support import (
    OPERATOR_SUBJECT,
    Caller,
    World,
    assert_problem,
    onboarding,
)
from tests.servers.oidc import other_key
from tests.support import free_port

from a4c_api.auth import Principal, api_key_principal, holds_role
from a4c_api.cli import new_key
from a4c_api.privacy import mask_email
from a4c_api.problems import ProblemError
from a4c_api.settings import API_KEY_PREFIX, ApiSettings
from a4c_api.v1.models import OrganizationView
from a4c_api.v1.organizations import masked_for_members
from a4c_worker.workflows.models import BootstrapProgress, StepError

# --- pure rules -------------------------------------------------------------------------


def test_an_api_key_is_recognised_by_its_hash_only() -> None:
    operator_key, operator_grant = new_key("ops", None)
    org = uuid4()
    org_key, org_grant = new_key("sync", org)
    settings = ApiSettings(api_keys=(operator_grant, org_grant))
    assert operator_key not in repr(settings.masked())
    assert api_key_principal(operator_key, settings) == Principal(
        subject="key:ops", operator=True, method="api_key"
    )
    assert api_key_principal(org_key, settings) == Principal(
        subject="key:sync", operator=False, method="api_key", organization_id=org
    )
    for wrong in (API_KEY_PREFIX + "x" * 43, operator_key[:-1], operator_key + "x"):
        with pytest.raises(ProblemError) as refused:
            api_key_principal(wrong, settings)
        assert refused.value.problem.status == 401
        assert wrong not in str(refused.value.problem.model_dump())


@pytest.mark.parametrize(
    ("claims", "operator"),
    [
        ({"roles": ["a4c:operator"]}, True),
        ({"roles": ["reader", "a4c:operator"]}, True),
        ({"roles": "openid a4c:operator"}, True),
        ({"roles": ["a4c:operator-not"]}, False),
        ({"roles": "a4c:operators"}, False),
        ({"roles": [{"a4c:operator": True}]}, False),
        ({"roles": 1}, False),
        ({}, False),
    ],
)
def test_the_operator_role_from_a_list_or_a_space_separated_claim(
    claims: dict[str, Any], operator: bool
) -> None:
    assert holds_role(claims, "roles", "a4c:operator") is operator


def test_an_address_is_masked_for_plain_members() -> None:
    assert mask_email("ada@example.com") == "a***@example.com"
    assert mask_email("not-an-address") == "***"
    failed = StepError(
        step="send_invitations", error_type="X", message="refused", email="ada@example.com"
    )
    view = OrganizationView(
        id=uuid4(),
        slug="acme",
        organization=None,
        progress=BootstrapProgress(errors=[failed, failed.model_copy(update={"email": None})]),
    )
    masked = masked_for_members(view)
    assert masked.progress is not None
    assert [e.email for e in masked.progress.errors] == ["a***@example.com", None]
    assert "ada@" not in masked.model_dump_json()


# --- against the server -----------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _hs256_with_the_public_key(world: World) -> str:
    """The algorithm-confusion forgery: HS256 keyed with the provider's public key."""
    stack = world.stack
    public = json.dumps(stack.oidc.jwks["keys"][0]).encode()
    claims = stack.oidc.claims(
        OPERATOR_SUBJECT,
        None,
        audience=str(stack.settings.bearer_audience),
        roles=[stack.settings.api_operator_role],
    )
    return jwt.encode({"alg": "HS256", "kid": stack.oidc.kid}, claims, OctKey.import_key(public))


def _operator_token(world: World, **changes: Any) -> str:
    stack = world.stack
    fields: dict[str, Any] = {
        "audience": str(stack.settings.bearer_audience),
        "roles": [stack.settings.api_operator_role],
        **changes,
    }
    return stack.oidc.mint(OPERATOR_SUBJECT, None, **fields)


def _signed(world: World, **changes: Any) -> str:
    """An operator's token signed by the provider, its claims changed (None: removed)."""
    stack = world.stack
    claims = stack.oidc.claims(
        OPERATOR_SUBJECT,
        None,
        audience=str(stack.settings.bearer_audience),
        roles=[stack.settings.api_operator_role],
    )
    claims.update(changes)
    return stack.oidc.sign({k: v for k, v in claims.items() if v is not None})


BAD: dict[str, Callable[[World], str]] = {
    "no scheme": lambda w: "",
    "garbage": lambda w: "Bearer not-a-token",
    "empty": lambda w: "Bearer",
    "basic": lambda w: "Basic " + base64.b64encode(b"ops:secret").decode(),
    "unknown key": lambda w: "Bearer " + new_key("nobody", None)[0],
    "oversized": lambda w: "Bearer " + "a" * 10_000,
    "expired": lambda w: "Bearer " + _operator_token(w, expires_in=-120),
    "wrong issuer": lambda w: "Bearer " + _operator_token(w, issuer="https://evil.example"),
    "wrong audience": lambda w: "Bearer " + _operator_token(w, audience="someone-else"),
    "unpublished key": lambda w: "Bearer " + _operator_token(w, key=other_key()),
    "forged key with the provider's kid": lambda w: (
        "Bearer " + _operator_token(w, key=w.stack.oidc.forged_key())
    ),
    "alg none": lambda w: (
        "Bearer "
        + w.stack.oidc.mint_unsigned(
            OPERATOR_SUBJECT, None, audience=str(w.stack.settings.bearer_audience)
        )
    ),
    "HS256 keyed with the public key": lambda w: "Bearer " + _hs256_with_the_public_key(w),
    "not yet valid": lambda w: "Bearer " + _signed(w, nbf=int(time.time()) + 600),
    "no subject": lambda w: "Bearer " + _signed(w, sub=None),
    "no expiry": lambda w: "Bearer " + _signed(w, exp=None),
    "no signature": lambda w: "Bearer " + _operator_token(w).rsplit(".", 1)[0] + ".",
    "tampered claims": lambda w: (
        "Bearer "
        + ".".join(
            [
                _operator_token(w).split(".")[0],
                _b64({"sub": "x", "roles": ["a4c:operator"], "exp": int(time.time()) + 60}),
                _operator_token(w).split(".")[2],
            ]
        )
    ),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_a_wrong_credential_is_401_and_never_repeated(world: World, case: str) -> None:
    authorization = BAD[case](world)
    headers = {"Authorization": authorization} if authorization else {}
    async with world.client() as client:
        response = await client.get("/v1/organizations", headers=headers)
    body = assert_problem(response, 401)
    assert body["type"] == "urn:a4c:problem:unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    credential = authorization.partition(" ")[2]
    if credential:
        assert credential not in response.text
        assert not any(credential in value for value in response.headers.values())


async def test_good_credentials_are_admitted(world: World) -> None:
    audience = str(world.stack.settings.bearer_audience)
    # One audience among several, and a clock a little behind (within the leeway).
    several = _signed(world, aud=["another-api", audience], iat=int(time.time()) + 10)
    async with world.client() as client:
        for caller in (Caller.OPERATOR, Caller.OPERATOR_KEY, Caller.ADMIN_A, Caller.KEY_A):
            response = await client.get("/v1/organizations", headers=world.headers(caller))
            assert response.status_code == 200, (caller, response.text)
        response = await client.get(
            "/v1/organizations", headers={"Authorization": f"Bearer {several}"}
        )
        assert response.status_code == 200, response.text


async def test_unknown_kids_fetch_the_keys_again_at_most_once(world: World) -> None:
    served = world.stack.oidc.served
    assert served is not None

    def fetches() -> int:
        return sum("/jwks" in line for line in served.access_log)

    async with world.client() as client:
        before = fetches()
        for _ in range(5):
            token = _operator_token(world, key=other_key())
            response = await client.get(
                "/v1/organizations", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401
        assert fetches() - before <= 1
        # The provider's own key is still known: no fetch for it.
        ok = await client.get("/v1/organizations", headers=world.headers(Caller.OPERATOR))
        assert ok.status_code == 200
    assert fetches() - before <= 1


async def test_the_operator_role_may_come_in_the_scope_claim(world: World) -> None:
    stack = world.stack
    audience = str(stack.settings.bearer_audience)
    role = stack.settings.api_operator_role
    scoped = stack.oidc.mint(OPERATOR_SUBJECT, None, audience=audience, scope=f"openid {role}")
    # Well-formed, but the reminder falls after the expiry: an operator gets 422 (nothing
    # starts), anyone else 403, so the status tells whether the role was recognised.
    body = onboarding(
        unique_slug("scoped"),
        timing={"invitation_ttl_seconds": 10, "reminder_before_seconds": 20},
    )
    with stack.serve(API_ROLES_CLAIM="scope") as served:
        by_scope = httpx.AsyncClient(base_url=served.base_url)
        async with world.client() as default, by_scope:
            headers = {"Authorization": f"Bearer {scoped}"}
            as_operator = await by_scope.post("/v1/organizations", json=body, headers=headers)
            not_operator = await default.post("/v1/organizations", json=body, headers=headers)
    assert as_operator.status_code == 422, as_operator.text
    assert not_operator.status_code == 403, not_operator.text


async def test_no_credential_reaches_the_access_log(world: World) -> None:
    token = world.headers(Caller.OPERATOR)["Authorization"].partition(" ")[2]
    async with world.client() as client:
        await client.get("/v1/organizations", headers={"Authorization": f"Bearer {token}"})
        await client.get("/v1/organizations", headers={"Authorization": f"Bearer {world.key_a}"})
    log = "\n".join(world.served.access_log)
    assert "/v1/organizations" in log
    assert token not in log and world.key_a not in log


async def test_an_unreachable_provider_is_503_and_keys_still_work(world: World) -> None:
    """An instance trusting a provider that does not answer: a JWT cannot be checked
    (503, not 401: the caller's token may be fine), an API key still can."""
    dead_issuer = f"http://127.0.0.1:{free_port()}"
    with world.stack.serve(OIDC_ISSUER=dead_issuer) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=30.0) as client:
            token = await client.get("/v1/organizations", headers=world.headers(Caller.OPERATOR))
            again = await client.get("/v1/organizations", headers=world.headers(Caller.OPERATOR))
            key = await client.get("/v1/organizations", headers=world.headers(Caller.OPERATOR_KEY))
    for answer in (token, again):  # the second without asking the provider again
        assert assert_problem(answer, 503)["type"] == "urn:a4c:problem:unavailable"
        assert answer.headers["Retry-After"] == "5"
    assert key.status_code == 200, key.text
