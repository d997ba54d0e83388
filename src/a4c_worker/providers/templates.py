"""Invitation and reminder mails, as plain text and HTML.

Everything a user typed (organization name, names, the inviter's note) is escaped in
the HTML part, and the accept link must be http(s), so a crafted name cannot inject
markup or a ``javascript:`` link into a mail that carries a login token. Message-IDs
are derived from the invitation and its token generation so a retried send is the
same message, while a re-issued token (new generation) is a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit
from uuid import UUID

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def invitation_message_id(invitation_id: UUID, token_generation: int, domain: str) -> str:
    """``<invitation.{id}.{generation}@{domain}>``: same invitation and token, same id."""
    return _message_id("invitation", f"{invitation_id}.{token_generation}", domain)


def reminder_message_id(invitation_id: UUID, token_generation: int, domain: str) -> str:
    """``<reminder.{id}.{generation}@{domain}>``: one reminder per token generation."""
    return _message_id("reminder", f"{invitation_id}.{token_generation}", domain)


def render_invitation(
    *,
    organization_name: str,
    first_name: str,
    last_name: str,
    role: str,
    accept_url: str,
    expires_at: datetime,
    message: str | None = None,
) -> RenderedMail:
    """The first mail an invitee receives; ``message`` is the inviter's own note."""
    intro = f"You have been invited to join {organization_name} as {role}."
    return _render(
        subject=f"Invitation to join {organization_name}",
        first_name=first_name,
        last_name=last_name,
        intro=intro,
        note=message,
        action=("Accept the invitation", accept_url),
        outro=f"This invitation expires on {_when(expires_at)}.",
    )


def render_reminder(
    *,
    organization_name: str,
    first_name: str,
    last_name: str,
    role: str,
    accept_url: str,
    expires_at: datetime,
    message: str | None = None,
) -> RenderedMail:
    """Sent shortly before the invitation expires, with the same link."""
    intro = f"Your invitation to join {organization_name} as {role} is still waiting for you."
    return _render(
        subject=f"Reminder: your invitation to join {organization_name}",
        first_name=first_name,
        last_name=last_name,
        intro=intro,
        note=message,
        action=("Accept the invitation", accept_url),
        outro=f"It expires on {_when(expires_at)}; after that you will need a new one.",
    )


def _render(
    *,
    subject: str,
    first_name: str,
    last_name: str,
    intro: str,
    note: str | None,
    action: tuple[str, str],
    outro: str,
) -> RenderedMail:
    """Both parts from the same pieces, so text and HTML never say different things."""
    greeting = f"Hello {' '.join(n for n in (first_name, last_name) if n)},"
    text = [greeting, "", intro]
    html = [f"<p>{escape(greeting)}</p>", f"<p>{escape(intro)}</p>"]
    if note:
        text += ["", "Message from the person who invited you:", "", note]
        html.append(f"<blockquote>{escape(note).replace(chr(10), '<br>')}</blockquote>")
    label, url = action
    _check_url(url)
    text += ["", f"{label}: {url}"]
    html.append(f'<p><a href="{escape(url)}">{escape(label)}</a></p>')
    if outro:
        text += ["", outro]
        html.append(f"<p>{escape(outro)}</p>")
    body = "\n".join(html)
    document = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )
    return RenderedMail(subject=_one_line(subject), text="\n".join(text) + "\n", html=document)


def _message_id(kind: str, local: str, domain: str) -> str:
    if not _DOMAIN.match(domain):
        raise ValueError(f"not a valid Message-ID domain: {domain!r}")
    return f"<{kind}.{local}@{domain.lower()}>"


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"links in mails must be absolute http(s) URLs, got {url!r}")


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _one_line(value: str) -> str:
    """Subjects are headers: whitespace runs (including line breaks) become one space."""
    return " ".join(value.split())
