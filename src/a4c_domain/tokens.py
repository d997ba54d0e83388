"""Invitation tokens: derived, never stored.

A token is HMAC-SHA256(secret key, invitation ID ‖ token generation): 256 bits, URL-safe.
Because it can be recomputed from the key and two public values, nothing (no event, no
workflow history, no activity result) ever has to carry it; only its SHA-256 hash is
stored, and presented tokens are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

from a4c_domain.errors import ConfigurationError

# The environment variable holding the key (entry points read it; see OnboardingApplication).
TOKEN_SECRET_VAR = "A4C_TOKEN_SECRET"  # noqa: S105 - the variable's name, not a secret
MIN_SECRET_BYTES = 32


class TokenIssuer:
    """Derives invitation tokens from a secret key. Holds the key; never prints it."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes | str) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"{TOKEN_SECRET_VAR} must be at least {MIN_SECRET_BYTES} bytes long"
            )
        self._key = key

    def __repr__(self) -> str:
        return "TokenIssuer(secret=**********)"

    def token(self, invitation_id: UUID, token_generation: int) -> str:
        digest = hmac.new(
            self._key, f"{invitation_id}|{token_generation}".encode(), hashlib.sha256
        ).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def token_hash(self, invitation_id: UUID, token_generation: int) -> str:
        return hash_token(self.token(invitation_id, token_generation))


def hash_token(token: str) -> str:
    """The stored form of a token (hex SHA-256); also what read models index on."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    """Constant-time comparison of a presented token against a stored hash."""
    return hmac.compare_digest(hash_token(token), token_hash)
