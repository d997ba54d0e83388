"""The session cookie, sealed: nobody holding it can read it, and it opens only in its mode.

Starlette's ``SessionMiddleware`` signs its cookie, so whoever holds one reads it (the
invitation token, who is signed in). :class:`SealedSessionMiddleware` is that middleware
with its signer replaced by Fernet (``cryptography``: AES-CBC with HMAC-SHA256 over a
timestamp), so the cookie is encrypted and authenticated, and one older than ``max_age``
does not open. The key is derived from ``API_SESSION_SECRET`` by HKDF with the mode as
context: a cookie a development instance made never opens in production, even where the
two share the secret.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous.exc import BadSignature
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp

from a4c_api.settings import ApiMode

_CONTEXT = b"a4c-api session cookie, mode "
_FERNET_KEY_BYTES = 32  # Fernet's key: 16 bytes to authenticate, 16 to encrypt
# A Fernet token: version (1), timestamp (8), IV (16), the AES-CBC blocks, HMAC (32).
_FERNET_OVERHEAD = 1 + 8 + 16 + 32
_AES_BLOCK = 16
# The longest sealed session the app sets: a browser keeps a cookie of up to 4096 bytes
# (name and value, RFC 6265 §6.1) and drops a longer one, and with it the session; the
# rest leaves room for the cookie's name and for what a request adds after signing in.
SESSION_COOKIE_BUDGET = 3800


def session_key(secret: bytes, mode: ApiMode) -> bytes:
    """The cookie key of ``mode``: HKDF-SHA256 of the secret, the mode as context."""
    info = _CONTEXT + mode.encode()
    return HKDF(algorithm=SHA256(), length=_FERNET_KEY_BYTES, salt=None, info=info).derive(secret)


def sealed_length(session: Mapping[str, Any]) -> int:
    """The length of the cookie value :class:`SealedSessionMiddleware` sets for ``session``
    (the JSON Starlette makes of it, in a Fernet token, URL-safe base64 with padding)."""
    plain = len(json.dumps(dict(session)).encode("utf-8"))
    raw = _FERNET_OVERHEAD + (plain // _AES_BLOCK + 1) * _AES_BLOCK  # PKCS7 pads always
    return 4 * -(-raw // 3)


class _Sealer:
    """What ``SessionMiddleware`` calls its signer (``sign``/``unsign`` of the base64 of
    the session's JSON): here it encrypts and decrypts instead."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def sign(self, value: bytes) -> bytes:
        return self._fernet.encrypt(base64.b64decode(value))

    def unsign(self, value: bytes, max_age: int | None = None) -> bytes:
        try:
            return base64.b64encode(self._fernet.decrypt(value, ttl=max_age))
        except InvalidToken:  # another key (mode, secret), tampered with, or too old
            raise BadSignature("the session cookie does not open") from None


class SealedSessionMiddleware(SessionMiddleware):
    """Starlette's session middleware (same cookie flags and lifetime) with a sealed cookie."""

    def __init__(self, app: ASGIApp, /, *, secret: bytes, mode: ApiMode, **options: Any) -> None:
        # The base class's signing key goes unused (random): its signer is replaced below.
        super().__init__(app, secret_key=secrets.token_urlsafe(32), **options)
        self.signer = _Sealer(session_key(secret, mode))  # type: ignore[assignment]
