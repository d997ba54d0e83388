"""The soak's SMTP server: aiosmtpd in the soak's own process, keeping every message.

It can be told to answer ``451`` (a transient refusal) for a while: the fault "the SMTP
server answering 4xx", which the workers must ride out by retrying, never by dropping
or duplicating an invitation.
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

TRANSIENT_REFUSAL = "451 4.3.0 soak fault: try again later"


class SinkHandler:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[EmailMessage] = []
        self._refuse_until = 0.0
        self.refused = 0

    def refuse_for(self, seconds: float) -> None:
        with self._lock:
            self._refuse_until = time.monotonic() + seconds

    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self._lock:
            if time.monotonic() < self._refuse_until:
                self.refused += 1
                return TRANSIENT_REFUSAL
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self._messages.append(message)
        return "250 Message accepted"


class MailSink:
    """A plain SMTP server on ``127.0.0.1:port`` (the workers use SMTP_SECURITY=none)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = SinkHandler()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=port)
        self._started = False

    def start(self) -> None:
        self._controller.start()
        self._started = True

    def stop(self) -> None:
        if self._started:
            self._controller.stop()
            self._started = False

    def messages(self) -> list[EmailMessage]:
        return self.handler.messages()
