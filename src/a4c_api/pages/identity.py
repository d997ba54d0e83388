"""Who the invitee is: whoever the platform's sign-in says. a4c stores no passwords.

The session (a signed, HTTP-only, SameSite=Lax cookie set up by :mod:`a4c_api.app`)
holds the signed-in person as ``{sub, email, method}`` and nothing more: ``sub`` is the
user id an accepted invitation records, ``email`` the verified address, normalised the
way the domain normalises the invited address, so the two compare equal exactly when
they name the same mailbox.

Two ways to sign in:

* ``oidc``: OpenID Connect, authorization code flow with PKCE (S256), as a relying party
  built on Authlib's Starlette client. Authlib checks ``state`` (bound to this session)
  and the ID token: its signature against the issuer's JWKS, issuer, audience, expiry
  and ``nonce``. This module then requires a verified e-mail; the subject becomes the
  user id (prefixed by nothing: it is the platform's own identifier).
* ``dev``: development only (``API_DEV_SIGN_IN``, refused in production by the
  settings and answered 404 by the routes): anyone may claim any address; the user id
  is derived from the address, so the same person gets the same id each time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request

from a4c_api.settings import ApiSettings
from a4c_domain.commands import Email

SignInMethod = Literal["oidc", "dev"]

SESSION_KEY = "identity"
# Derives dev user ids; fixed, so an id survives restarts (and matches across machines).
DEV_NAMESPACE = uuid.UUID("8a7c4f0e-3b6d-5e21-9c4a-a4c0de7e5701")
DEV_PREFIX = "dev:"
# The registry name of the provider in Authlib (and the prefix of its session keys).
OIDC_NAME = "a4c"
DISCOVERY_PATH = "/.well-known/openid-configuration"

_EMAIL: TypeAdapter[str] = TypeAdapter(Email)


class IdentityError(Exception):
    """The sign-in did not establish who this is; the message is shown to the person."""


def normalised_email(address: str) -> str | None:
    """``address`` as the domain stores invited addresses; None if it is no address."""
    try:
        return _EMAIL.validate_python(address)
    except ValidationError:
        return None


@dataclass(frozen=True)
class Identity:
    sub: str
    email: str
    method: SignInMethod

    def to_session(self) -> dict[str, str]:
        return {"sub": self.sub, "email": self.email, "method": self.method}

    @classmethod
    def from_session(cls, value: Any) -> Identity | None:
        if not isinstance(value, dict):
            return None
        sub, email, method = value.get("sub"), value.get("email"), value.get("method")
        if not (isinstance(sub, str) and isinstance(email, str) and method in ("oidc", "dev")):
            return None
        return cls(sub=sub, email=email, method=method)

    def is_invited(self, invited: str) -> bool:
        """Whether this person is the invited address (both normalised by the domain)."""
        return self.email == normalised_email(invited)


def current(request: Request) -> Identity | None:
    return Identity.from_session(request.session.get(SESSION_KEY))


def sign_in(request: Request, identity: Identity) -> None:
    request.session[SESSION_KEY] = identity.to_session()


def sign_out(request: Request) -> None:
    request.session.pop(SESSION_KEY, None)


def dev_identity(address: str) -> Identity:
    """The development identity of ``address`` (as typed: surrounding blanks ignored);
    :class:`IdentityError` if it is none."""
    email = normalised_email(address.strip())
    if email is None:
        raise IdentityError("Enter an e-mail address such as name@example.com.")
    sub = DEV_PREFIX + str(uuid.uuid5(DEV_NAMESPACE, email))
    return Identity(sub=sub, email=email, method="dev")


def oidc_identity(claims: Any) -> Identity:
    """The identity in the verified ID token's (or userinfo's) ``claims``."""
    if not isinstance(claims, dict):
        raise IdentityError("The sign-in service did not say who you are.")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise IdentityError("The sign-in service did not say who you are.")
    address = claims.get("email")
    email = normalised_email(address) if isinstance(address, str) else None
    if email is None:
        raise IdentityError("The sign-in service did not share your e-mail address.")
    if claims.get("email_verified") is not True:
        raise IdentityError(
            "The sign-in service has not verified your e-mail address. "
            "Verify it there, then sign in again."
        )
    return Identity(sub=sub, email=email, method="oidc")


def oidc_client(request: Request, settings: ApiSettings) -> Any:
    """The app's OpenID Connect client (Authlib's Starlette app), made on first use.

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
        )
        request.app.state.oidc_client = found
    return found
