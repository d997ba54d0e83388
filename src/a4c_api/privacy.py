"""What the front door shows of a person's address when it must not show all of it."""

from __future__ import annotations


def mask_email(address: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``: enough to recognise one's own
    address, not enough to harvest it from a forwarded link or another member's view."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"
