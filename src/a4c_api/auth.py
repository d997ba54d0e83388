"""Who is calling the ``/v1`` API: a :class:`Principal` from ``Authorization: Bearer …``.

Two kinds of credential share the one header:

- an API key (``a4c_…``, made by ``a4c-api new-key``) for service callers. ``API_KEYS``
  holds only SHA-256s; the presented key's hash is compared with each in constant time.
  A key is an operator's (any organization) or one organization's.
- a JWT from the OpenID provider ``OIDC_ISSUER`` (an access token or ID token for
  ``OIDC_AUDIENCE``, default ``OIDC_CLIENT_ID``). Its signature is checked against the
  issuer's JWKS (found through the discovery document, cached, fetched again once when
  a token names a key it does not hold, at most every :data:`REFETCH_INTERVAL`), then
  ``iss``, ``aud``, ``exp`` (required) and ``nbf``. Only RS256 and ES256 are accepted:
  never ``none``, never a shared-secret (HS*) algorithm, whatever the token's header
  says. The subject (``sub``) is the user id, the one an accepted invitation records
  as the member's; the caller is a platform operator when the ``API_ROLES_CLAIM``
  claim (a list, or a space-separated string such as ``scope``) holds
  ``API_OPERATOR_ROLE``.

An organization's key stops authenticating once its organization has ended
(deactivated or offboarded): the read model's status says so.

A missing or wrong credential is a 401 problem with ``WWW-Authenticate: Bearer``; the
answer never repeats the credential, and nothing here logs it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from a4c_api import context as api_app
from a4c_api.problems import ProblemError, problem
from a4c_api.settings import API_KEY_PREFIX, ApiSettings, api_key_hash
from a4c_domain.organization import is_inactive

log = logging.getLogger(__name__)

# The only signature algorithms a bearer token may use (asymmetric: the API holds no
# secret that could sign one).
ALGORITHMS = ("RS256", "ES256")
# Clock skew tolerated on exp / nbf / iat (seconds).
LEEWAY = 30
# How long fetched keys are used before they are fetched again (seconds).
JWKS_MAX_AGE = 600.0
# An unknown ``kid`` fetches the keys again at most this often (seconds), so a stream
# of forged tokens cannot make the API hammer the provider.
REFETCH_INTERVAL = 30.0
# After a failed fetch with no keys cached, JWTs are answered 503 for this long before
# the provider is asked again (seconds).
RETRY_AFTER_FAILURE = 5.0
# How long fetching the discovery document or the keys may take (seconds).
FETCH_TIMEOUT = 5.0
# Longer than any real token; refused before any parsing.
MAX_CREDENTIAL_LENGTH = 8192

AuthMethod = Literal["api_key", "bearer"]


@dataclass(frozen=True)
class Principal:
    """The authenticated caller.

    ``subject``: the user id (a token's ``sub``) or ``key:<name>`` for an API key.
    ``operator``: acts on any organization. ``organization_id``: the one organization an
    organization's API key acts on (None otherwise).
    """

    subject: str
    operator: bool
    method: AuthMethod
    organization_id: UUID | None = None

    @property
    def is_user(self) -> bool:
        """A person, whose rights in an organization come from the members read model."""
        return self.method == "bearer" and not self.operator


def unauthenticated(detail: str, *, invalid: bool = True) -> ProblemError:
    """401 with the challenge RFC 6750 asks for; ``detail`` never holds the credential."""
    found = problem(401, detail, kind="unauthenticated")
    challenge = 'Bearer realm="a4c"'
    if invalid:
        challenge += ', error="invalid_token"'
    found.headers["WWW-Authenticate"] = challenge
    return found


INVALID = "the bearer token or API key is not valid"


def api_key_principal(key: str, settings: ApiSettings) -> Principal:
    """The grant ``key`` matches, compared by hash in constant time, each grant checked
    (so the time taken does not say which one matched)."""
    digest = api_key_hash(key)
    matched = None
    for grant in settings.api_keys:
        if hmac.compare_digest(digest, grant.sha256):
            matched = grant
    if matched is None:
        raise unauthenticated(INVALID)
    return Principal(
        subject=f"key:{matched.name}",
        operator=matched.organization_id is None,
        method="api_key",
        organization_id=matched.organization_id,
    )


def holds_role(claims: dict[str, Any], claim: str, role: str) -> bool:
    """``claims[claim]`` (a list of strings, or one space-separated string) holds ``role``."""
    value = claims.get(claim)
    if isinstance(value, str):
        return role in value.split()
    if isinstance(value, list):
        return role in [v for v in value if isinstance(v, str)]
    return False


class IssuerKeys:
    """The OpenID provider's signing keys: discovery document → ``jwks_uri`` → JWKS."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._keys: KeySet | None = None
        self._fetched_at = -REFETCH_INTERVAL
        self._failed_at = -RETRY_AFTER_FAILURE
        self._lock = asyncio.Lock()

    async def _fetch(self) -> KeySet:
        async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as http:
            discovery = await http.get(f"{self.issuer}/.well-known/openid-configuration")
            discovery.raise_for_status()
            document = discovery.json()
            if document.get("issuer", "").rstrip("/") != self.issuer:
                raise ValueError("the discovery document names another issuer")
            jwks = await http.get(str(document["jwks_uri"]))
            jwks.raise_for_status()
            return KeySet.import_key_set(jwks.json())

    async def _refresh(self, *, unless_newer_than: float) -> KeySet:
        async with self._lock:
            # Another request may have fetched while this one waited for the lock.
            if self._keys is not None and self._fetched_at > unless_newer_than:
                return self._keys
            if self._keys is None and time.monotonic() - self._failed_at < RETRY_AFTER_FAILURE:
                raise _unreachable()  # asked a moment ago: do not hammer a provider that is down
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError, KeyError, TypeError, JoseError) as exc:
                log.warning("could not fetch the signing keys of %s: %s", self.issuer, exc)
                self._failed_at = time.monotonic()
                if self._keys is None:
                    raise _unreachable() from None
                self._fetched_at = self._failed_at  # keep the old keys; retry later
                return self._keys
            self._fetched_at = time.monotonic()
            return self._keys

    async def keys(self, kid: str | None) -> KeySet:
        """Keys holding ``kid`` if the provider has it: fetched when stale, and again
        (bounded) when ``kid`` is one the cached set does not hold."""
        now = time.monotonic()
        keys = self._keys
        if keys is None or now - self._fetched_at > JWKS_MAX_AGE:
            keys = await self._refresh(unless_newer_than=now - JWKS_MAX_AGE)
        unknown = kid is not None and not _holds(keys, kid)
        if unknown and time.monotonic() - self._fetched_at >= REFETCH_INTERVAL:
            keys = await self._refresh(unless_newer_than=time.monotonic() - REFETCH_INTERVAL)
        return keys


def _unreachable() -> ProblemError:
    found = problem(503, "the identity provider is not reachable", kind="unavailable")
    found.headers["Retry-After"] = str(int(RETRY_AFTER_FAILURE))
    return found


def _holds(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


class BearerVerifier:
    """Checks JWTs of one issuer for one audience."""

    def __init__(self, settings: ApiSettings) -> None:
        assert settings.oidc_issuer is not None
        self.issuer = settings.oidc_issuer
        self.audience = settings.bearer_audience
        self.roles_claim = settings.api_roles_claim
        self.operator_role = settings.api_operator_role
        self.keys = IssuerKeys(settings.oidc_issuer)

    async def verify(self, token: str) -> Principal:
        if self.audience is None:
            raise unauthenticated(INVALID)
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeError):
            raise unauthenticated(INVALID) from None
        if header.get("alg") not in ALGORITHMS:
            raise unauthenticated(INVALID)
        kid = header.get("kid")
        keys = await self.keys.keys(kid if isinstance(kid, str) else None)
        if isinstance(kid, str) and not _holds(keys, kid):
            raise unauthenticated(INVALID)
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
            jwt.JWTClaimsRegistry(
                leeway=LEEWAY,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError):
            raise unauthenticated(INVALID) from None
        claims = decoded.claims
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject.strip() or len(subject) > 255:
            raise unauthenticated(INVALID)
        return Principal(
            subject=subject,
            operator=holds_role(claims, self.roles_claim, self.operator_role),
            method="bearer",
        )


def _settings(request: Request) -> ApiSettings:
    found = request.app.state.settings
    assert isinstance(found, ApiSettings)
    return found


def verifier_of(request: Request) -> BearerVerifier | None:
    """The app's verifier (made on first use: it holds the fetched keys), None without
    ``OIDC_ISSUER``."""
    state = request.app.state
    found: BearerVerifier | None = getattr(state, "bearer_verifier", None)
    settings = _settings(request)
    if found is None and settings.oidc_enabled:
        found = BearerVerifier(settings)
        state.bearer_verifier = found
    return found


async def _require_live_organization(request: Request, org_id: UUID) -> None:
    """An organization's key stops working once its organization has ended
    (deactivated or offboarded): answered as any key that is not valid."""
    record = await api_app.gateway_of(request).read(lambda rm: rm.organization(org_id))
    if record is not None and is_inactive(record.status):
        raise unauthenticated(INVALID)


# auto_error=False: a missing header is answered as problem+json here, not FastAPI's 403.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="An API key (a4c_…, from `a4c-api new-key`) or a JWT from the OpenID provider.",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """The dependency every ``/v1`` route takes."""
    if credentials is None:
        raise unauthenticated("a bearer token or API key is required", invalid=False)
    credential = credentials.credentials.strip()
    if not credential or len(credential) > MAX_CREDENTIAL_LENGTH:
        raise unauthenticated(INVALID)
    if credential.startswith(API_KEY_PREFIX):
        principal = api_key_principal(credential, _settings(request))
        if principal.organization_id is not None:
            await _require_live_organization(request, principal.organization_id)
        return principal
    verifier = verifier_of(request)
    if verifier is None:
        raise unauthenticated(INVALID)
    return await verifier.verify(credential)
