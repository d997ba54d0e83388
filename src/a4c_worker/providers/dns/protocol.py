"""The two DNS seams the worker depends on: publishing a record and checking it resolves.

Both are idempotent by contract so a Temporal activity can be retried after it acted:
``ensure_record`` twice leaves one record and returns the same id, ``remove_record``
on a missing record is a no-op that returns ``False``. Neither touches data it was not
given: a name holding other data is a ``DNSRecordConflict`` for ``ensure_record``, and
``remove_record`` deletes only the exact record (name, type, data and, when given, the
provider's record id), never the rest of the record set.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class DNSProvider(Protocol):
    """Creates and deletes records in the organization's zone."""

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        """Create ``fqdn`` → ``target`` unless exactly it exists; return the record id.

        Other data of ``record_type`` at ``fqdn`` raises ``DNSRecordConflict``.
        """
        ...

    async def remove_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        """Delete exactly ``fqdn`` → ``target`` (with ``record_id``, if given) if present.

        ``True`` when something was deleted; any other record is left alone.
        """
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
