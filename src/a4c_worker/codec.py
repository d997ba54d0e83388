"""Encrypting every Temporal payload: no address or name in Temporal's database in clear.

Workflow and activity inputs, results, update arguments, queries' answers and failure
details carry invitees' addresses and names; the event store encrypts those fields, and
so does this codec for history. Each payload is serialised whole (metadata included) and
sealed with AES-256-GCM under the *current* key, a fresh 96-bit nonce each time; the key's
id travels in the sealed payload's metadata, so a history outlives a rotation:

- ``TEMPORAL_PAYLOAD_KEYS="k2:<base64>,k1:<base64>"`` — the first key encrypts, every
  listed key decrypts. To rotate, put a new key first and keep the old ones for as long
  as histories sealed with them are kept (the namespace's retention);
- the word ``plain`` first (``plain,k1:<base64>``) seals nothing and opens with the keys
  after it: how a key reaches every process before any process seals with it (a worker
  that cannot open a payload fails the task), when sealing is switched on or a new key is
  introduced;
- a payload without this codec's encoding (histories written before it) passes through
  unchanged, so older histories still decode and replay;
- a payload sealed under a key no longer listed fails with :class:`UnknownPayloadKey`
  naming the key id, never silently.

The key id is also the AES-GCM associated data: a sealed payload relabelled with another
key's id does not open.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

PAYLOAD_KEYS_VARIABLE = "TEMPORAL_PAYLOAD_KEYS"
ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
CIPHER = "encryption-cipher"
CIPHER_NAME = b"AES-256-GCM"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
TAG_BYTES = 16  # AES-GCM's full-length tag, what encrypt appends
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
PLAIN = "plain"
_KEY_ID_RULE = "must be 1 to 64 letters, digits, '.', '_' or '-'"


class PayloadKeysError(ValueError):
    """``TEMPORAL_PAYLOAD_KEYS`` is malformed; the message says how, never a key."""


class UndecryptablePayload(ValueError):
    """A sealed payload could not be opened (tampered, or sealed with another key)."""


class UnknownPayloadKey(UndecryptablePayload):
    """A payload was sealed with a key id that is not configured (any more)."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(
            f"payload sealed with key {key_id!r}, which {PAYLOAD_KEYS_VARIABLE} does not list"
        )


@dataclass(frozen=True)
class PayloadKey:
    id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class PayloadKeys:
    """The configured keys, the current (encrypting) one first; ``repr`` shows ids only."""

    keys: tuple[PayloadKey, ...]
    seals: bool = True  # False: ``plain`` first, payloads are only opened

    def __post_init__(self) -> None:
        if not self.keys:
            raise PayloadKeysError("lists no key")
        ids = [key.id for key in self.keys]
        for key_id in ids:
            if not _KEY_ID_PATTERN.fullmatch(key_id) or key_id == PLAIN:
                raise PayloadKeysError(f"key id {key_id!r} {_KEY_ID_RULE}, and not {PLAIN!r}")
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise PayloadKeysError(f"key id {duplicates[0]!r} is listed twice")

    @property
    def current(self) -> PayloadKey:
        return self.keys[0]

    @property
    def ids(self) -> list[str]:
        """The variable's entries without their keys: ``["k2", "k1"]``, ``["plain", "k1"]``."""
        return ([] if self.seals else [PLAIN]) + [key.id for key in self.keys]

    @classmethod
    def parse(cls, text: str) -> PayloadKeys:
        """``id:base64key,...`` (each key 32 random bytes, standard base64)."""
        keys: list[PayloadKey] = []
        entries = [e.strip() for e in text.split(",")]
        seals = next((e for e in entries if e), None) != PLAIN
        for position, entry in enumerate(entries, start=1):
            if not entry or (entry == PLAIN and not seals and not keys):
                continue
            if entry == PLAIN:
                raise PayloadKeysError(f"entry {position}: {PLAIN!r} may only come first")
            key_id, colon, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not colon or not _KEY_ID_PATTERN.fullmatch(key_id):
                raise PayloadKeysError(
                    f"entry {position} is not 'id:base64key' (the id {_KEY_ID_RULE})"
                )
            try:
                secret = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise PayloadKeysError(f"key {key_id!r} is not base64") from None
            if len(secret) != KEY_BYTES:
                raise PayloadKeysError(
                    f"key {key_id!r} is {len(secret)} bytes; AES-256 needs {KEY_BYTES} "
                    "(make one with: a4c-worker new-payload-key)"
                )
            keys.append(PayloadKey(key_id, secret))
        return cls(tuple(keys), seals=seals)

    @classmethod
    def generate(cls, key_id: str) -> PayloadKeys:
        return cls((PayloadKey(key_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8)),))

    def entry(self) -> str:
        """The current key as one ``id:base64key`` entry of the variable."""
        return f"{self.current.id}:{base64.b64encode(self.current.secret).decode()}"


class EncryptionCodec(PayloadCodec):
    """Seals payloads with the current key; opens those sealed with any configured key and
    passes plain ones (older histories) through."""

    def __init__(self, keys: PayloadKeys) -> None:
        super().__init__()
        self._current = keys.current.id if keys.seals else None
        self._ciphers = {key.id: AESGCM(key.secret) for key in keys.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._current is None:  # ``plain`` first: opening only
            return list(payloads)
        return [self.seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.open(payload) for payload in payloads]

    def seal(self, payload: Payload) -> Payload:
        assert self._current is not None, "sealing needs a current key"
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        sealed = self._ciphers[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id, CIPHER: CIPHER_NAME},
            data=nonce + sealed,
        )

    def open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before the codec (or by a plain client): as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise UnknownPayloadKey(key_id)
        refusal = UndecryptablePayload(
            f"payload sealed with key {key_id!r} does not open: altered, or that id "
            f"names another key in {PAYLOAD_KEYS_VARIABLE}"
        )
        # Shorter than nonce and tag, AES-GCM raises ValueError rather than InvalidTag.
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise refusal
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise refusal from None
        return Payload.FromString(plain)


__all__ = [
    "ENCODING",
    "PAYLOAD_KEYS_VARIABLE",
    "EncryptionCodec",
    "PayloadKey",
    "PayloadKeys",
    "PayloadKeysError",
    "UndecryptablePayload",
    "UnknownPayloadKey",
]
