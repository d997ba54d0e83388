"""Turning an ``OutgoingMail`` into a MIME message, shared by the SMTP and file mailers."""

from __future__ import annotations

import dataclasses
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from a4c_worker.providers.email.protocol import OutgoingMail


def sender_domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rsplit("@", 1)[-1] if "@" in address else "localhost"


def with_message_id(mail: OutgoingMail, sender: str) -> OutgoingMail:
    """``mail`` itself if it has a Message-ID, else a copy with a fresh one."""
    if mail.message_id is not None:
        return mail
    return dataclasses.replace(mail, message_id=make_msgid(domain=sender_domain(sender)))


def build_message(mail: OutgoingMail, sender: str) -> EmailMessage:
    """A text message, or multipart/alternative text + HTML when ``mail.html`` is set."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = Address(addr_spec=mail.to)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(usegmt=True)
    if mail.message_id is not None:
        message["Message-ID"] = mail.message_id
    for name, value in mail.headers.items():
        message[name] = value
    # Quoted-printable, never base64: a server that quotes a refused mail back then
    # shows the accept link in a form the error redaction recognises.
    message.set_content(mail.text, cte="quoted-printable")
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", cte="quoted-printable")
    return message
