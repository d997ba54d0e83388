"""One delivery attempt: sign the stored body, post it, say what came of it.

The body is the event's public JSON exactly as the projector stored it, sent byte for
byte and signed so (Standard Webhooks: ``webhook-id`` is the event id, so a receiver
deduplicates a redelivery). The endpoint's secrets are opened here, for this request
only: the current one, and the previous one while its rotation overlap lasts.

What came of it is an :class:`Outcome`; what to do next (retry when, park, disable) is
the daemon's (:mod:`a4c_webhooks.daemon`). No outcome holds a secret, a header or the
URL's path or query: its ``error`` is safe to store and log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from a4c_outbound.transport import DeliveryFailed, DestinationRefused, Outbound
from a4c_webhooks.schedule import parse_retry_after
from a4c_webhooks.sealing import SealedSecretError, SecretKeys
from a4c_webhooks.signing import delivery_headers
from a4c_webhooks.store import Due

# The outcomes as the deliveries metric labels them: a fixed set.
OutcomeKind = Literal["delivered", "http_error", "network_error", "refused", "gone", "unsigned"]
OUTCOMES: tuple[OutcomeKind, ...] = (
    "delivered",
    "http_error",
    "network_error",
    "refused",
    "gone",
    "unsigned",
)
GONE = 410  # the receiver says the endpoint is gone for good: disable it
HONOURS_RETRY_AFTER = frozenset({429, 503})


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    status: int | None  # the HTTP status, when one came
    error: str  # empty when delivered; never a secret, header or URL path
    retry_after: float | None = None  # seconds the receiver asked to wait (429, 503)

    @property
    def delivered(self) -> bool:
        return self.kind == "delivered"


def signing_secrets(head: Due, keys: SecretKeys, now: datetime) -> list[str]:
    """The endpoint's secrets, opened: the current first, then the previous one while
    its overlap lasts. :class:`SealedSecretError` if one does not open."""
    secrets = [keys.open(head.secret)]
    expires = head.previous_secret_expires_at
    if head.previous_secret is not None and expires is not None and expires > now:
        secrets.append(keys.open(head.previous_secret))
    return secrets


async def attempt(head: Due, outbound: Outbound, keys: SecretKeys) -> Outcome:
    """Send ``head`` once."""
    now = datetime.now(UTC)
    try:
        secrets = signing_secrets(head, keys, now)
    except SealedSecretError as error:
        return Outcome("unsigned", None, f"not sent: the endpoint's secret: {error}")
    body = head.body.encode()
    headers = delivery_headers(secrets, str(head.event_id), int(time.time()), body)
    try:
        response = await outbound.post(head.url, headers, body)
    except DestinationRefused as error:
        return Outcome("refused", None, error.reason)
    except DeliveryFailed as error:
        return Outcome("network_error", None, error.reason)
    status = response.status
    if 200 <= status < 300:
        return Outcome("delivered", status, "")
    retry_after = None
    if status in HONOURS_RETRY_AFTER:
        retry_after = parse_retry_after(response.retry_after, datetime.now(UTC))
    kind: OutcomeKind = "gone" if status == GONE else "http_error"
    return Outcome(kind, status, f"HTTP {status}", retry_after)


__all__ = ["GONE", "OUTCOMES", "Outcome", "OutcomeKind", "attempt", "signing_secrets"]
