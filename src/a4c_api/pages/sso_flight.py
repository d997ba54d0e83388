"""A sign-in through an organization's own provider, in flight: the authorization request
(the code flow with ``state``, ``nonce`` and PKCE ``S256``) and what the callback needs
back, kept in the sealed session cookie the pages already use.

Two pages start one: an admin's test of a pending configuration (:mod:`.sso_test`) and
an invitee's acceptance through the configuration in force (:mod:`.sso_accept`). Both
come back to ``SSO_CALLBACK_PATH`` (one redirect URI to register at the provider),
which tells them apart by the session entry whose ``state`` the provider returned.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from a4c_api import context as api
from a4c_api.pages.paths import SSO_CALLBACK_PATH
from a4c_worker.contracts import SignInCode

SCOPES = "openid email profile"
# The PKCE verifier's length: RFC 7636 allows 43-128 characters.
_VERIFIER_BYTES = 48


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def start(
    request: Request,
    session_key: str,
    *,
    authorization_endpoint: str,
    client_id: str,
    keep: dict[str, Any],
) -> str:
    """Keep a new flight (with ``keep``) under ``session_key``; the provider's URL to send
    the browser to."""
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(_VERIFIER_BYTES)
    redirect_uri = api.settings_of(request).api_public_url + SSO_CALLBACK_PATH
    request.session[session_key] = {
        **keep,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
    }
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": _challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in authorization_endpoint else "?"
    return authorization_endpoint + separator + query


def take(request: Request, session_key: str, state: str | None) -> dict[str, Any] | None:
    """The flight under ``session_key`` if the provider returned its ``state`` (it is
    spent either way: a callback is good once)."""
    if state is None or not isinstance(request.session.get(session_key), dict):
        return None
    if request.session[session_key].get("state") != state:
        return None
    flight: dict[str, Any] = request.session.pop(session_key)
    return flight


def sign_in_code(flight: dict[str, Any], code: str) -> SignInCode:
    """What the worker exchanges: the provider's code and the flight's PKCE verifier,
    redirect URI and nonce."""
    return SignInCode(
        code=code[:2048],
        code_verifier=str(flight["verifier"]),
        redirect_uri=str(flight["redirect_uri"]),
        nonce=str(flight["nonce"]),
    )
