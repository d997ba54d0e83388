"""Deliveries are signed so that the receivers' own library verifies them, rotation too.

The receiver's side is the ``standardwebhooks`` package itself (``Webhook.verify``), so
these tests check the signatures as a Standard Webhooks receiver does.
"""

from __future__ import annotations

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from a4c_webhooks.signing import (
    SECRET_PREFIX,
    USER_AGENT,
    delivery_headers,
    new_secret,
    signature_header,
)

BODY = b'{"type":"organization.bootstrapped","data":{"name":"Acme \\u00e9"}}'


def test_a_new_secret_is_32_random_bytes_in_the_whsec_format() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith(SECRET_PREFIX)
        assert len(base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)) == 32


def test_the_receiver_verifies_a_delivery_with_its_secret() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = delivery_headers([secret], "evt_01", now, BODY)

    assert Webhook(secret).verify(BODY, headers) == {
        "type": "organization.bootstrapped",
        "data": {"name": "Acme é"},
    }
    assert headers["webhook-id"] == "evt_01"
    assert headers["webhook-timestamp"] == str(now)
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("a4c-webhooks/")


def test_during_a_rotation_both_secrets_verify_and_the_current_signs_first() -> None:
    current, previous = new_secret(), new_secret()
    now = int(time.time())
    headers = delivery_headers([current, previous], "evt_02", now, BODY)

    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    assert signatures[0] == signature_header([current], "evt_02", now, BODY)
    assert signatures[1] == signature_header([previous], "evt_02", now, BODY)
    Webhook(current).verify(BODY, headers)
    Webhook(previous).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_changed_body_id_or_timestamp_does_not_verify() -> None:
    secret = new_secret()
    now = int(time.time())
    headers = delivery_headers([secret], "evt_03", now, BODY)
    for changed in (
        {**headers, "webhook-id": "evt_04"},
        {**headers, "webhook-timestamp": str(now - 1)},
    ):
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(BODY, changed)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)


def test_an_old_timestamp_is_refused_by_the_receiver() -> None:
    secret = new_secret()
    headers = delivery_headers([secret], "evt_05", int(time.time()) - 3600, BODY)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_signing_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        signature_header([], "evt_06", int(time.time()), BODY)


@given(
    body=st.binary(max_size=512), msg_id=st.text(min_size=1, max_size=40).filter(str.isprintable)
)
def test_any_body_bytes_verify(body: bytes, msg_id: str) -> None:
    secret = new_secret()
    headers = delivery_headers([secret], msg_id, int(time.time()), body)
    Webhook(secret).verify(body, headers, json_parse=False)
