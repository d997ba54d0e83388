"""Signing a delivery the Standard Webhooks way (https://www.standardwebhooks.com).

Each endpoint has a symmetric secret, ``whsec_`` and the base64 of 32 random bytes. A
delivery carries ``webhook-id`` (the event id: receivers deduplicate by it),
``webhook-timestamp`` (Unix seconds: receivers refuse old ones, against replays) and
``webhook-signature``, the HMAC-SHA256 of ``<id>.<timestamp>.<body>`` as ``v1,<base64>``.

While a secret is rotated the endpoint has two; the header then carries one signature
per secret, space-separated, the current one first, so a receiver still holding the old
secret and one already holding the new one both verify. The signatures are made by the
``standardwebhooks`` package, the receivers' own library, not by hand: what a receiver
verifies is by construction what was signed.
"""

from __future__ import annotations

import base64
import secrets as random_bytes
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix
SECRET_BYTES = 32
CONTENT_TYPE = "application/json"


def _user_agent() -> str:
    try:
        return f"a4c-webhooks/{version('a4c')}"
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "a4c-webhooks"


USER_AGENT = _user_agent()


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random_bytes.token_bytes(SECRET_BYTES)).decode()


def signature_header(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,<base64>`` per secret, current first.

    ``secrets`` holds the current secret and, during a rotation's overlap, the previous
    one. ``body`` is signed byte for byte, exactly as it is sent.
    """
    if not secrets:
        raise ValueError("a delivery needs at least one secret to be signed with")
    when = datetime.fromtimestamp(timestamp, tz=UTC)
    return " ".join(Webhook(secret).sign(msg_id, when, body) for secret in secrets)


def delivery_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every header a delivery is sent with: the three signed ones, its type, who sends."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
        "content-type": CONTENT_TYPE,
        "user-agent": USER_AGENT,
    }


__all__ = [
    "CONTENT_TYPE",
    "SECRET_PREFIX",
    "USER_AGENT",
    "delivery_headers",
    "new_secret",
    "signature_header",
]
