"""SMTP delivery with aiosmtplib, mapping every failure to retry-or-not.

The rule follows SMTP itself: a 5xx reply is the server's final "no" (permanent), a 4xx
reply, a timeout or a dropped connection may clear up (transient). A certificate that
does not verify or a server lacking STARTTLS is configuration, hence permanent.
The error keeps the reply code first and the server's words redacted and bounded
(``ProviderError``), since a refusal may quote the mail, token and all. It never names
the recipient: the text reaches progress views a plain member reads and the worker's
log, so the address (which a server's words often quote) is shown as ``*@domain``.
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Literal, Self

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from a4c_worker.providers.email.message import build_message, with_message_id
from a4c_worker.providers.email.protocol import OutgoingMail
from a4c_worker.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)

logger = logging.getLogger(__name__)
# Shorter lines of a mail ("Hi,", "--") are redacted nowhere: they name nobody.
_MIN_QUOTED = 6


class SMTPSettings(BaseModel):
    """Submission server settings. ``security``: ``starttls`` (587), ``tls`` (465), ``none``."""

    model_config = ConfigDict(frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"
    timeout: float = Field(default=30.0, gt=0)
    from_address: str = Field(min_length=3)
    ca_file: Path | None = Field(default=None, description="extra CA bundle to trust")
    validate_certs: bool = True

    @model_validator(mode="after")
    def _credentials_together(self) -> Self:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password must be set together")
        return self


class SMTPMailer:
    """``Mailer`` that opens one SMTP connection per message."""

    def __init__(self, settings: SMTPSettings) -> None:
        self._settings = settings

    async def send(self, mail: OutgoingMail) -> str:
        settings = self._settings
        mail = with_message_id(mail, settings.from_address)
        assert mail.message_id is not None
        message = build_message(mail, settings.from_address)
        try:
            await aiosmtplib.send(
                message,
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                use_tls=settings.security == "tls",
                start_tls=settings.security == "starttls",
                validate_certs=settings.validate_certs,
                cert_bundle=str(settings.ca_file) if settings.ca_file else None,
                timeout=settings.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            # A content filter's reply may quote the mail: its lines (the greeting names
            # the invitee) are redacted like the token.
            error = classify_smtp_error(exc, recipient=mail.to).sanitised(*_quotable(mail))
            logger.warning(
                "mail to %s (%s) failed: %s", mail.recipient_domain, mail.message_id, error
            )
            # Not chained: the library exception holds the server's reply unredacted,
            # and a content filter's reply may quote the mail with its accept link.
            raise error from None
        logger.info("mail to %s sent as %s", mail.recipient_domain, mail.message_id)
        return mail.message_id


def classify_smtp_error(exc: BaseException, *, recipient: str | None = None) -> ProviderError:
    """The provider error for an aiosmtplib (or socket) failure: reply codes and the
    server's words, with ``recipient`` (the address the mail was for) shown as ``*@domain``.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Not the exception's own text: its repr lists each refused address.
        codes = [r.code for r in exc.recipients]
        replies = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        message = f"recipient refused: {replies}"
        return _by_code(max(codes, default=0), _without(recipient, message))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        message = f"server answered {exc.code} {exc.message}"
        return _by_code(exc.code, _without(recipient, message))
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return PermanentProviderError(f"SMTP server certificate rejected: {exc}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentProviderError(f"SMTP server lacks a required feature: {exc}")
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return TransientProviderError(f"SMTP server unreachable: {exc}")
    return PermanentProviderError(_without(recipient, f"SMTP failed: {exc}"))


def _quotable(mail: OutgoingMail) -> list[str]:
    """What of ``mail`` a refusal may quote back: its subject and each line of its text."""
    lines = [mail.subject, *mail.text.splitlines()]
    return [line.strip() for line in lines if len(line.strip()) >= _MIN_QUOTED]


def _without(recipient: str | None, text: str) -> str:
    """``text`` with every spelling (any case) of ``recipient`` replaced by ``*@domain``."""
    if not recipient:
        return text
    domain = recipient.rsplit("@", 1)[-1].lower()
    return re.sub(re.escape(recipient), f"*@{domain}", text, flags=re.IGNORECASE)


def _by_code(code: int, message: str) -> ProviderError:
    if code >= 500:
        return PermanentProviderError(message)
    return TransientProviderError(message)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
