"""Who the invitee is: whoever the platform's sign-in says. a4c stores no passwords.

The session holds the signed-in person (:class:`Identity`: ``sub``, the verified
``email`` normalised as the domain normalises invited addresses, and the ``method``); a
person signed in by a method this instance does not allow is nobody (:func:`current`).
Three methods: ``oidc`` (OpenID Connect with PKCE, on Authlib; a verified address from the
ID token or UserInfo), ``sso`` (an organization's own provider, verified by the worker
while it accepted an invitation: :mod:`a4c_api.pages.sso_accept`) and ``dev``
(development only: any address, claimed). How and why: docs/design/pages.md.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import quote_plus, urlencode

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request

from a4c_api import context as api
from a4c_api.sessions import SESSION_COOKIE_BUDGET, sealed_length
from a4c_api.settings import ApiSettings
from a4c_domain.commands import Email
from a4c_domain.identity import SignInIdentity

SignInMethod = Literal["oidc", "dev", "sso"]

SIGN_IN_METHODS: tuple[SignInMethod, ...] = get_args(SignInMethod)
SESSION_KEY = "identity"
# The ID token of an OpenID sign-in, kept as the logout's ``id_token_hint`` only while the
# sealed session stays within SESSION_COOKIE_BUDGET (a browser drops a cookie past 4 KiB,
# and the session with it; the logout then names the client alone).
ID_TOKEN_SESSION_KEY = "oidc_id_token"  # noqa: S105 - a key's name, not a secret
# Set by signing out where the provider offers no logout: the next sign-in asks it to let
# the person choose an account.
SELECT_ACCOUNT_SESSION_KEY = "oidc_select_account"
SELECT_ACCOUNT = "select_account"
# Derives dev user ids; fixed, so an id survives restarts (and matches across machines).
DEV_NAMESPACE = uuid.UUID("8a7c4f0e-3b6d-5e21-9c4a-a4c0de7e5701")
DEV_PREFIX = "dev:"
# The registry name of the provider in Authlib (and the prefix of its session keys).
OIDC_NAME = "a4c"
DISCOVERY_PATH = "/.well-known/openid-configuration"
# OpenID Connect Discovery §3: a provider that lists no method takes client_secret_basic.
DEFAULT_AUTH_METHODS = ("client_secret_basic",)

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


class IdentityError(Exception):
    """The sign-in did not establish who this is; the message is shown to the person,
    ``reason`` (the message unless given) is logged: words, never a person's data."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class ProviderError(Exception):
    """The OpenID provider cannot be used as configured (its discovery says why)."""


def normalised_email(address: str) -> str | None:
    """``address`` as the domain stores invited addresses; None if it is no address."""
    try:
        return _EMAIL.validate_python(address)
    except ValidationError:
        return None


@dataclass(frozen=True)
class Identity:
    """``sub``: the user id a4c knows the person by; for ``sso``, also the organization's
    provider (``issuer``) and the ``subject`` there."""

    sub: str
    email: str
    method: SignInMethod
    issuer: str | None = None
    subject: str | None = None

    def to_session(self) -> dict[str, str]:
        kept = {"sub": self.sub, "email": self.email, "method": self.method}
        if self.issuer is not None and self.subject is not None:
            kept |= {"issuer": self.issuer, "subject": self.subject}
        return kept

    @classmethod
    def from_session(cls, value: Any) -> Identity | None:
        if not isinstance(value, dict):
            return None
        sub, email, method = value.get("sub"), value.get("email"), value.get("method")
        if not (isinstance(sub, str) and isinstance(email, str) and method in SIGN_IN_METHODS):
            return None
        issuer, subject = value.get("issuer"), value.get("subject")
        if method == "sso":
            if not (isinstance(issuer, str) and isinstance(subject, str)):
                return None
            return cls(sub=sub, email=email, method=method, issuer=issuer, subject=subject)
        return cls(sub=sub, email=email, method=method)

    def sign_in_identity(self, settings: ApiSettings) -> SignInIdentity:
        """Who this is, as the domain checks an acceptance: the provider that said so
        (None for the dev sign-in), the subject there, the address."""
        if self.method == "sso":
            assert self.issuer is not None and self.subject is not None
            return SignInIdentity(issuer=self.issuer, subject=self.subject, email=self.email)
        issuer = settings.oidc_issuer if self.method == "oidc" else None
        return SignInIdentity(issuer=issuer, subject=self.sub, email=self.email)

    def is_invited(self, invited: str) -> bool:
        """Whether this person is the invited address (both normalised by the domain)."""
        return self.email == normalised_email(invited)


def allowed_methods(settings: ApiSettings) -> frozenset[SignInMethod]:
    """The ways of signing in this instance honours (an organization's own provider
    always: its organization configured it)."""
    allowed: set[SignInMethod] = {"sso"}
    if settings.dev_sign_in:
        allowed.add("dev")
    if settings.oidc_enabled:
        allowed.add("oidc")
    return frozenset(allowed)


def current(request: Request) -> Identity | None:
    """Who is signed in: nobody unless by a method this instance allows."""
    person = Identity.from_session(request.session.get(SESSION_KEY))
    if person is None or person.method not in allowed_methods(api.settings_of(request)):
        return None
    return person


def sign_in(request: Request, identity: Identity, id_token: str | None = None) -> None:
    request.session[SESSION_KEY] = identity.to_session()
    request.session.pop(ID_TOKEN_SESSION_KEY, None)
    if id_token is None:
        return
    with_hint = {**request.session, ID_TOKEN_SESSION_KEY: id_token}
    if sealed_length(with_hint) <= SESSION_COOKIE_BUDGET:
        request.session[ID_TOKEN_SESSION_KEY] = id_token


def sign_out(request: Request) -> str | None:
    """Forget who is signed in; the ID token of an OpenID sign-in, if there was one."""
    request.session.pop(SESSION_KEY, None)
    id_token = request.session.pop(ID_TOKEN_SESSION_KEY, None)
    return id_token if isinstance(id_token, str) else None


def dev_identity(address: str) -> Identity:
    """The development identity of ``address`` (as typed: surrounding blanks ignored);
    :class:`IdentityError` if it is none."""
    email = normalised_email(address.strip())
    if email is None:
        raise IdentityError("Enter an e-mail address such as name@example.com.")
    sub = DEV_PREFIX + str(uuid.uuid5(DEV_NAMESPACE, email))
    return Identity(sub=sub, email=email, method="dev")


_WHO = "The sign-in service did not say who you are."


def oidc_identity(claims: Any) -> Identity:
    """The identity in the verified ID token's (or userinfo's) ``claims``."""
    if not isinstance(claims, dict):
        raise IdentityError(_WHO, "no claims")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise IdentityError(_WHO, "no subject in the ID token")
    address = claims.get("email")
    email = normalised_email(address) if isinstance(address, str) else None
    if email is None:
        raise IdentityError(
            "The sign-in service did not share your e-mail address.",
            "no e-mail address in the ID token or UserInfo"
            if address is None
            else "the e-mail claim is not an address",
        )
    if claims.get("email_verified") is not True:
        raise IdentityError(
            "The sign-in service has not verified your e-mail address. "
            "Verify it there, then sign in again.",
            "the e-mail address is not verified (email_verified is not true)",
        )
    return Identity(sub=sub, email=email, method="oidc")


def with_userinfo(id_claims: dict[str, Any], userinfo: Any) -> dict[str, Any]:
    """The ID token's claims, the address and its verification taken from ``userinfo``
    (OpenID Connect Core §5.3.4: only if it is about the token's subject)."""
    if not isinstance(userinfo, dict) or userinfo.get("sub") != id_claims.get("sub"):
        raise IdentityError(_WHO, "UserInfo names another subject than the ID token")
    verified = userinfo.get("email_verified")
    # Some providers' UserInfo says it as a string; the ID token's claim stays a boolean.
    if isinstance(verified, str) and verified.lower() == "true":
        verified = True
    return {**id_claims, "email": userinfo.get("email"), "email_verified": verified}


def _client_secret_basic(
    auth: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    """HTTP Basic as RFC 6749 §2.3.1 says: id and secret form-encoded first."""
    credentials = f"{quote_plus(auth.client_id)}:{quote_plus(auth.client_secret)}"
    headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    return uri, headers, body


def token_endpoint_auth_method(metadata: dict[str, Any]) -> str:
    """``client_secret_post`` where the provider offers it, else ``client_secret_basic``."""
    offered = metadata.get("token_endpoint_auth_methods_supported") or DEFAULT_AUTH_METHODS
    for method in ("client_secret_post", "client_secret_basic"):
        if method in offered:
            return method
    raise ProviderError(
        "the provider offers neither client_secret_post nor client_secret_basic "
        f"(token_endpoint_auth_methods_supported: {list(offered)})"
    )


async def oidc_client(request: Request, settings: ApiSettings) -> Any:
    """The app's OpenID Connect client (Authlib's Starlette app), made on first use, its
    token endpoint authentication chosen from the provider's discovery.

    Made lazily so nothing is fetched at start: the provider's metadata (discovery) and
    keys are fetched, and cached by Authlib, when the first person signs in.
    """
    found = getattr(request.app.state, "oidc_client", None)
    if found is None:
        from authlib.integrations.starlette_client import OAuth

        assert settings.oidc_issuer is not None and settings.oidc_client_secret is not None
        found = OAuth().register(
            name=OIDC_NAME,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret.get_secret_value(),
            server_metadata_url=settings.oidc_issuer + DISCOVERY_PATH,
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256"},
            client_auth_methods=[("client_secret_basic", _client_secret_basic)],
        )
        request.app.state.oidc_client = found
    if "token_endpoint_auth_method" not in found.client_kwargs:
        metadata = await found.load_server_metadata()
        found.client_kwargs["token_endpoint_auth_method"] = token_endpoint_auth_method(metadata)
    return found


async def oidc_sign_in(request: Request, client: Any) -> tuple[Identity, str]:
    """Back from the provider: the person and their ID token (the logout's hint).

    Authlib checks ``state``, exchanges the code and checks the ID token against the
    ``nonce``; an answer without an ID token is refused, not trusted."""
    token = await client.authorize_access_token(request)
    id_token, claims = token.get("id_token"), token.get("userinfo")
    if claims is None or not isinstance(id_token, str):
        raise IdentityError(_WHO, "the token response holds no ID token")
    claims = dict(claims)
    if "email" not in claims or "email_verified" not in claims:
        claims = with_userinfo(claims, dict(await client.userinfo(token=token)))
    return oidc_identity(claims), id_token


async def logout_url(client: Any, id_token: str | None, come_back_to: str) -> str | None:
    """The provider's RP-initiated logout for this sign-in, or None where it offers none."""
    metadata = await client.load_server_metadata()
    endpoint = metadata.get("end_session_endpoint")
    if not isinstance(endpoint, str) or not endpoint:
        return None
    params = {"client_id": client.client_id, "post_logout_redirect_uri": come_back_to}
    if id_token is not None:
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"
