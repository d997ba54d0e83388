"""Invitation and reminder rendering: content, escaping, Message-IDs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from a4c_worker.providers.templates import (
    RenderedMail,
    invitation_message_id,
    reminder_message_id,
    render_invitation,
    render_reminder,
)

EXPIRES = datetime(2030, 5, 6, 7, 8, tzinfo=UTC)
HOSTILE = "<script>alert(\"x\")</script> & 'Co'"
URL = 'https://app.a4c.test/invitations/accept?token=abc&x="1"'


def fields(**overrides: Any) -> dict[str, Any]:
    """Inputs for render_invitation / render_reminder, with per-test changes."""
    values: dict[str, Any] = {
        "organization_name": "Acme",
        "first_name": "A",
        "last_name": "B",
        "role": "member",
        "accept_url": URL,
        "expires_at": EXPIRES,
    }
    values.update(overrides)
    return values


def test_invitation_has_everything_in_both_parts() -> None:
    mail = render_invitation(
        **fields(first_name="Ada", last_name="Lovelace", role="admin", message="Welcome aboard!")
    )
    assert mail.subject == "Invitation to join Acme"
    for part in (mail.text, mail.html):
        assert "Ada Lovelace" in part
        assert "admin" in part
        assert "2030-05-06 07:08 UTC" in part
        assert "Welcome aboard!" in part
    assert URL in mail.text
    assert (
        'href="https://app.a4c.test/invitations/accept?token=abc&amp;x=&quot;1&quot;"' in mail.html
    )


@pytest.mark.parametrize("render", [render_invitation, render_reminder])
def test_user_text_is_escaped_in_html(render: Callable[..., RenderedMail]) -> None:
    mail = render(
        **fields(
            organization_name=HOSTILE,
            first_name=HOSTILE,
            last_name='"Quoted"',
            role="<b>owner</b>",
            message=HOSTILE + "\nsecond line",
        )
    )
    assert "<script>" not in mail.html
    assert "<b>" not in mail.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;Co&#x27;" in mail.html
    assert "&quot;Quoted&quot;" in mail.html
    assert "second line" in mail.html
    assert HOSTILE in mail.text  # the text part is shown as-is, never interpreted


def test_subject_cannot_carry_header_line_breaks() -> None:
    mail = render_invitation(**fields(organization_name="Acme\r\nBcc: victim@example.org"))
    assert "\n" not in mail.subject and "\r" not in mail.subject


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/accept", "ftp://x/y"])
def test_only_absolute_http_links(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        render_invitation(**fields(accept_url=url))


def test_expiry_is_shown_in_utc_and_must_be_aware() -> None:
    local = EXPIRES.astimezone(timezone(timedelta(hours=2)))
    mail = render_reminder(**fields(expires_at=local))
    assert "2030-05-06 07:08 UTC" in mail.text
    with pytest.raises(ValueError, match="timezone"):
        render_reminder(**fields(expires_at=EXPIRES.replace(tzinfo=None)))


def test_message_ids_are_deterministic_and_distinct() -> None:
    invitation = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert invitation_message_id(invitation, 2, "a4c.example") == (
        "<invitation.12345678-1234-5678-1234-567812345678.2@a4c.example>"
    )
    assert invitation_message_id(invitation, 2, "a4c.example") == invitation_message_id(
        invitation, 2, "A4C.example"
    )
    ids = {
        invitation_message_id(invitation, 1, "a4c.example"),
        invitation_message_id(invitation, 2, "a4c.example"),
        reminder_message_id(invitation, 1, "a4c.example"),
    }
    assert len(ids) == 3
    with pytest.raises(ValueError, match="domain"):
        invitation_message_id(invitation, 1, "bad domain>")
