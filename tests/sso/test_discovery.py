"""An organization's identity provider is checked before a4c trusts it.

Against real providers (``tests.servers.oidc``): a second instance with keys of its own
is accepted; providers that lie about their issuer, publish no usable key, answer too
slowly, lack a required field or point at a refused address are each refused with the
typed error that names the problem, quoting no more of what they sent than a bounded,
printable excerpt. The key rules themselves (sizes, curves, private keys) are checked on
JWKs made here, pure logic.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey, OKPKey, RSAKey

from a4c_outbound.transport import IPAddress, Outbound, OutboundPolicy, system_resolver
from a4c_sso.discovery import (
    MAX_DOCUMENT_BYTES,
    SUPPORTED_ALGORITHMS,
    check_discovery,
    provider_policy,
    usable_algorithms,
    validate_provider,
)
from a4c_sso.errors import (
    EXCERPT_LENGTH,
    AddressRefused,
    InvalidDocument,
    InvalidIssuer,
    IssuerMismatch,
    MissingField,
    NotHttps,
    NoUsableKey,
    ProviderRefused,
    ProviderTooSlow,
    ProviderUnreachable,
    UnsupportedAlgorithms,
    excerpt,
)
from tests.servers.oidc import (
    OIDCProvider,
    encryption_only_keys,
    serve_provider,
    shared_secret_keys,
)
from tests.support import free_port

LOCAL = provider_policy(production=False, allow_private=True)
PRODUCTION_LOCAL = provider_policy(production=True, allow_private=True)
PUBLIC_ONLY = provider_policy(production=False, allow_private=False)


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    async with Outbound(LOCAL) as client:
        yield client


async def refusal(
    expected: type[ProviderRefused], outbound: Outbound, **variant: Any
) -> ProviderRefused:
    """The refusal of a provider served with ``variant`` (``serve_provider``'s options)."""
    with serve_provider(**variant) as provider, pytest.raises(expected) as refused:
        await validate_provider(provider.issuer, outbound)
    return refused.value


async def test_an_organizations_own_provider_is_accepted(
    oidc_provider: OIDCProvider, outbound: Outbound
) -> None:
    with serve_provider(end_session=True) as own:
        assert own.kid != oidc_provider.kid and own.issuer != oidc_provider.issuer
        metadata = await validate_provider(own.issuer, outbound)
    assert metadata.issuer == own.issuer
    assert metadata.authorization_endpoint == own.url("/authorize")
    assert metadata.token_endpoint == own.url("/token")
    assert metadata.jwks_uri == own.url("/jwks")
    assert metadata.userinfo_endpoint == own.url("/userinfo")
    assert metadata.end_session_endpoint == own.url("/logout")
    assert metadata.signing_algorithms == ("RS256",)
    assert set(metadata.token_endpoint_auth_methods) == {
        "client_secret_post",
        "client_secret_basic",
    }
    assert metadata.code_challenge_methods == ("S256",)


async def test_a_provider_lying_about_its_issuer_is_refused(outbound: Outbound) -> None:
    lie = "https://accounts.example.com/\x1b[31m" + "x" * 500 + "\u202e"
    refused = await refusal(IssuerMismatch, outbound, discovery_overrides={"issuer": lie})
    assert isinstance(refused, IssuerMismatch)
    text = str(refused)
    assert "names the issuer 'https://accounts.example.com/?[31mxxx" in text
    assert "\x1b" not in text and "\u202e" not in text
    assert "x" * (EXCERPT_LENGTH + 1) not in text
    assert "exactly" in text


async def test_an_issuer_differing_only_by_a_trailing_slash_is_refused(
    oidc_provider: OIDCProvider, outbound: Outbound
) -> None:
    with pytest.raises(IssuerMismatch):
        await validate_provider(oidc_provider.issuer + "/", outbound)


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        (shared_secret_keys(), "1 a shared secret (kty oct)"),
        (encryption_only_keys(), "1 for encryption, not signing"),
        ([], "it lists no keys"),
    ],
    ids=["hs256-only", "encryption-only", "empty"],
)
async def test_a_provider_without_a_usable_signing_key_is_refused(
    outbound: Outbound, keys: list[dict[str, Any]], named: str
) -> None:
    refused = await refusal(NoUsableKey, outbound, published_keys=keys)
    assert str(refused).endswith(named)
    assert "no public signing key for RS256" in str(refused)


async def test_a_provider_slower_than_the_timeout_is_refused_in_time() -> None:
    policy = OutboundPolicy(allow_http=True, allow_private=True, timeout=0.5)
    started = time.monotonic()
    async with Outbound(policy) as slow_tolerant:
        refused = await refusal(ProviderTooSlow, slow_tolerant, delay=2.0)
    assert time.monotonic() - started < 5
    assert str(refused) == "the provider did not send its discovery document within 0.5 s"
    assert refused.retryable


async def test_a_provider_that_does_not_answer_is_unreachable(outbound: Outbound) -> None:
    port = free_port()
    with pytest.raises(ProviderUnreachable) as unreachable:
        await validate_provider(f"http://127.0.0.1:{port}/tenant", outbound)
    assert f"cannot connect to http://127.0.0.1:{port}" in str(unreachable.value)
    assert "/tenant" not in str(unreachable.value)


async def test_an_issuer_with_a_query_or_fragment_is_invalid(outbound: Outbound) -> None:
    for issuer in ("https://idp.example.com/?tenant=1", "https://idp.example.com/#x", ""):
        with pytest.raises(InvalidIssuer):
            await validate_provider(issuer, outbound)


async def test_a_discovery_that_is_no_document_is_refused(outbound: Outbound) -> None:
    with (
        serve_provider() as provider,
        pytest.raises(ProviderUnreachable, match="answered HTTP 404"),
    ):
        await validate_provider(provider.url("/nothing-here"), outbound)
    huge = [{"kty": "oct", "k": "x" * MAX_DOCUMENT_BYTES}]
    refused = await refusal(InvalidDocument, outbound, published_keys=huge)
    assert str(refused) == "the provider's key set (jwks_uri) is larger than 256 KiB"


@pytest.mark.parametrize(
    ("overrides", "expected", "named"),
    [
        ({"token_endpoint": None}, MissingField, "'token_endpoint' is missing"),
        ({"jwks_uri": 42}, MissingField, "'jwks_uri' is not a URL"),
        (
            {"authorization_endpoint": "https://idp.example.com/" + "a" * 3000},
            MissingField,
            "'authorization_endpoint' is not a URL of at most 2048 characters",
        ),
        (
            {"token_endpoint_auth_methods_supported": ["private_key_jwt"]},
            MissingField,
            "offers none of client_secret_basic, client_secret_post",
        ),
        (
            {"response_types_supported": ["id_token"]},
            MissingField,
            "'response_types_supported' does not include 'code'",
        ),
        (
            {"id_token_signing_alg_values_supported": ["HS256", "none"]},
            UnsupportedAlgorithms,
            'signs ID tokens only with ["HS256", "none"]',
        ),
        (
            {"id_token_signing_alg_values_supported": None},
            MissingField,
            "'id_token_signing_alg_values_supported' is missing",
        ),
        ({"token_endpoint": "ftp://idp.example.com/token"}, NotHttps, "token_endpoint"),
        (
            {"userinfo_endpoint": "http://user:pw@idp.example.com/u"},
            AddressRefused,
            "user info in URL is not allowed",
        ),
    ],
)
async def test_a_discovery_document_missing_what_is_required_is_refused(
    outbound: Outbound,
    overrides: dict[str, Any],
    expected: type[ProviderRefused],
    named: str,
) -> None:
    refused = await refusal(expected, outbound, discovery_overrides=overrides)
    assert named in str(refused)


async def test_production_requires_https_for_the_issuer(oidc_provider: OIDCProvider) -> None:
    async with Outbound(PRODUCTION_LOCAL) as production:
        with pytest.raises(NotHttps, match="issuer is not an https URL"):
            await validate_provider(oidc_provider.issuer, production)


async def test_private_addresses_are_refused_unless_allowed(
    oidc_provider: OIDCProvider,
) -> None:
    async with Outbound(PUBLIC_ONLY) as public_only:
        with pytest.raises(AddressRefused, match=r"127\.0\.0\.1 is loopback"):
            await validate_provider(oidc_provider.issuer, public_only)

    # A public-looking name that resolves to the provider on loopback: refused when the
    # request connects (the name's address is checked then), not only by its spelling.
    async def as_localhost(host: str, port: int) -> list[IPAddress]:
        return await system_resolver("localhost", port)

    port = oidc_provider.issuer.rsplit(":", 1)[1]
    async with Outbound(PUBLIC_ONLY, resolver=as_localhost) as rebound:
        with pytest.raises(AddressRefused) as refused:
            await validate_provider(f"http://idp.example.com:{port}", rebound)
    assert "idp.example.com resolves to 127.0.0.1, which is loopback" in str(refused.value)


def jwk(key: RSAKey | ECKey | OKPKey, **parameters: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **parameters}


@pytest.mark.filterwarnings("ignore:Key size should be:UserWarning")
def test_the_key_rules() -> None:
    rsa = RSAKey.generate_key(2048)
    assert usable_algorithms({"keys": [jwk(rsa)]}, SUPPORTED_ALGORITHMS) == ("RS256", "PS256")
    assert usable_algorithms({"keys": [jwk(rsa, alg="PS256")]}, SUPPORTED_ALGORITHMS) == ("PS256",)
    p256 = ECKey.generate_key("P-256")
    ed25519 = OKPKey.generate_key("Ed25519")
    assert usable_algorithms({"keys": [jwk(p256), jwk(ed25519)]}, SUPPORTED_ALGORITHMS) == (
        "ES256",
        "EdDSA",
    )
    # Only what the provider offers counts: an EC key for a provider signing RS256 only.
    refused = {
        "an RSA key shorter than 2048 bits": jwk(RSAKey.generate_key(1024)),
        "an EC key on a curve other than P-256": jwk(ECKey.generate_key("P-384")),
        "an OKP key that is not an Edwards signing key": jwk(OKPKey.generate_key("X25519")),
        "a private key (published by mistake: never trusted)": rsa.as_dict(private=True),
        "for an algorithm a4c does not accept": jwk(rsa, alg="RS512"),
        "not for verifying (key_ops)": jwk(rsa, key_ops=["encrypt"]),
        "not a valid key": {"kty": "RSA", "n": "AQAB"},
        "not a key (not a JSON object)": "RSA",
    }
    for why, key in refused.items():
        with pytest.raises(NoUsableKey) as none:
            usable_algorithms({"keys": [key]}, SUPPORTED_ALGORITHMS)
        assert str(none.value).endswith(f": 1 {why}"), why
    with pytest.raises(NoUsableKey, match="1 of a type no accepted algorithm uses"):
        usable_algorithms({"keys": [jwk(p256)]}, ("RS256",))
    with pytest.raises(InvalidDocument, match="has no 'keys' list"):
        usable_algorithms({"keys": "none"}, SUPPORTED_ALGORITHMS)


def test_an_excerpt_is_printable_ascii_and_bounded() -> None:
    assert excerpt("plain") == "plain"
    assert excerpt("a\nb\x00c\u0430") == "a?b?c?"
    assert excerpt("y" * 500) == "y" * EXCERPT_LENGTH + "…"
    assert excerpt(["RS512", 7]) == '["RS512", 7]'


# --- any document: a result or a typed refusal, bounded either way ----------------------

ISSUER = "https://idp.example.com"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
GOOD = {
    "issuer": ISSUER,
    "authorization_endpoint": ISSUER + "/authorize",
    "token_endpoint": ISSUER + "/token",
    "jwks_uri": ISSUER + "/jwks",
    "response_types_supported": ["code"],
    "id_token_signing_alg_values_supported": ["RS256"],
}
documents = st.one_of(
    st.dictionaries(st.text(max_size=40), json_values, max_size=8),
    # A good document with some fields replaced by anything (or a plausible value).
    st.builds(
        lambda changes: {**GOOD, **changes},
        st.dictionaries(
            st.sampled_from([*GOOD, "userinfo_endpoint", "token_endpoint_auth_methods_supported",
                             "code_challenge_methods_supported", "end_session_endpoint"]),
            json_values
            | st.sampled_from(["http://10.0.0.1/x", "javascript:alert(1)", "https://a.b/" + "é" * 3,
                               ["code", "id_token"], ["ES256", "none"], ["S256"], ISSUER + "/"]),
            max_size=4,
        ),
    ),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(document=documents)
def test_any_document_gives_metadata_or_a_typed_bounded_refusal(document: dict[str, Any]) -> None:
    try:
        metadata = check_discovery(ISSUER, document, PRODUCTION_LOCAL)
    except ProviderRefused as refused:
        text = str(refused)
        assert len(text) < 600 and text.isprintable(), text
        return
    assert metadata.issuer == ISSUER and metadata.signing_algorithms
    assert len(metadata.model_dump_json()) < 12_000  # what history would record, bounded
    for url in (metadata.authorization_endpoint, metadata.token_endpoint, metadata.jwks_uri):
        assert url.startswith("https://")


def test_the_fuzzed_documents_start_from_one_that_passes() -> None:
    metadata = check_discovery(ISSUER, GOOD, PRODUCTION_LOCAL)
    assert metadata.signing_algorithms == ("RS256",)
    assert metadata.token_endpoint_auth_methods == ("client_secret_basic",)  # the default
    unknown = {**GOOD, "code_challenge_methods_supported": ["S256", "x" * 5000]}
    assert check_discovery(ISSUER, unknown, PRODUCTION_LOCAL).code_challenge_methods == ("S256",)
