"""What the worker asks a mailer to deliver, and the one method every mailer has.

``OutgoingMail`` is a plain frozen dataclass so it crosses Temporal activity boundaries
with the default data converter; it validates its header-bound fields up front so a bad
address or an injected line break fails before anything is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Set by the mailer from ``OutgoingMail`` fields; callers may not override them.
RESERVED_HEADERS = frozenset(
    {"from", "to", "subject", "message-id", "date", "mime-version", "content-type"}
)


def _single_line(what: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} must be a single line")


@dataclass(frozen=True)
class OutgoingMail:
    """One message to one recipient. ``html`` is optional; ``text`` is always sent.

    ``message_id`` (``<local@domain>``) makes re-sends recognisable as the same message;
    when ``None`` the mailer makes one up.
    """

    to: str
    subject: str
    text: str
    html: str | None = None
    message_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _single_line("to", self.to)
        _single_line("subject", self.subject)
        if self.to.count("@") != 1 or not all(self.to.split("@")):
            raise ValueError(f"not an e-mail address: {self.to!r}")
        if self.message_id is not None:
            _single_line("message_id", self.message_id)
            if not (self.message_id.startswith("<") and self.message_id.endswith(">")):
                raise ValueError("message_id must look like <local@domain>")
        for name, value in self.headers.items():
            _single_line(f"header {name}", name + value)
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name} is set by the mailer")

    @property
    def recipient_domain(self) -> str:
        """The part of the address that is safe to log."""
        return self.to.rsplit("@", 1)[-1].lower()


@runtime_checkable
class Mailer(Protocol):
    """Delivers one mail; returns its Message-ID (the given one, or the one it made)."""

    async def send(self, mail: OutgoingMail) -> str: ...
