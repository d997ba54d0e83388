"""a4c_sso.exchange against a real test OpenID provider (keys of its own): a code-flow
sign-in's code is exchanged (client_secret_basic, or _post when that is all the provider
takes) and its ID token verified into the claims; a spent code, a wrong verifier or
secret, another nonce, another audience, a token signed by other keys, an unverified
address are each refused with their kind, and none of the code, tokens or secret shows
in the error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from a4c_outbound.transport import Outbound
from a4c_sso.discovery import ProviderMetadata, provider_policy, validate_provider
from a4c_sso.errors import (
    CodeRejected,
    EmailNotVerified,
    InvalidIDToken,
    SignInFailed,
)
from a4c_sso.exchange import exchange_code, verify_id_token
from tests.servers.oidc import OIDCClient, OIDCProvider, serve_provider
from tests.servers.test_oidc import authorization, code_from, sign_in

CALLBACK = "http://127.0.0.1:9/sso/callback"  # never contacted: the test reads it


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    async with Outbound(provider_policy(production=False, allow_private=True)) as client:
        yield client


async def signed_in(
    provider: OIDCProvider, client: OIDCClient, email: str = "ada@acme.example"
) -> tuple[str, str, str]:
    """A real sign-in at the provider: its code, the PKCE verifier and the nonce."""
    auth = authorization(client)
    async with httpx.AsyncClient() as http:
        code = code_from(await sign_in(http, provider, auth, email), auth)
    return code, auth.verifier, auth.params["nonce"]


async def exchanged(
    metadata: ProviderMetadata,
    outbound: Outbound,
    client: OIDCClient,
    code: str,
    verifier: str,
    nonce: str,
    **changes: str,
) -> Any:
    arguments = {
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": CALLBACK,
        "nonce": nonce,
        **changes,
    }
    return await exchange_code(metadata, outbound, **arguments)


@pytest.mark.parametrize("methods", [("client_secret_basic",), ("client_secret_post",)])
async def test_a_sign_in_gives_its_verified_claims(
    outbound: Outbound, methods: tuple[str, ...]
) -> None:
    with serve_provider(auth_methods=methods) as provider:
        metadata = await validate_provider(provider.issuer, outbound)
        client = provider.register_client(CALLBACK, client_secret="a+b/c= " + "x" * 12)
        code, verifier, nonce = await signed_in(provider, client, "Ada@Acme.Example")
        claims = await exchanged(metadata, outbound, client, code, verifier, nonce)
        assert (claims.issuer, claims.subject, claims.email, claims.email_verified) == (
            provider.issuer,
            provider.user("Ada@Acme.Example").sub,
            "ada@acme.example",
            True,
        )
        assert claims.email_domain == "acme.example"
        # The code is single-use: the second exchange is refused.
        with pytest.raises(CodeRejected) as spent:
            await exchanged(metadata, outbound, client, code, verifier, nonce)
        assert code not in str(spent.value) and client.client_secret not in str(spent.value)


async def test_a_wrong_verifier_secret_or_nonce_proves_nothing(outbound: Outbound) -> None:
    with serve_provider() as provider:
        metadata = await validate_provider(provider.issuer, outbound)
        client = provider.register_client(CALLBACK)
        code, verifier, nonce = await signed_in(provider, client)
        with pytest.raises(CodeRejected):
            await exchanged(metadata, outbound, client, code, verifier + "x", nonce)
        code, verifier, nonce = await signed_in(provider, client)
        with pytest.raises(CodeRejected):
            await exchanged(
                metadata, outbound, client, code, verifier, nonce, client_secret="wrong"
            )
        code, verifier, nonce = await signed_in(provider, client)
        with pytest.raises(InvalidIDToken, match="nonce"):
            await exchanged(metadata, outbound, client, code, verifier, "another-nonce")


async def test_an_unverified_address_is_refused(outbound: Outbound) -> None:
    with serve_provider() as provider:
        metadata = await validate_provider(provider.issuer, outbound)
        client = provider.register_client(CALLBACK)
        provider.mark_unverified("eve@acme.example")
        code, verifier, nonce = await signed_in(provider, client, "eve@acme.example")
        with pytest.raises(EmailNotVerified):
            await exchanged(metadata, outbound, client, code, verifier, nonce)


async def test_a_token_not_signed_by_the_providers_keys_or_for_another_client_is_refused(
    outbound: Outbound,
) -> None:
    with serve_provider() as provider:
        metadata = await validate_provider(provider.issuer, outbound)
        now = 1_900_000_000
        claims = {
            "iss": provider.issuer,
            "aud": "a4c",
            "sub": "s",
            "iat": now,
            "exp": now + 300,
            "nonce": "n",
            "email": "a@b.example",
            "email_verified": True,
        }
        forged = jwt.encode({"alg": "RS256"}, claims, RSAKey.generate_key(2048))
        with pytest.raises(InvalidIDToken, match="signature"):
            verify_id_token(forged, provider.jwks, metadata, client_id="a4c", nonce="n")
        # Signed by the provider, but for another client.
        client = provider.register_client(CALLBACK)
        code, verifier, nonce = await signed_in(provider, client)
        with pytest.raises(SignInFailed):
            await exchanged(
                metadata, outbound, client, code, verifier, nonce, client_id="someone-else"
            )
