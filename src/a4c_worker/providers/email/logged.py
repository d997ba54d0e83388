"""A mailer that only logs, for development without a mail server.

It logs the recipient's domain, the subject and the Message-ID — never the address's
local part or the body, which carries the invitation token.
"""

from __future__ import annotations

import logging

from a4c_worker.providers.email.message import with_message_id
from a4c_worker.providers.email.protocol import OutgoingMail

logger = logging.getLogger(__name__)


class LoggingMailer:
    def __init__(self, from_address: str = "a4c@localhost") -> None:
        self.from_address = from_address

    async def send(self, mail: OutgoingMail) -> str:
        mail = with_message_id(mail, self.from_address)
        assert mail.message_id is not None
        logger.info(
            "mail not sent (logging mailer): to *@%s subject=%r id=%s",
            mail.recipient_domain,
            mail.subject,
            mail.message_id,
        )
        return mail.message_id
