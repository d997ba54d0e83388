"""SMTP delivery to a real aiosmtpd, plain and with STARTTLS, and the error mapping."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from pydantic import SecretStr, ValidationError
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET, free_port

from a4c_domain.redaction import MAX_LENGTH
from a4c_domain.tokens import TokenIssuer
from a4c_worker.providers.email import OutgoingMail, SMTPMailer, SMTPSettings
from a4c_worker.providers.errors import PermanentProviderError, TransientProviderError
from a4c_worker.providers.templates import invitation_message_id, render_invitation

SENDER = "a4c <noreply@a4c.test>"


def plain_settings(server: SMTPTestServer, **overrides: object) -> SMTPSettings:
    values: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "security": "none",
        "timeout": 5,
        "from_address": SENDER,
    }
    values.update(overrides)
    return SMTPSettings.model_validate(values)


def tls_settings(server: SMTPTestServer, **overrides: object) -> SMTPSettings:
    values: dict[str, object] = {
        "security": "starttls",
        "ca_file": server.ca_file,
        "username": server.username,
        "password": SecretStr(server.password or ""),
    }
    values.update(overrides)
    return plain_settings(server, **values)


def invitation_mail(to: str, generation: int = 1, accept_url: str | None = None) -> OutgoingMail:
    invitation_id = uuid.uuid4()
    rendered = render_invitation(
        organization_name="Acme <Labs>",
        first_name="Ada",
        last_name="Lovelace",
        role="admin",
        accept_url=accept_url or f"https://app.a4c.test/accept?token=tok-{invitation_id.hex}",
        expires_at=datetime(2030, 1, 2, 3, 4, tzinfo=UTC),
    )
    return OutgoingMail(
        to=to,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=invitation_message_id(invitation_id, generation, "a4c.test"),
        headers={"X-A4C-Invitation": str(invitation_id)},
    )


def recipient() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.org"


def parts(message: EmailMessage) -> dict[str, str]:
    found = {}
    for part in message.walk():
        if part.get_content_maintype() == "text":
            assert isinstance(part, EmailMessage)
            found[part.get_content_subtype()] = str(part.get_content())
    return found


async def test_plain_delivery_arrives_with_text_html_and_message_id(
    smtp_server: SMTPTestServer,
) -> None:
    to = recipient()
    mail = invitation_mail(to)

    message_id = await SMTPMailer(plain_settings(smtp_server)).send(mail)

    assert message_id == mail.message_id
    [received] = smtp_server.messages_to(to)
    assert received["Message-ID"] == mail.message_id
    assert received["Subject"] == "Invitation to join Acme <Labs>"
    assert received["X-A4C-Invitation"] == mail.headers["X-A4C-Invitation"]
    assert received.get_content_type() == "multipart/alternative"
    body = parts(received)
    assert set(body) == {"plain", "html"}
    token = mail.text.split("token=")[1].split()[0]
    assert f"token={token}" in body["plain"]
    assert "Acme &lt;Labs&gt;" in body["html"]


async def test_starttls_delivery_with_authentication(smtp_starttls_server: SMTPTestServer) -> None:
    to = recipient()
    mail = invitation_mail(to)

    await SMTPMailer(tls_settings(smtp_starttls_server)).send(mail)

    [received] = smtp_starttls_server.messages_to(to)
    assert received["Message-ID"] == mail.message_id
    assert set(parts(received)) == {"plain", "html"}


async def test_implicit_tls_delivery(smtps_server: SMTPTestServer) -> None:
    to = recipient()
    mail = invitation_mail(to)
    settings = plain_settings(smtps_server, security="tls", ca_file=smtps_server.ca_file)

    assert await SMTPMailer(settings).send(mail) == mail.message_id

    [received] = smtps_server.messages_to(to)
    assert received["Message-ID"] == mail.message_id


async def test_a_mail_without_message_id_gets_one(smtp_server: SMTPTestServer) -> None:
    to = recipient()
    mail = OutgoingMail(to=to, subject="Hi", text="plain only")
    message_id = await SMTPMailer(plain_settings(smtp_server)).send(mail)
    [received] = smtp_server.messages_to(to)
    assert received["Message-ID"] == message_id
    assert message_id.endswith("@a4c.test>")
    assert received.get_content_type() == "text/plain"


async def test_refusing_to_send_in_clear_to_a_starttls_only_server(
    smtp_starttls_server: SMTPTestServer,
) -> None:
    mailer = SMTPMailer(plain_settings(smtp_starttls_server))
    with pytest.raises(PermanentProviderError, match="530"):
        await mailer.send(invitation_mail(recipient()))


async def test_untrusted_certificate_is_permanent(smtp_starttls_server: SMTPTestServer) -> None:
    mailer = SMTPMailer(tls_settings(smtp_starttls_server, ca_file=None))
    with pytest.raises(PermanentProviderError, match="certificate"):
        await mailer.send(invitation_mail(recipient()))


async def test_wrong_password_is_permanent(smtp_starttls_server: SMTPTestServer) -> None:
    mailer = SMTPMailer(tls_settings(smtp_starttls_server, password=SecretStr("nope")))
    with pytest.raises(PermanentProviderError, match="535"):
        await mailer.send(invitation_mail(recipient()))


async def test_5xx_recipient_is_permanent(smtp_server: SMTPTestServer) -> None:
    to = recipient()
    smtp_server.reject(to, "550 5.1.1 no such user")
    with pytest.raises(PermanentProviderError, match="550") as caught:
        await SMTPMailer(plain_settings(smtp_server)).send(invitation_mail(to))
    assert caught.value.retryable is False
    assert smtp_server.messages_to(to) == []


async def test_4xx_recipient_is_transient(smtp_server: SMTPTestServer) -> None:
    to = recipient()
    smtp_server.reject(to, "451 4.3.0 try again later")
    with pytest.raises(TransientProviderError, match="451") as caught:
        await SMTPMailer(plain_settings(smtp_server)).send(invitation_mail(to))
    assert caught.value.retryable is True


async def test_server_down_is_transient(smtp_server: SMTPTestServer) -> None:
    mailer = SMTPMailer(plain_settings(smtp_server, port=free_port(), timeout=2))
    with pytest.raises(TransientProviderError):
        await mailer.send(invitation_mail(recipient()))


def test_settings_need_username_and_password_together() -> None:
    with pytest.raises(ValidationError, match="together"):
        SMTPSettings(host="mail", from_address=SENDER, username="only-me")


def test_settings_hide_the_password() -> None:
    settings = SMTPSettings(
        host="mail", from_address=SENDER, username="u", password=SecretStr("hunter2")
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()


@pytest.mark.parametrize("one_line", [True, False], ids=["one-line", "many-lines"])
async def test_a_refusal_quoting_the_mail_is_redacted_and_keeps_its_code(
    smtp_server: SMTPTestServer, one_line: bool
) -> None:
    to = recipient()
    token = TokenIssuer(TOKEN_SECRET).token(uuid.uuid4(), 1)
    mail = invitation_mail(to, accept_url=f"https://app.a4c.test/accept?token={token}")
    smtp_server.reject_quoting(to, 554, one_line=one_line)
    with pytest.raises(PermanentProviderError) as caught:
        await SMTPMailer(plain_settings(smtp_server)).send(mail)
    assert token in smtp_server.handler.quoted_replies[-1]  # the server did quote it
    text = str(caught.value)
    assert text.startswith("server answered 554 ")
    assert token not in text and "accept?token" not in text
    assert "\n" not in text and len(text) <= MAX_LENGTH
    # The library exception holds the reply unredacted: it is not chained.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
