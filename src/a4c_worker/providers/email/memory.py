"""In-memory mailer for mock mode and workflow tests: keeps what was sent, fails on demand."""

from __future__ import annotations

from a4c_worker.providers.email.message import with_message_id
from a4c_worker.providers.email.protocol import OutgoingMail
from a4c_worker.providers.faults import FaultInjector


class InMemoryMailer(FaultInjector):
    """Appends each mail to ``sent``; ``fail_for(recipient, exc)`` makes one address fail."""

    def __init__(self, from_address: str = "a4c@localhost") -> None:
        super().__init__()
        self.from_address = from_address
        self.sent: list[OutgoingMail] = []

    async def send(self, mail: OutgoingMail) -> str:
        self.raise_injected(mail.to)
        mail = with_message_id(mail, self.from_address)
        assert mail.message_id is not None
        self.sent.append(mail)
        return mail.message_id

    def sent_to(self, address: str) -> list[OutgoingMail]:
        return [m for m in self.sent if m.to.lower() == address.lower()]
