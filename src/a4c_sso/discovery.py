"""Checking an organization's OpenID Connect provider before a4c trusts it.

:func:`validate_provider` reads ``{issuer}/.well-known/openid-configuration`` and the key
set it names (``jwks_uri``), both through an :class:`a4c_outbound.transport.Outbound`
(the SSRF rules, a timeout per request, a cap on each answer's size), and checks what
OpenID Connect Discovery 1.0 requires of them (sections 3 and 4.3):

- the issuer is an http(s) URL with no query or fragment, https unless the policy allows
  http (development), and its host passes the outbound rules;
- the document is a JSON object whose ``issuer`` is exactly the configured one;
- ``authorization_endpoint``, ``token_endpoint`` and ``jwks_uri`` are there and, like
  ``userinfo_endpoint`` and ``end_session_endpoint`` when there, are URLs the outbound
  rules allow; ``response_types_supported`` includes ``code``;
- ``id_token_signing_alg_values_supported`` includes one of :data:`SUPPORTED_ALGORITHMS`
  (asymmetric only: ``none`` and the shared-secret HS algorithms are never used), and
  the token endpoint takes a client secret (``client_secret_basic`` or ``_post``);
- the key set has at least one public signing key for such an algorithm, read by
  joserfc (RSA of at least 2048 bits, P-256, Ed25519/Ed448), not marked for encryption.

Each refusal is a :class:`a4c_sso.errors.ProviderRefused` naming the problem.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey, RSAKey
from pydantic import BaseModel, ConfigDict

from a4c_outbound.transport import (
    DeliveryFailed,
    DestinationRefused,
    NoResponseInTime,
    Outbound,
    OutboundPolicy,
    UnsafeURL,
    check_url,
)
from a4c_sso.errors import (
    AddressRefused,
    InvalidDocument,
    InvalidIssuer,
    IssuerMismatch,
    MissingField,
    NotHttps,
    NoUsableKey,
    ProviderTooSlow,
    ProviderUnreachable,
    UnsupportedAlgorithms,
    excerpt,
)

DISCOVERY_PATH = "/.well-known/openid-configuration"
# Asymmetric signatures only, in the order a4c prefers them.
SUPPORTED_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
_KEY_TYPE = {"RS256": "RSA", "PS256": "RSA", "ES256": "EC", "EdDSA": "OKP"}
_EDWARDS_CURVES = frozenset({"Ed25519", "Ed448"})
MIN_RSA_BITS = 2048
MAX_URL_LENGTH = 2048  # an issuer's or an endpoint's
# How a4c, a confidential client, can authenticate at the token endpoint (its order of
# preference), and the PKCE methods it knows.
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
CODE_CHALLENGE_METHODS = ("S256", "plain")
MAX_KEYS = 100  # more than any real provider publishes; only these are looked at
# A discovery document is a few KB, a key set with a dozen keys a few tens: a cap well
# above both, so a provider cannot make a4c read (or keep) megabytes.
MAX_DOCUMENT_BYTES = 256 * 1024
TIMEOUT = 10.0  # seconds, for each of the two requests

_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
_OPTIONAL_ENDPOINTS = ("userinfo_endpoint", "end_session_endpoint")
_DISCOVERY = "discovery document"
_JWKS = "key set (jwks_uri)"


def provider_policy(*, production: bool, allow_private: bool) -> OutboundPolicy:
    """The outbound rules for an identity provider: https only in production; private
    addresses only when a development or test setting allows them."""
    return OutboundPolicy(
        allow_http=not production,
        allow_private=allow_private,
        timeout=TIMEOUT,
        max_response_bytes=MAX_DOCUMENT_BYTES,
    )


class ProviderMetadata(BaseModel):
    """What a4c keeps of a provider that passed :func:`validate_provider`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    end_session_endpoint: str | None = None
    # The supported algorithms the provider offers and has a usable key for, a4c's order.
    signing_algorithms: tuple[str, ...]
    token_endpoint_auth_methods: tuple[str, ...]
    code_challenge_methods: tuple[str, ...] = ()


async def validate_provider(issuer: str, outbound: Outbound) -> ProviderMetadata:
    """The provider at ``issuer``, checked; :class:`a4c_sso.errors.ProviderRefused` if not."""
    policy = outbound.policy
    _check_issuer(issuer, policy)
    document = await fetch_object(outbound, issuer.rstrip("/") + DISCOVERY_PATH, _DISCOVERY)
    discovered = check_discovery(issuer, document, policy)
    keys = await fetch_object(outbound, discovered.jwks_uri, _JWKS)
    usable = usable_algorithms(keys, discovered.signing_algorithms)
    return discovered.model_copy(update={"signing_algorithms": usable})


def check_discovery(
    issuer: str, document: Mapping[str, Any], policy: OutboundPolicy
) -> ProviderMetadata:
    """What ``document`` (the discovery document fetched for ``issuer``) says, checked:
    ``signing_algorithms`` are those offered that a4c accepts, before any key is seen.
    Only what a4c uses is kept (known values, bounded URLs), so no provider can make the
    result, which workflow history records, large."""
    found = document.get("issuer")
    if found != issuer:
        if found is None:
            raise MissingField("issuer")
        raise IssuerMismatch(issuer, found)
    endpoints = {name: _endpoint(document, name, policy) for name in _ENDPOINTS}
    optional = {
        name: _endpoint(document, name, policy)
        for name in _OPTIONAL_ENDPOINTS
        if document.get(name) is not None
    }
    response_types = _strings(document, "response_types_supported")
    if "code" not in response_types:
        raise MissingField("response_types_supported", "does not include 'code'")
    offered = _strings(document, "id_token_signing_alg_values_supported")
    algorithms = tuple(a for a in SUPPORTED_ALGORITHMS if a in offered)
    if not algorithms:
        raise UnsupportedAlgorithms(offered, SUPPORTED_ALGORITHMS)
    # Discovery 1.0 section 3: client_secret_basic when the field is omitted.
    methods = _strings(document, "token_endpoint_auth_methods_supported", ("client_secret_basic",))
    auth_methods = tuple(m for m in CLIENT_AUTH_METHODS if m in methods)
    if not auth_methods:
        raise MissingField(
            "token_endpoint_auth_methods_supported",
            f"offers none of {', '.join(CLIENT_AUTH_METHODS)} (how a4c authenticates)",
        )
    challenges = _strings(document, "code_challenge_methods_supported", ())
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=optional.get("userinfo_endpoint"),
        end_session_endpoint=optional.get("end_session_endpoint"),
        signing_algorithms=algorithms,
        token_endpoint_auth_methods=auth_methods,
        code_challenge_methods=tuple(m for m in CODE_CHALLENGE_METHODS if m in challenges),
    )


def _check_url(what: str, url: str, policy: OutboundPolicy) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise AddressRefused(what, "it is not a valid URL") from None
    if parsed.scheme != "https" and not (parsed.scheme == "http" and policy.allow_http):
        raise NotHttps(what)
    try:
        check_url(url, policy)
    except UnsafeURL as error:
        raise AddressRefused(what, error.reason) from None
    return parsed


def _check_issuer(issuer: str, policy: OutboundPolicy) -> None:
    if not issuer or len(issuer) > MAX_URL_LENGTH:
        raise InvalidIssuer(f"it must be a URL of at most {MAX_URL_LENGTH} characters")
    parsed = _check_url("issuer", issuer, policy)
    if parsed.query or parsed.fragment or "?" in issuer or "#" in issuer:
        raise InvalidIssuer("an issuer URL has no query and no fragment")


def _endpoint(document: Mapping[str, Any], name: str, policy: OutboundPolicy) -> str:
    value = document.get(name)
    if value is None:
        raise MissingField(name)
    if not isinstance(value, str) or not value or len(value) > MAX_URL_LENGTH:
        raise MissingField(name, f"is not a URL of at most {MAX_URL_LENGTH} characters")
    _check_url(name, value, policy)
    return value


def _strings(
    document: Mapping[str, Any], name: str, default: tuple[str, ...] | None = None
) -> tuple[str, ...]:
    value = document.get(name)
    if value is None:
        if default is None:
            raise MissingField(name)
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MissingField(name, "is not a list of strings")
    return tuple(value)


async def fetch_object(outbound: Outbound, url: str, what: str) -> dict[str, Any]:
    try:
        answer = await outbound.get(url, {"accept": "application/json"})
    except DestinationRefused as error:
        raise AddressRefused(what, error.reason) from None
    except NoResponseInTime:
        raise ProviderTooSlow(what, outbound.policy.timeout) from None
    except DeliveryFailed as error:
        raise ProviderUnreachable(what, error.reason) from None
    if answer.status != httpx.codes.OK:
        raise ProviderUnreachable(what, f"it answered HTTP {answer.status}, not 200")
    if answer.truncated:
        cap = outbound.policy.max_response_bytes // 1024
        raise InvalidDocument(what, f"is larger than {cap} KiB")
    try:
        document = json.loads(answer.body)
    except ValueError:  # UnicodeDecodeError is one
        raise InvalidDocument(what, "is not JSON") from None
    if not isinstance(document, dict):
        raise InvalidDocument(what, "is not a JSON object")
    return document


def usable_algorithms(key_set: Mapping[str, Any], algorithms: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``algorithms`` some key of ``key_set`` (a JWKS) can verify, in order.

    :class:`a4c_sso.errors.NoUsableKey` if none, naming what the keys were instead.
    """
    keys = key_set.get("keys")
    if not isinstance(keys, list):
        raise InvalidDocument(_JWKS, "has no 'keys' list")
    usable: set[str] = set()
    unusable: Counter[str] = Counter()
    for entry in keys[:MAX_KEYS]:
        found = key_algorithms(entry, algorithms)
        if isinstance(found, str):
            unusable[found] += 1
        else:
            usable.update(found)
    if not usable:
        summary = ", ".join(f"{count} {why}" for why, count in sorted(unusable.items()))
        raise NoUsableKey(algorithms, summary or "it lists no keys")
    return tuple(a for a in algorithms if a in usable)


def key_algorithms(entry: object, algorithms: tuple[str, ...]) -> tuple[str, ...] | str:
    """The algorithms a JWK can verify, or why it can verify none (a fixed phrase)."""
    if not isinstance(entry, dict):
        return "not a key (not a JSON object)"
    if entry.get("use", "sig") != "sig":
        return "for encryption, not signing"
    operations = entry.get("key_ops")
    if operations is not None and (not isinstance(operations, list) or "verify" not in operations):
        return "not for verifying (key_ops)"
    kind = entry.get("kty")
    if kind == "oct":
        return "a shared secret (kty oct)"
    candidates = [a for a in algorithms if _KEY_TYPE[a] == kind]
    if not candidates:
        return "of a type no accepted algorithm uses"
    stated = entry.get("alg")
    if stated is not None:
        candidates = [a for a in candidates if a == stated]
        if not candidates:
            return "for an algorithm a4c does not accept"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns of short RSA keys; refused below
        try:
            key = JWKRegistry.import_key(dict(entry))
        except (JoseError, ValueError, TypeError):
            return "not a valid key"
    if key.is_private:
        return "a private key (published by mistake: never trusted)"
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        return f"an RSA key shorter than {MIN_RSA_BITS} bits"
    if isinstance(key, ECKey) and key.curve_name != "P-256":
        return "an EC key on a curve other than P-256"
    if isinstance(key, OKPKey) and key.curve_name not in _EDWARDS_CURVES:
        return "an OKP key that is not an Edwards signing key"
    return tuple(candidates)


__all__ = [
    "DISCOVERY_PATH",
    "MAX_DOCUMENT_BYTES",
    "SUPPORTED_ALGORITHMS",
    "TIMEOUT",
    "ProviderMetadata",
    "check_discovery",
    "excerpt",
    "provider_policy",
    "usable_algorithms",
    "validate_provider",
]
