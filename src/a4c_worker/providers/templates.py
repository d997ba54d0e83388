"""Invitation and reminder mails, as plain text and HTML, from the Jinja2 templates in
``mails/`` (each mail's words in ``<kind>.txt``, both parts' layout in ``layout.*``), and
the mails about an organization (welcome, provisioning failed, offboarded: each a
``<kind>.txt`` and ``<kind>.html`` extending the layout), which carry no link at all.

Everything a user typed (organization name, names, the inviter's note) is escaped in
the HTML part, and the accept link must be http(s), so a crafted name cannot inject
markup or a ``javascript:`` link into a mail that carries a login token. Message-IDs
are derived from the invitation and its token generation so a retried send is the
same message, while a re-issued token (new generation) is a new one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit
from uuid import UUID

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_eval_context, select_autoescape
from jinja2.nodes import EvalContext
from markupsafe import Markup

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


def organization_message_id(
    kind: str, organization_id: UUID, address: str, domain: str, *, occasion: int | None = None
) -> str:
    """``<{kind}.{organization id}.{hash}@{domain}>``: one message per kind, organization
    and recipient, named by the first 16 hex digits of the SHA-256 of the normalised
    address (so the id, recorded on ``Organization.EmailSent``, never spells it out).
    ``occasion``: a kind sent more than once (each SSO activation, its configuration's
    number) gets ``.{occasion}`` after the hash, one message per occasion."""
    digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()[:16]
    suffix = "" if occasion is None else f".{occasion}"
    return _message_id(kind, f"{organization_id}.{digest}{suffix}", domain)


@dataclass(frozen=True)
class Undo:
    """One compensation a provisioning-failed mail lists: what it undid, and how it went."""

    step: str
    outcome: str


def render_welcome(
    *,
    organization_name: str,
    first_name: str,
    last_name: str,
    role: str,
    completed_at: datetime,
    support_email: str,
) -> RenderedMail:
    """To an admin or owner of a freshly onboarded organization (no link: the invitation
    mail has it)."""
    return _render_organization_mail(
        "welcome",
        f"{organization_name} is ready",
        organization_name=organization_name,
        first_name=first_name,
        last_name=last_name,
        role=role,
        completed_at=_when(completed_at),
        support_email=support_email,
    )


def render_provisioning_failed(
    *,
    organization_name: str,
    slug: str,
    failed_step: str,
    reason: str,
    undone: Sequence[Undo],
    support_email: str,
) -> RenderedMail:
    """To the operators: where an onboarding stopped, why, and what was undone."""
    return _render_organization_mail(
        "provisioning_failed",
        f"Onboarding of {organization_name} stopped at {failed_step}",
        organization_name=organization_name,
        slug=slug,
        failed_step=failed_step,
        reason=reason,
        undone=list(undone),
        support_email=support_email,
    )


def render_offboarded(
    *,
    organization_name: str,
    first_name: str,
    last_name: str,
    reason: str,
    offboarded_at: datetime,
    support_email: str,
) -> RenderedMail:
    """To an admin of an organization that was offboarded."""
    return _render_organization_mail(
        "offboarded",
        f"{organization_name} was offboarded",
        organization_name=organization_name,
        first_name=first_name,
        last_name=last_name,
        reason=reason,
        offboarded_at=_when(offboarded_at),
        support_email=support_email,
    )


def render_sso_activated(
    *, organization_name: str, activated_at: datetime, support_email: str
) -> RenderedMail:
    """To an admin of an organization whose own identity provider is now in force."""
    return _render_organization_mail(
        "sso_activated",
        f"Single sign-on is active for {organization_name}",
        organization_name=organization_name,
        activated_at=_when(activated_at),
        support_email=support_email,
    )


def _render_organization_mail(kind: str, subject: str, **values: object) -> RenderedMail:
    values["subject"] = subject = _one_line(subject)
    return RenderedMail(
        subject=subject,
        text=_MAILS.get_template(f"{kind}.txt").render(values),
        html=_MAILS.get_template(f"{kind}.html").render(values),
    )


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
    return _render("invitation", **locals())


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
    return _render("reminder", **locals())


def _render(
    kind: str,
    *,
    organization_name: str,
    first_name: str,
    last_name: str,
    role: str,
    accept_url: str,
    expires_at: datetime,
    message: str | None,
) -> RenderedMail:
    """The ``kind``'s words (``mails/<kind>.txt``) in both layouts, so text and HTML never
    say different things."""
    _check_url(accept_url)
    # The template's top-level variables (``{% set %}``), as plain text.
    words = vars(
        _MAILS.get_template(f"{kind}.txt").make_module(
            {"organization_name": organization_name, "role": role, "expires_at": _when(expires_at)}
        )
    )
    subject = str(words["subject"])
    values = {
        "subject": subject,
        "first_name": first_name,
        "last_name": last_name,
        "intro": str(words["intro"]),
        "note": message,
        "accept_url": accept_url,
        "outro": str(words["outro"]),
    }
    return RenderedMail(
        subject=_one_line(subject),
        text=_MAILS.get_template("layout.txt").render(values),
        html=_MAILS.get_template("layout.html").render(values),
    )


@pass_eval_context
def _escape_as_before(context: EvalContext, value: object) -> object:
    """In HTML, what is not markup yet is escaped by :func:`html.escape` (quotes as
    ``&quot;`` and ``&#x27;``), as the mails were before templates: a mail re-sent after
    an upgrade is byte for byte the one sent before it."""
    if context.autoescape and isinstance(value, str) and not isinstance(value, Markup):
        return Markup(escape(value))  # noqa: S704 - escaped here
    return value


def _line_breaks(text: str) -> Markup:
    """A note's lines, escaped, as lines of HTML."""
    return Markup(escape(text).replace("\n", "<br>"))  # noqa: S704 - escaped here


_MAILS = Environment(
    loader=PackageLoader("a4c_worker.providers", "mails"),
    autoescape=select_autoescape(["html"]),
    finalize=_escape_as_before,
    undefined=StrictUndefined,
    trim_blocks=True,  # a line holding only a tag leaves no line behind
    keep_trailing_newline=True,
)
_MAILS.filters["line_breaks"] = _line_breaks


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
        raise ValueError("times in mails must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _one_line(value: str) -> str:
    """Subjects are headers: whitespace runs (including line breaks) become one space."""
    return " ".join(value.split())
