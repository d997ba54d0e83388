"""Encryption at rest: with eventsourcing's AES cipher, e-mail addresses are unreadable.

The cipher is `eventsourcing.cryptography:AESCipher` (AES-GCM from the `cryptography`
package, eventsourcing's `cryptography` extra, which this project installs).
"""

from __future__ import annotations

import pytest
from eventsourcing.cryptography import AESCipher

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from tests.domain.support import Store, org_fields

EMAIL = "very.secret.person@example.com"


def test_payloads_are_encrypted_and_read_back(store: Store) -> None:
    cipher = {
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(32),
    }
    app = store.open(**cipher)
    org = app.register_organization(**org_fields(name="Confidential Corp"))
    inv = app.invite(
        organization_id=org.id, email=EMAIL, role="member", first_name="Very", last_name="Secret"
    )
    raw = store.raw_states()
    assert len(raw) == 3  # registered, invited, and the invitation listed on the org
    for state in raw:
        assert b"very.secret.person" not in state
        assert b"Confidential" not in state
        assert b"example.com" not in state
    reread = store.open(**cipher)
    assert reread.get_invitation(inv.id, ALL_ORGANIZATIONS).email == EMAIL
    assert reread.get_organization(org.id).name == "Confidential Corp"
    wrong_key = store.open(CIPHER_TOPIC=cipher["CIPHER_TOPIC"], CIPHER_KEY=AESCipher.create_key(32))
    with pytest.raises(ValueError):
        wrong_key.get_invitation(inv.id, ALL_ORGANIZATIONS)


def test_without_a_cipher_the_store_is_plain(app: OnboardingApplication, store: Store) -> None:
    """The control: the scan above would have found the address in plain storage."""
    org = app.register_organization(**org_fields())
    app.invite(
        organization_id=org.id, email=EMAIL, role="member", first_name="Very", last_name="Secret"
    )
    assert any(EMAIL.encode() in state for state in store.raw_states())
