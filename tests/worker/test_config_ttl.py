"""``A4C_INVITATION_TTL_SECONDS`` out of range is reported by name at start, not later."""

from __future__ import annotations

import pytest
from tests.support import TOKEN_SECRET

from a4c_worker.config import SettingsError, load_settings

BASE = {"WORKFLOW_MODE": "mock", "A4C_TOKEN_SECRET": TOKEN_SECRET}


@pytest.mark.parametrize("ttl", ["10" * 20, str(366 * 24 * 3600), "-60", "59"])
def test_an_impossible_invitation_ttl_is_named(ttl: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, "A4C_INVITATION_TTL_SECONDS": ttl})
    assert "A4C_INVITATION_TTL_SECONDS" in dict(caught.value.problems)


def test_a_year_is_the_longest_invitation_ttl() -> None:
    settings = load_settings({**BASE, "A4C_INVITATION_TTL_SECONDS": str(365 * 24 * 3600)})
    assert settings.a4c_invitation_ttl_seconds == 365 * 24 * 3600
