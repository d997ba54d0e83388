"""In-memory DNS for mock mode and workflow tests: a dict plus failure injection.

``InMemoryDNSVerifier`` answers from the same dict, so a mock-mode bootstrap verifies
exactly what it published, and a test can break either side with ``fail_next``.
"""

from __future__ import annotations

from dataclasses import dataclass

from a4c_worker.providers.dns.protocol import (
    name_based_record_id,
    normalize_name,
    normalize_target,
    normalize_type,
)
from a4c_worker.providers.errors import DNSRecordConflict
from a4c_worker.providers.faults import FaultInjector


@dataclass(frozen=True)
class MemoryRecord:
    record_id: str
    fqdn: str
    record_type: str
    target: str
    ttl: int


class InMemoryDNSProvider(FaultInjector):
    """Keeps one record per (name, type); ``operations`` logs every call for assertions.

    ``records`` may be written directly to stand for a record someone else published.
    """

    def __init__(self) -> None:
        super().__init__(normalize_name)
        self.records: dict[tuple[str, str], MemoryRecord] = {}
        self.operations: list[tuple[str, str, str]] = []

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        name, rtype = normalize_name(fqdn), normalize_type(record_type)
        self.operations.append(("ensure", name, rtype))
        self.raise_injected(name)
        wanted = normalize_target(target, rtype)
        existing = self.records.get((name, rtype))
        if existing is not None:
            if existing.target != wanted:
                raise DNSRecordConflict(f"{name} already has {rtype} {existing.target}")
            return existing.record_id
        record = MemoryRecord(
            record_id=name_based_record_id("memory", name, rtype),
            fqdn=name,
            record_type=rtype,
            target=wanted,
            ttl=ttl,
        )
        self.records[(name, rtype)] = record
        return record.record_id

    async def remove_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        name, rtype = normalize_name(fqdn), normalize_type(record_type)
        self.operations.append(("remove", name, rtype))
        self.raise_injected(name)
        existing = self.records.get((name, rtype))
        if existing is None or existing.target != normalize_target(target, rtype):
            return False
        if record_id is not None and record_id != existing.record_id:
            return False
        del self.records[(name, rtype)]
        return True

    def lookup(self, fqdn: str, record_type: str = "CNAME") -> MemoryRecord | None:
        return self.records.get((normalize_name(fqdn), normalize_type(record_type)))


class InMemoryDNSVerifier(FaultInjector):
    """Verifies against an :class:`InMemoryDNSProvider`'s records."""

    def __init__(self, provider: InMemoryDNSProvider) -> None:
        super().__init__(normalize_name)
        self.provider = provider

    async def verify(self, fqdn: str, target: str, *, record_type: str = "CNAME") -> bool:
        self.raise_injected(normalize_name(fqdn))
        record = self.provider.lookup(fqdn, record_type)
        return record is not None and record.target == normalize_target(target, record_type)


class StaticDNSVerifier(FaultInjector):
    """Gives the same answer for every name: mock mode with a provider that keeps nothing."""

    def __init__(self, answer: bool = True) -> None:
        super().__init__(normalize_name)
        self.answer = answer

    async def verify(self, fqdn: str, target: str, *, record_type: str = "CNAME") -> bool:
        self.raise_injected(normalize_name(fqdn))
        return self.answer
