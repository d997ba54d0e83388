"""Secrets at rest: sealed with AES-256-GCM, never stored in clear.

Webhook endpoints' signing secrets (``WEBHOOK_SECRET_KEYS``, this module's first use,
also importable as ``a4c_webhooks.sealing``) and organizations' SSO client secrets
(``SSO_SECRET_KEYS``: the API seals, the worker opens to exchange a sign-in's code; the
worker may not import ``a4c_webhooks``, hence the module's place) use the same format.

The daemon needs each endpoint's signing secret itself (HMAC is symmetric), so the
database keeps it sealed under a key it does not hold:

- ``WEBHOOK_SECRET_KEYS="k2:<base64>,k1:<base64>"`` — the first key seals, every listed
  key opens (the same format, and parser, as ``TEMPORAL_PAYLOAD_KEYS``: see
  :class:`a4c_worker.codec.PayloadKeys`). To rotate, first list the new key *after* the
  current one everywhere (every process can then open with it), then move it first; keep
  the old key until every secret sealed with it has been re-sealed or deleted;
- the word ``plain`` is refused: a webhook secret is never stored in clear;
- a sealed secret is text, ``<key id>:<base64 of nonce and ciphertext>``, a fresh 96-bit
  nonce each time; the key id is also the AES-GCM associated data, so a sealed secret
  relabelled with another key's id does not open.

Errors (:class:`SealedSecretError`) name a key id at most, never a key, a secret or the
sealed text.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from a4c_worker.codec import PLAIN, PayloadKeys, PayloadKeysError

SECRET_KEYS_VARIABLE = "WEBHOOK_SECRET_KEYS"  # noqa: S105 - the variable's name
NONCE_BYTES = 12
TAG_BYTES = 16
# What PayloadKeys accepts as a key id; anything else before the colon is not one.
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class SecretKeysError(ValueError):
    """``WEBHOOK_SECRET_KEYS`` is malformed; the message says how, never a key."""


class SealedSecretError(ValueError):
    """A sealed secret does not open: malformed, altered, or sealed with another key."""


class UnknownSecretKey(SealedSecretError):
    """A secret was sealed with a key id that is not configured (any more)."""

    def __init__(self, key_id: str, variable: str = SECRET_KEYS_VARIABLE) -> None:
        self.key_id = key_id
        super().__init__(f"secret sealed with key {key_id!r}, which {variable} does not list")


class SecretKeys:
    """The key ring: seals with the first key, opens with any; ``repr`` shows ids only."""

    def __init__(self, keys: PayloadKeys, variable: str = SECRET_KEYS_VARIABLE) -> None:
        if not keys.seals:
            raise SecretKeysError(
                f"{variable} may not start with {PLAIN!r}: these secrets are always sealed"
            )
        self._variable = variable  # what errors name: the setting the ring came from
        self._current = keys.current.id
        self._ciphers = {key.id: AESGCM(key.secret) for key in keys.keys}

    @classmethod
    def parse(cls, text: str, variable: str = SECRET_KEYS_VARIABLE) -> SecretKeys:
        """``id:base64key,...``, each key 32 random bytes in standard base64."""
        try:
            keys = PayloadKeys.parse(text)
        except PayloadKeysError as error:
            raise SecretKeysError(f"{variable}: {error}") from None
        return cls(keys, variable)

    @classmethod
    def from_environment(cls) -> SecretKeys:
        text = os.environ.get(SECRET_KEYS_VARIABLE, "")
        if not text.strip():
            raise SecretKeysError(f"{SECRET_KEYS_VARIABLE} is not set")
        return cls.parse(text)

    @property
    def ids(self) -> list[str]:
        """The configured key ids, the sealing one first."""
        return list(self._ciphers)

    def __repr__(self) -> str:
        return f"SecretKeys(ids={self.ids!r})"

    def seal(self, secret: str) -> str:
        """``secret`` sealed under the current key, as ``<key id>:<base64>``."""
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current
        sealed = self._ciphers[key_id].encrypt(nonce, secret.encode(), key_id.encode())
        return f"{key_id}:{base64.b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str) -> str:
        """The secret ``sealed`` holds; :class:`SealedSecretError` if it does not open."""
        key_id, colon, encoded = sealed.partition(":")
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise SealedSecretError("sealed secret is not '<key id>:<base64>'")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownSecretKey(key_id, self._variable)
        refusal = SealedSecretError(
            f"secret sealed with key {key_id!r} does not open: altered, or that id names "
            f"another key in {self._variable}"
        )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise refusal from None
        # Shorter than nonce and tag, AES-GCM raises ValueError rather than InvalidTag.
        if len(data) < NONCE_BYTES + TAG_BYTES:
            raise refusal
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
            return plain.decode()
        except (InvalidTag, UnicodeDecodeError):
            raise refusal from None


__all__ = [
    "SECRET_KEYS_VARIABLE",
    "SealedSecretError",
    "SecretKeys",
    "SecretKeysError",
    "UnknownSecretKey",
]
