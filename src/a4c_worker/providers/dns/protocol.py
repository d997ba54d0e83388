"""The two DNS seams the worker depends on: publishing a record and checking it resolves.

Both are idempotent by contract so a Temporal activity can be retried after it acted:
``ensure_record`` twice leaves one record and returns the same id, ``remove_record``
on a missing record is a no-op that returns ``False``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class DNSProvider(Protocol):
    """Creates and deletes records in the organization's zone."""

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        """Create ``fqdn`` → ``target`` unless it already exists; return the record id."""
        ...

    async def remove_record(
        self, fqdn: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        """Delete the record if present; ``True`` when something was deleted."""
        ...


@runtime_checkable
class DNSVerifier(Protocol):
    """Checks that a record is visible at the zone's authoritative servers."""

    async def verify(self, fqdn: str, target: str, *, record_type: str = "CNAME") -> bool:
        """``True`` when ``fqdn`` resolves to ``target``; ``False`` when absent or different."""
        ...


def normalize_name(name: str) -> str:
    """Lower-case, absolute (trailing dot) form used to compare names across providers."""
    name = name.strip().lower()
    if not name:
        raise ValueError("a DNS name must not be empty")
    return name if name.endswith(".") else name + "."


def normalize_type(record_type: str) -> str:
    return record_type.strip().upper()


def normalize_target(target: str, record_type: str) -> str:
    """Names (CNAME, NS, ...) compare case-insensitively and absolute; other data as given."""
    if normalize_type(record_type) in {"CNAME", "NS", "PTR", "DNAME"}:
        return normalize_name(target)
    return target.strip()


def name_based_record_id(prefix: str, fqdn: str, record_type: str) -> str:
    """A record id derived from the name alone, for providers that keep no ids of their own."""
    return f"{prefix}:{normalize_type(record_type)}:{normalize_name(fqdn)}"
