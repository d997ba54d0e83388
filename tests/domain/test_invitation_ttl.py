"""Invitation lifetimes: a TTL that cannot be, or an expiry already past, is a typed refusal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from a4c_domain import OnboardingApplication
from a4c_domain.errors import ConfigurationError, InvalidCommand
from tests.domain.support import FakeClock, notifications, org_fields
from tests.support import TOKEN_SECRET


def app_with_ttl(tmp_path: Path, ttl: str) -> OnboardingApplication:
    env = {"SQLITE_DBNAME": str(tmp_path / "ev.db"), "A4C_INVITATION_TTL_SECONDS": ttl}
    return OnboardingApplication(env, token_secret=TOKEN_SECRET)


@pytest.mark.parametrize("ttl", ["10" * 20, "999999999999", "-60", "0", "1.5", "week"])
def test_an_impossible_ttl_is_a_configuration_error_naming_the_variable(
    tmp_path: Path, ttl: str
) -> None:
    with pytest.raises(ConfigurationError, match="A4C_INVITATION_TTL_SECONDS"):
        app_with_ttl(tmp_path, ttl)


def test_the_longest_ttl_still_works(tmp_path: Path) -> None:
    app = app_with_ttl(tmp_path, str(365 * 24 * 3600))
    try:
        org = app.register_organization(**org_fields())
        inv = app.invite(
            organization_id=org.id, email="a@example.com", role="member", first_name="A",
            last_name="B",
        )  # fmt: skip
        assert inv.expires_at - app.clock() <= timedelta(days=365)
    finally:
        app.close()


def test_an_expiry_in_the_past_is_refused_naming_the_field(
    app: OnboardingApplication, clock: FakeClock
) -> None:
    org = app.register_organization(**org_fields())
    before = len(notifications(app))
    for past in (clock.now, clock.now - timedelta(seconds=1), clock.now - timedelta(days=400)):
        with pytest.raises(InvalidCommand) as refused:
            app.invite(
                organization_id=org.id, email="a@example.com", role="member", first_name="A",
                last_name="B", expires_at=past,
            )  # fmt: skip
        assert refused.value.fields == ["expires_at"]
    assert len(notifications(app)) == before  # nothing written
    later = app.invite(
        organization_id=org.id, email="a@example.com", role="member", first_name="A",
        last_name="B", expires_at=clock.now + timedelta(minutes=1),
    )  # fmt: skip
    assert later.expires_at == clock.now + timedelta(minutes=1)
