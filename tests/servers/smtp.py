"""SMTP for tests: aiosmtpd in-process: plain, with required STARTTLS, and implicit TLS.

The handler keeps every delivered message (parsed with the stdlib ``email`` package)
and can be told to refuse a recipient with any reply, e.g. ``"550 5.1.1 no such user"``
or ``"451 4.3.0 try later"``, to exercise error mapping, or to refuse the message with a
reply that quotes all of it, as content filters do (``reject_quoting``). Servers are session-scoped,
so tests use their own recipient addresses and look up mail by recipient.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port

SMTP_USER = "a4c"
SMTP_PASSWORD = "test-password"  # only for the throwaway test server


class RecordingHandler:
    """Collects delivered messages; refuses recipients listed in ``rejections``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.rejections: dict[str, str] = {}
        # recipient -> (reply code, one line?): refuse DATA quoting the whole message.
        self.quoting: dict[str, tuple[int, bool]] = {}
        self.quoted_replies: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.rejections.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in self.quoting:
                code, one_line = self.quoting[rcpt.lower()]
                return self._quote(code, one_line, envelope.content)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"

    def _quote(self, code: int, one_line: bool, content: bytes) -> str:
        """A refusal quoting the message's decoded text, then the message as received."""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body(("plain",))
        text = str(body.get_content()) if body is not None else ""
        lines = ["rejected by content filter:", *text.splitlines(), "message received:"]
        lines += content.decode("utf-8", "replace").splitlines()
        if one_line:
            reply = f"{code} " + " ".join(lines)
        else:
            reply = "\r\n".join(f"{code}-{line}" for line in lines) + f"\r\n{code} end"
        self.quoted_replies.append(reply)
        return reply


@dataclass
class SMTPTestServer:
    """A running aiosmtpd; ``ca_file`` is the certificate to trust when TLS is on."""

    host: str
    port: int
    handler: RecordingHandler
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None
    controller: Controller | None = field(default=None, repr=False)

    def messages_to(self, address: str) -> list[EmailMessage]:
        wanted = address.lower()
        return [
            m
            for m, (_, rcpts) in zip(self.handler.messages, self.handler.envelopes, strict=True)
            if wanted in (r.lower() for r in rcpts)
        ]

    def reject(self, address: str, reply: str) -> None:
        """Answer ``RCPT TO:<address>`` with ``reply`` (e.g. ``"550 5.1.1 unknown"``)."""
        self.handler.rejections[address.lower()] = reply

    def reject_quoting(self, address: str, code: int, *, one_line: bool = False) -> None:
        """Refuse mail to ``address`` with ``code``, the reply quoting the whole message
        (one line, or one reply line per message line)."""
        self.handler.quoting[address.lower()] = (code, one_line)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the `openssl` command is required for the STARTTLS test server")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False)


def _start(handler: RecordingHandler, **smtp_kwargs: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    return controller, port


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SMTPTestServer]:
    """Plain SMTP, no TLS, no authentication."""
    handler = RecordingHandler()
    controller, port = _start(handler)
    try:
        yield SMTPTestServer("127.0.0.1", port, handler, controller=controller)
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ssl.SSLContext]:
    """The test servers' certificate file (to trust) and their server-side TLS context."""
    cert, key = self_signed_certificate(tmp_path_factory.mktemp("smtp-tls"))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


@pytest.fixture(scope="session")
def smtp_starttls_server(smtp_certificate: tuple[Path, ssl.SSLContext]) -> Iterator[SMTPTestServer]:
    """SMTP that requires STARTTLS before MAIL and offers AUTH (``SMTP_USER``) over TLS."""
    cert, context = smtp_certificate
    handler = RecordingHandler()
    controller, port = _start(
        handler,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    try:
        yield SMTPTestServer(
            "127.0.0.1",
            port,
            handler,
            ca_file=cert,
            username=SMTP_USER,
            password=SMTP_PASSWORD,
            controller=controller,
        )
    finally:
        controller.stop()


@pytest.fixture(scope="session")
def smtps_server(smtp_certificate: tuple[Path, ssl.SSLContext]) -> Iterator[SMTPTestServer]:
    """SMTP over implicit TLS (the port-465 style): TLS from the first byte."""
    cert, context = smtp_certificate
    handler = RecordingHandler()
    controller, port = _start(handler, ssl_context=context)
    try:
        yield SMTPTestServer("127.0.0.1", port, handler, ca_file=cert, controller=controller)
    finally:
        controller.stop()
