"""Endpoint secrets at rest: sealed under WEBHOOK_SECRET_KEYS, rotated, never leaked."""

from __future__ import annotations

import base64
import os

import pytest

from a4c_webhooks.sealing import (
    SealedSecretError,
    SecretKeys,
    SecretKeysError,
    UnknownSecretKey,
)
from a4c_webhooks.signing import new_secret


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


K1, K2 = key(), key()


def test_a_sealed_secret_opens_and_holds_no_clear_text() -> None:
    keys = SecretKeys.parse(f"k1:{K1}")
    secret = new_secret()
    sealed = keys.seal(secret)

    assert sealed.startswith("k1:")
    assert secret not in sealed
    assert secret.removeprefix("whsec_") not in sealed
    assert keys.open(sealed) == secret
    assert keys.seal(secret) != sealed  # a fresh nonce each time


def test_after_a_rotation_old_secrets_still_open_and_new_ones_use_the_new_key() -> None:
    secret = new_secret()
    old = SecretKeys.parse(f"k1:{K1}").seal(secret)
    rotated = SecretKeys.parse(f"k2:{K2},k1:{K1}")

    assert rotated.open(old) == secret
    assert rotated.seal(secret).startswith("k2:")
    # Rolled out second first: every process can open with k2 before any seals with it.
    staged = SecretKeys.parse(f"k1:{K1},k2:{K2}")
    assert staged.seal(secret).startswith("k1:")
    assert staged.open(rotated.seal(secret)) == secret


def test_a_secret_sealed_with_a_dropped_key_names_the_key() -> None:
    sealed = SecretKeys.parse(f"k1:{K1}").seal(new_secret())
    with pytest.raises(UnknownSecretKey, match="'k1'") as refused:
        SecretKeys.parse(f"k2:{K2}").open(sealed)
    assert refused.value.key_id == "k1"


def test_altered_or_relabelled_sealed_secrets_do_not_open() -> None:
    keys = SecretKeys.parse(f"k2:{K2},k1:{K1}")
    secret = new_secret()
    sealed = keys.seal(secret)
    key_id, _, data = sealed.partition(":")
    raw = bytearray(base64.b64decode(data))
    raw[-1] ^= 1
    altered = f"{key_id}:{base64.b64encode(bytes(raw)).decode()}"
    relabelled = f"k1:{data}"  # the key id is the associated data
    for bad in (altered, relabelled, "k2:", "k2:not base64!", "k2:AAAA", "whsec_abc", secret):
        with pytest.raises(SealedSecretError) as refused:
            keys.open(bad)
        assert secret not in str(refused.value)
        assert data not in str(refused.value)


def test_repr_and_errors_show_key_ids_never_keys() -> None:
    keys = SecretKeys.parse(f"k2:{K2},k1:{K1}")
    assert repr(keys) == "SecretKeys(ids=['k2', 'k1'])"
    assert K1 not in repr(keys) and K2 not in repr(keys)
    assert keys.ids == ["k2", "k1"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "lists no key"),
        ("k1", "not 'id:base64key'"),
        ("k1:%%%", "not base64"),
        (f"k1:{base64.b64encode(b'short').decode()}", "5 bytes"),
        (f"k1:{K1},k1:{K2}", "listed twice"),
        (f"plain,k1:{K1}", "always sealed"),
    ],
)
def test_malformed_keys_are_refused_without_showing_a_key(text: str, says: str) -> None:
    with pytest.raises(SecretKeysError, match=says) as refused:
        SecretKeys.parse(text)
    assert "WEBHOOK_SECRET_KEYS" in str(refused.value)
    assert K1 not in str(refused.value) and K2 not in str(refused.value)


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET_KEYS", raising=False)
    with pytest.raises(SecretKeysError, match="not set"):
        SecretKeys.from_environment()
    monkeypatch.setenv("WEBHOOK_SECRET_KEYS", f"k1:{K1}")
    assert SecretKeys.from_environment().ids == ["k1"]
