"""Invitation tokens: 256-bit, derived, compared in constant time, never stored."""

from __future__ import annotations

import base64
import hmac
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, hash_token
from a4c_domain.errors import ConfigurationError
from a4c_domain.tokens import TokenIssuer, token_matches
from tests.domain.support import Store, org_fields
from tests.support import TOKEN_SECRET


def invite(app: OnboardingApplication) -> UUID:
    org = app.register_organization(**org_fields())
    inv = app.invite(
        organization_id=org.id, email="a@example.com", role="owner", first_name="A", last_name="B"
    )
    return inv.id


def test_only_the_hash_is_ever_stored(store: Store) -> None:
    app = store.open()
    inv = invite(app)
    tokens = [app.invitation_token(inv, ALL_ORGANIZATIONS)]
    app.reissue_token(organization_id=ALL_ORGANIZATIONS, invitation_id=inv, token_generation=2)
    tokens.append(app.invitation_token(inv, ALL_ORGANIZATIONS))
    app.accept_invitation(
        organization_id=ALL_ORGANIZATIONS, invitation_id=inv, token=tokens[-1], user_id="u"
    )
    raw = b"".join(store.raw_states())
    for token in tokens:
        assert token.encode() not in raw
        assert hash_token(token).encode() in raw  # what is stored instead
    assert TOKEN_SECRET.encode() not in raw
    view = app.get_invitation(inv, ALL_ORGANIZATIONS).model_dump_json()
    assert all(t not in view and hash_token(t) not in view for t in tokens)


def test_tokens_are_256_bit_url_safe() -> None:
    issuer = TokenIssuer(TOKEN_SECRET)
    token = issuer.token(UUID(int=1), 1)
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert issuer.token(UUID(int=1), 1) == token  # derived, so the e-mail step can recompute
    assert issuer.token(UUID(int=1), 2) != token
    assert issuer.token(UUID(int=2), 1) != token
    assert TokenIssuer("another-secret-of-at-least-32-bytes!").token(UUID(int=1), 1) != token


def test_accept_compares_in_constant_time(
    app: OnboardingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = invite(app)
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    app.accept_invitation(
        organization_id=ALL_ORGANIZATIONS,
        invitation_id=inv,
        token=app.invitation_token(inv, ALL_ORGANIZATIONS),
        user_id="u",
    )
    assert len(calls) == 1
    assert token_matches("x" * 43, hash_token("x" * 43))
    assert not token_matches("x" * 43, hash_token("y" * 43))


def test_secret_is_required_long_and_never_printed(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="A4C_TOKEN_SECRET"):
        OnboardingApplication(store.env)
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        TokenIssuer("short")
    assert TOKEN_SECRET not in repr(TokenIssuer(TOKEN_SECRET))
