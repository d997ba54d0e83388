"""The test OpenID provider works: the code flow with PKCE gives an id_token that
verifies against the published keys; wrong verifiers, reused codes and wrong redirect
URIs are refused; minted bearer tokens verify and the bad ones do not."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from tests.servers.oidc import OIDCClient, OIDCProvider, other_key, serve_provider, sub_for

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the redirect
SIGNED_OUT = "http://127.0.0.1:9/signed-out"
# Characters a form-encoding changes: RFC 6749 §2.3.1 encodes them before HTTP Basic.
AWKWARD_SECRET = "a+b/c=d " + secrets.token_urlsafe(16) + "+/=="
API_AUDIENCE = "a4c-api-test"


def challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Authorization:
    params: dict[str, str]
    verifier: str


def authorization(client: OIDCClient, **overrides: str) -> Authorization:
    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uris[0],
        "scope": "openid email",
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
        "code_challenge": challenge(verifier),
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return Authorization({k: v for k, v in params.items() if v}, verifier)


async def sign_in(
    http: httpx.AsyncClient, provider: OIDCProvider, auth: Authorization, email: str
) -> httpx.Response:
    """What a browser does: open the form, post it back with the e-mail typed in."""
    form = await http.get(provider.url("/authorize"), params=auth.params)
    assert form.status_code == 200, form.text
    assert "Sign in" in form.text
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form.text))
    assert hidden == auth.params
    return await http.post(provider.url("/authorize"), data={**hidden, "email": email})


def code_from(response: httpx.Response, auth: Authorization) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(auth.params["redirect_uri"] + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [auth.params["state"]]
    return query["code"][0]


async def exchange(
    http: httpx.AsyncClient,
    provider: OIDCProvider,
    client: OIDCClient,
    code: str,
    verifier: str,
    *,
    basic: bool = False,
    encoded: bool = True,
    redirect_uri: str | None = None,
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri or client.redirect_uris[0],
        "code_verifier": verifier,
    }
    if basic:
        # RFC 6749 §2.3.1: form-encode each part first (``encoded=False``: as-is, wrongly).
        form = quote_plus if encoded else str
        auth = httpx.BasicAuth(form(client.client_id), form(client.client_secret))
        return await http.post(provider.url("/token"), data=data, auth=auth)
    data |= {"client_id": client.client_id, "client_secret": client.client_secret}
    return await http.post(provider.url("/token"), data=data)


def verify(provider: OIDCProvider, token: str, audience: str, jwks: dict[str, Any]) -> Any:
    """What a relying party does: signature against the JWKS, then iss, aud and exp."""
    keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]  # a parsed JSON document
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    ).validate(decoded.claims)
    return decoded.claims


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(oidc_provider: OIDCProvider) -> OIDCClient:
    return oidc_provider.register_client(REDIRECT)


async def jwks_of(http: httpx.AsyncClient, provider: OIDCProvider) -> dict[str, Any]:
    discovery = (await http.get(provider.url("/.well-known/openid-configuration"))).json()
    assert discovery["issuer"] == provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    return dict((await http.get(discovery["jwks_uri"])).json())


@pytest.mark.parametrize("basic", [False, True], ids=["client_secret_post", "client_secret_basic"])
async def test_code_flow_with_pkce_gives_an_id_token_that_verifies(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient, basic: bool
) -> None:
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "Ada@Example.org"), auth)
    response = await exchange(http, oidc_provider, client, code, auth.verifier, basic=basic)
    assert response.status_code == 200, response.text
    tokens = response.json()
    claims = verify(
        oidc_provider, tokens["id_token"], client.client_id, await jwks_of(http, oidc_provider)
    )
    assert claims["sub"] == sub_for("ada@example.org")
    assert claims["email"] == "Ada@Example.org" and claims["email_verified"] is True
    assert claims["nonce"] == auth.params["nonce"]
    userinfo = await http.get(
        oidc_provider.url("/userinfo"),
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert userinfo.json()["sub"] == claims["sub"]
    access = verify(oidc_provider, tokens["access_token"], API_AUDIENCE, oidc_provider.jwks)
    assert access["sub"] == claims["sub"]


async def test_the_same_email_always_has_the_same_sub(oidc_provider: OIDCProvider) -> None:
    assert oidc_provider.user("x@example.org").sub == oidc_provider.user(" X@example.org").sub
    assert oidc_provider.user("x@example.org").sub != oidc_provider.user("y@example.org").sub


async def test_wrong_verifier_is_refused(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    wrong = await exchange(http, oidc_provider, client, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = await exchange(http, oidc_provider, client, code, "")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


async def test_code_is_good_once(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    first = await exchange(http, oidc_provider, client, code, auth.verifier)
    assert first.status_code == 200
    again = await exchange(http, oidc_provider, client, code, auth.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_code_of_another_client_or_wrong_secret_is_refused(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    thief = oidc_provider.register_client(REDIRECT)
    stolen = await exchange(http, oidc_provider, thief, code, auth.verifier)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    impostor = OIDCClient(client.client_id, "not-the-secret", client.redirect_uris)
    refused = await exchange(http, oidc_provider, impostor, code, auth.verifier)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"


async def test_wrong_redirect_uri_is_refused(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    unregistered = await http.get(
        oidc_provider.url("/authorize"),
        params=authorization(client, redirect_uri="http://127.0.0.1:9/elsewhere").params,
    )
    # Never redirected to an unregistered URI: an error page instead.
    assert unregistered.status_code == 400 and "location" not in unregistered.headers
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    other = await exchange(
        http, oidc_provider, client, code, auth.verifier, redirect_uri=REDIRECT + "/other"
    )
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"state": ""}, "state"),
        ({"nonce": ""}, "nonce"),
        ({"code_challenge": "", "code_challenge_method": ""}, "code_challenge"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"scope": "email"}, "openid"),
    ],
)
async def test_authorization_requests_without_the_required_parameters_are_refused(
    oidc_provider: OIDCProvider,
    client: OIDCClient,
    http: httpx.AsyncClient,
    overrides: dict[str, str],
    missing: str,
) -> None:
    auth = authorization(client, **overrides)
    response = await http.get(oidc_provider.url("/authorize"), params=auth.params)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert missing in query["error_description"][0]


async def test_unknown_client_is_refused(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    auth = authorization(client, client_id="nobody")
    response = await http.get(oidc_provider.url("/authorize"), params=auth.params)
    assert response.status_code == 400 and response.json()["error"] == "invalid_client"


def test_minted_tokens_verify(oidc_provider: OIDCProvider) -> None:
    token = oidc_provider.mint(
        "sub-1", "a@example.org", audience=API_AUDIENCE, roles=("admin",), scope="api"
    )
    claims = verify(oidc_provider, token, API_AUDIENCE, oidc_provider.jwks)
    assert claims["sub"] == "sub-1" and claims["roles"] == ["admin"] and claims["scope"] == "api"


def test_bad_tokens_fail_verification(oidc_provider: OIDCProvider) -> None:
    mint = oidc_provider.mint
    bad = {
        "expired": mint("s", "a@example.org", audience=API_AUDIENCE, expires_in=-120),
        "wrong issuer": mint("s", None, audience=API_AUDIENCE, issuer="http://127.0.0.1:9"),
        "wrong audience": mint("s", None, audience="someone-else"),
        "other key": mint("s", None, audience=API_AUDIENCE, key=other_key()),
        "forged key": mint("s", None, audience=API_AUDIENCE, key=oidc_provider.forged_key()),
        "alg none": oidc_provider.mint_unsigned("s", None, audience=API_AUDIENCE),
    }
    for name, token in bad.items():
        with pytest.raises(JoseError):
            verify(oidc_provider, token, API_AUDIENCE, oidc_provider.jwks)
            pytest.fail(f"the {name} token verified")


async def test_an_unverified_email_is_said_so_in_the_id_token(
    oidc_provider: OIDCProvider, client: OIDCClient, http: httpx.AsyncClient
) -> None:
    email = f"unverified-{secrets.token_hex(4)}@example.org"
    oidc_provider.mark_unverified(email)
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, email), auth)
    tokens = (await exchange(http, oidc_provider, client, code, auth.verifier)).json()
    claims = verify(oidc_provider, tokens["id_token"], client.client_id, oidc_provider.jwks)
    assert claims["email_verified"] is False
    minted = oidc_provider.mint(sub_for(email), email, audience=API_AUDIENCE)
    minted_claims = verify(oidc_provider, minted, API_AUDIENCE, oidc_provider.jwks)
    assert minted_claims["email_verified"] is False


@pytest.mark.parametrize("basic", [False, True], ids=["client_secret_post", "client_secret_basic"])
async def test_a_secret_with_form_special_characters_authenticates_when_encoded(
    oidc_provider: OIDCProvider, http: httpx.AsyncClient, basic: bool
) -> None:
    client = oidc_provider.register_client(REDIRECT, client_secret=AWKWARD_SECRET)
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    response = await exchange(http, oidc_provider, client, code, auth.verifier, basic=basic)
    assert response.status_code == 200, response.text
    assert oidc_provider.token_auth_methods[-1] == (
        "client_secret_basic" if basic else "client_secret_post"
    )


async def test_basic_credentials_not_form_encoded_are_refused(
    oidc_provider: OIDCProvider, http: httpx.AsyncClient
) -> None:
    client = oidc_provider.register_client(REDIRECT, client_secret=AWKWARD_SECRET)
    auth = authorization(client)
    code = code_from(await sign_in(http, oidc_provider, auth, "a@example.org"), auth)
    raw = await exchange(
        http, oidc_provider, client, code, auth.verifier, basic=True, encoded=False
    )
    assert raw.status_code == 401 and raw.json()["error"] == "invalid_client"


async def test_a_provider_may_list_only_basic_authentication(http: httpx.AsyncClient) -> None:
    with serve_provider(auth_methods=("client_secret_basic",)) as provider:
        discovery = (await http.get(provider.url("/.well-known/openid-configuration"))).json()
        assert discovery["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
        client = provider.register_client(REDIRECT)
        auth = authorization(client)
        code = code_from(await sign_in(http, provider, auth, "a@example.org"), auth)
        posted = await exchange(http, provider, client, code, auth.verifier)
        assert posted.status_code == 401 and posted.json()["error"] == "invalid_client"


async def test_a_provider_may_share_the_address_only_through_userinfo(
    http: httpx.AsyncClient,
) -> None:
    with serve_provider(claims_in_id_token=False) as provider:
        client = provider.register_client(REDIRECT)
        auth = authorization(client)
        code = code_from(await sign_in(http, provider, auth, "Ada@Example.org"), auth)
        tokens = (await exchange(http, provider, client, code, auth.verifier)).json()
        claims = verify(provider, tokens["id_token"], client.client_id, provider.jwks)
        assert claims["sub"] == sub_for("ada@example.org")
        assert "email" not in claims and "email_verified" not in claims
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        userinfo = (await http.get(provider.url("/userinfo"), headers=bearer)).json()
        assert userinfo == {
            "sub": claims["sub"],
            "email": "Ada@Example.org",
            "email_verified": True,
        }
        provider.answer_userinfo_for_another("ada@example.org")
        lying = (await http.get(provider.url("/userinfo"), headers=bearer)).json()
        assert lying["sub"] != claims["sub"]


async def test_rp_initiated_logout_checks_the_hint_and_the_registered_uri(
    http: httpx.AsyncClient,
) -> None:
    with serve_provider(end_session=True) as provider:
        discovery = (await http.get(provider.url("/.well-known/openid-configuration"))).json()
        assert discovery["end_session_endpoint"] == provider.url("/logout")
        client = provider.register_client(REDIRECT, post_logout_redirect_uris=[SIGNED_OUT])
        auth = authorization(client)
        code = code_from(await sign_in(http, provider, auth, "a@example.org"), auth)
        id_token = (await exchange(http, provider, client, code, auth.verifier)).json()["id_token"]
        logout = provider.url("/logout")
        params = {"id_token_hint": id_token, "post_logout_redirect_uri": SIGNED_OUT}
        done = await http.get(logout, params={**params, "state": "s1"})
        assert done.status_code == 302 and done.headers["location"] == SIGNED_OUT + "?state=s1"
        assert provider.logouts == [{**params, "state": "s1"}]
        elsewhere = {**params, "post_logout_redirect_uri": REDIRECT}
        assert (await http.get(logout, params=elsewhere)).status_code == 400
        forged = {
            **params,
            "id_token_hint": provider.mint("s", None, audience="x", key=other_key()),
        }
        assert (await http.get(logout, params=forged)).status_code == 400
        assert len(provider.logouts) == 1
