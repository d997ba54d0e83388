"""A sign-in through an organization's own provider: its authorization code exchanged and
its ID token verified, into the claims a4c acts on.

:func:`exchange_code` is the relying party's part of the OpenID Connect code flow (Core
1.0, sections 3.1.3.1-3.1.3.7), run where the client secret may be opened (the worker):

- the code, the PKCE verifier and the redirect URI go to the provider's token endpoint,
  the client authenticated with its secret (``client_secret_basic``, each part
  form-encoded first as RFC 6749 section 2.3.1 asks, else ``client_secret_post``),
  through an :class:`a4c_outbound.transport.Outbound` (the SSRF rules, a timeout, a cap);
- the ID token's signature is checked against the provider's published keys (only those
  :func:`a4c_sso.discovery.usable_algorithms` accepts, for the algorithms the provider
  was admitted with: never ``none`` nor a shared secret), then ``iss`` (exactly the
  configured issuer), ``aud`` (holds the client id; ``azp`` the client id when there
  are several), ``exp`` and ``iat`` (:data:`LEEWAY` seconds of clock skew), ``sub``, and
  ``nonce`` (the one the sign-in started with);
- ``email`` must be there and ``email_verified`` true: a4c trusts an address only when
  the provider vouches for it.

What it returns is :class:`SignInClaims` only; the code, the tokens and the secret are
never returned, logged or put in an error.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict

from a4c_outbound.transport import (
    DeliveryFailed,
    DestinationRefused,
    NoResponseInTime,
    Outbound,
)
from a4c_sso.discovery import ProviderMetadata, fetch_object, key_algorithms
from a4c_sso.errors import (
    AddressRefused,
    CodeRejected,
    EmailNotVerified,
    InvalidIDToken,
    ProviderTooSlow,
    ProviderUnreachable,
    excerpt,
)

LEEWAY = 60  # seconds of clock skew allowed on exp and iat
MAX_CLAIM_LENGTH = 255  # sub, email, name: what a4c keeps of each
_TOKEN = "token endpoint"  # noqa: S105 - what it is called, not a secret
_JWKS = "key set (jwks_uri)"


class SignInClaims(BaseModel):
    """Who signed in, as the provider vouched for it (the ID token's verified claims)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    subject: str
    email: str
    email_verified: bool
    name: str | None = None

    @property
    def email_domain(self) -> str:
        return self.email.rsplit("@", 1)[1].lower()


def _basic(client_id: str, client_secret: str) -> str:
    pair = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


async def _token_response(
    metadata: ProviderMetadata,
    outbound: Outbound,
    form: dict[str, str],
    client_id: str,
    client_secret: str,
) -> dict[str, Any]:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "accept": "application/json",
    }
    if "client_secret_basic" in metadata.token_endpoint_auth_methods:
        headers["authorization"] = _basic(client_id, client_secret)
    else:
        form = {**form, "client_id": client_id, "client_secret": client_secret}
    try:
        answer = await outbound.post(metadata.token_endpoint, headers, urlencode(form).encode())
    except DestinationRefused as error:
        raise AddressRefused(_TOKEN, error.reason) from None
    except NoResponseInTime:
        raise ProviderTooSlow(_TOKEN, outbound.policy.timeout) from None
    except DeliveryFailed as error:
        raise ProviderUnreachable(_TOKEN, error.reason) from None
    try:
        document = json.loads(answer.body)
    except ValueError:
        document = None
    if answer.status != httpx.codes.OK:
        said = document.get("error") if isinstance(document, dict) else None
        raise CodeRejected(answer.status, said or "no error code")
    if not isinstance(document, dict):
        raise InvalidIDToken("the token endpoint's answer is not a JSON object")
    return document


def _keys(key_set: dict[str, Any], algorithms: tuple[str, ...]) -> KeySet:
    """The key set's keys a4c accepts (as the provider's check did), for joserfc."""
    entries = key_set.get("keys")
    usable = [
        e
        for e in (entries if isinstance(entries, list) else [])
        if not isinstance(key_algorithms(e, algorithms), str)
    ]
    if not usable:
        raise InvalidIDToken("the provider's key set has no usable key any more")
    return KeySet.import_key_set({"keys": usable})


def _short(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_CLAIM_LENGTH:
        raise InvalidIDToken(f"its {what!r} claim is not a string of 1-{MAX_CLAIM_LENGTH}")
    return value


def verify_id_token(
    token: str,
    key_set: dict[str, Any],
    metadata: ProviderMetadata,
    *,
    client_id: str,
    nonce: str,
) -> SignInClaims:
    """The claims of ``token`` once it verifies (see the module's docstring)."""
    keys = _keys(key_set, metadata.signing_algorithms)
    try:
        decoded = jwt.decode(token, keys, algorithms=list(metadata.signing_algorithms))
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidIDToken(f"its signature does not verify ({type(error).__name__})") from None
    claims = decoded.claims
    try:
        jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": metadata.issuer},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(claims)
    except (JoseError, ValueError, TypeError) as error:
        raise InvalidIDToken(excerpt(str(error) or type(error).__name__)) from None
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
        raise InvalidIDToken("it names several audiences and its 'azp' is not a4c's client")
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is not True:
        raise EmailNotVerified()
    name = claims.get("name")
    return SignInClaims(
        issuer=metadata.issuer,
        subject=_short(claims.get("sub"), "sub"),
        email=_short(email, "email").strip().lower(),
        email_verified=True,
        name=name[:MAX_CLAIM_LENGTH] if isinstance(name, str) and name.strip() else None,
    )


async def exchange_code(
    metadata: ProviderMetadata,
    outbound: Outbound,
    *,
    client_id: str,
    client_secret: str,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    nonce: str,
) -> SignInClaims:
    """Exchange a sign-in's ``code`` at the provider and verify its ID token.

    :class:`a4c_sso.errors.SignInFailed` (its kinds) when the sign-in proves nothing;
    :class:`a4c_sso.errors.ProviderRefused` (unreachable, too slow) when the provider
    could not be asked.
    """
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    tokens = await _token_response(metadata, outbound, form, client_id, client_secret)
    token = tokens.get("id_token")
    if not isinstance(token, str):
        raise InvalidIDToken("the token endpoint sent no ID token")
    key_set = await fetch_object(outbound, metadata.jwks_uri, _JWKS)
    return verify_id_token(token, key_set, metadata, client_id=client_id, nonce=nonce)


__all__ = ["LEEWAY", "SignInClaims", "exchange_code", "verify_id_token"]
