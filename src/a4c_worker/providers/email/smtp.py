"""SMTP delivery with aiosmtplib, mapping every failure to retry-or-not.

The rule follows SMTP itself: a 5xx reply is the server's final "no" (permanent), a 4xx
reply, a timeout or a dropped connection may clear up (transient). A certificate that
does not verify or a server lacking STARTTLS is configuration, hence permanent.
The error keeps the reply code first and the server's words redacted and bounded
(``ProviderError``), since a refusal may quote the mail, token and all.
"""

from __future__ import annotations

import logging
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
            error = classify_smtp_error(exc)
            logger.warning(
                "mail to %s (%s) failed: %s", mail.recipient_domain, mail.message_id, error
            )
            # Not chained: the library exception holds the server's reply unredacted,
            # and a content filter's reply may quote the mail with its accept link.
            raise error from None
        logger.info("mail to %s sent as %s", mail.recipient_domain, mail.message_id)
        return mail.message_id


def classify_smtp_error(exc: BaseException) -> ProviderError:
    """The provider error for an aiosmtplib (or socket) failure."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        return _by_code(max(codes, default=0), f"recipient refused: {exc.recipients}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_code(exc.code, f"server answered {exc.code} {exc.message}")
    if _caused_by(exc, ssl.SSLCertVerificationError):
        return PermanentProviderError(f"SMTP server certificate rejected: {exc}")
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentProviderError(f"SMTP server lacks a required feature: {exc}")
    if isinstance(exc, (TimeoutError, ConnectionError, OSError)):
        return TransientProviderError(f"SMTP server unreachable: {exc}")
    return PermanentProviderError(f"SMTP failed: {exc}")


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
