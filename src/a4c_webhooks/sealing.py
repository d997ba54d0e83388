"""Endpoint secrets at rest: :mod:`a4c_worker.sealing` (moved below the worker, whose SSO
activities open organizations' client secrets sealed the same way)."""

from a4c_worker.sealing import (
    SECRET_KEYS_VARIABLE,
    SealedSecretError,
    SecretKeys,
    SecretKeysError,
    UnknownSecretKey,
)

__all__ = [
    "SECRET_KEYS_VARIABLE",
    "SealedSecretError",
    "SecretKeys",
    "SecretKeysError",
    "UnknownSecretKey",
]
