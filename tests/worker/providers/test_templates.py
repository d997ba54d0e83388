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


def test_an_invitation_is_rendered_exactly_as_before_templates() -> None:
    """The mails as the hand-written renderer produced them, byte for byte (quotes in
    the HTML part as ``&quot;`` and ``&#x27;``), so a mail re-sent after an upgrade is
    the one sent before it."""
    mail = render_invitation(
        organization_name="O'Hara & <Sons>",
        first_name='Ada "the first"',
        last_name="Lovelace",
        role="admin",
        accept_url="https://a4c.example/accept?token=abc&x=1",
        expires_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        message="Welcome!\nSee you <soon> & 'then'.",
    )
    assert mail == RenderedMail(
        subject="Invitation to join O'Hara & <Sons>",
        text=(
            'Hello Ada "the first" Lovelace,\n\n'
            "You have been invited to join O'Hara & <Sons> as admin.\n\n"
            "Message from the person who invited you:\n\n"
            "Welcome!\nSee you <soon> & 'then'.\n\n"
            "Accept the invitation: https://a4c.example/accept?token=abc&x=1\n\n"
            "This invitation expires on 2026-03-01 12:30 UTC.\n"
        ),
        html=(
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>Invitation to join O&#x27;Hara &amp; &lt;Sons&gt;</title></head>\n"
            "<body>\n"
            "<p>Hello Ada &quot;the first&quot; Lovelace,</p>\n"
            "<p>You have been invited to join O&#x27;Hara &amp; &lt;Sons&gt; as admin.</p>\n"
            "<blockquote>Welcome!<br>See you &lt;soon&gt; &amp; &#x27;then&#x27;.</blockquote>\n"
            '<p><a href="https://a4c.example/accept?token=abc&amp;x=1">'
            "Accept the invitation</a></p>\n"
            "<p>This invitation expires on 2026-03-01 12:30 UTC.</p>\n"
            "</body></html>\n"
        ),
    )


def test_a_reminder_is_rendered_exactly_as_before_templates() -> None:
    mail = render_reminder(
        organization_name="Acme",
        first_name="",
        last_name="Hopper",
        role="member",
        accept_url="http://localhost:8000/accept?token=t",
        expires_at=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
    )
    assert mail == RenderedMail(
        subject="Reminder: your invitation to join Acme",
        text=(
            "Hello Hopper,\n\n"
            "Your invitation to join Acme as member is still waiting for you.\n\n"
            "Accept the invitation: http://localhost:8000/accept?token=t\n\n"
            "It expires on 2026-03-01 12:30 UTC; after that you will need a new one.\n"
        ),
        html=(
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>Reminder: your invitation to join Acme</title></head>\n"
            "<body>\n"
            "<p>Hello Hopper,</p>\n"
            "<p>Your invitation to join Acme as member is still waiting for you.</p>\n"
            '<p><a href="http://localhost:8000/accept?token=t">Accept the invitation</a></p>\n'
            "<p>It expires on 2026-03-01 12:30 UTC; after that you will need a new one.</p>\n"
            "</body></html>\n"
        ),
    )
