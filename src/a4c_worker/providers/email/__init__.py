"""E-mail providers: SMTP for real delivery, logging / in-memory / file for the rest."""

from a4c_worker.providers.email.file import FileMailer
from a4c_worker.providers.email.logged import LoggingMailer
from a4c_worker.providers.email.memory import InMemoryMailer
from a4c_worker.providers.email.protocol import Mailer, OutgoingMail
from a4c_worker.providers.email.smtp import SMTPMailer, SMTPSettings, classify_smtp_error

__all__ = [
    "FileMailer",
    "InMemoryMailer",
    "LoggingMailer",
    "Mailer",
    "OutgoingMail",
    "SMTPMailer",
    "SMTPSettings",
    "classify_smtp_error",
]
