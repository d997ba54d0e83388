"""In-memory and logging DNS providers and the mock-mode verifiers."""

from __future__ import annotations

import logging

import pytest

from a4c_worker.providers.dns import (
    DNSProvider,
    DNSVerifier,
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    LoggingDNSProvider,
    StaticDNSVerifier,
)
from a4c_worker.providers.errors import PermanentProviderError, TransientProviderError


async def test_in_memory_is_idempotent_and_verifiable() -> None:
    dns = InMemoryDNSProvider()
    verifier = InMemoryDNSVerifier(dns)
    assert not await verifier.verify("org.zone.test", "app.example.com")

    first = await dns.ensure_record("Org.Zone.Test", "app.example.com")
    second = await dns.ensure_record("org.zone.test.", "app.example.com.")

    assert first == second
    assert len(dns.records) == 1
    assert await verifier.verify("org.zone.test", "APP.example.com")
    assert not await verifier.verify("org.zone.test", "other.example.com")
    assert await dns.remove_record("org.zone.test", "app.example.com") is True
    assert await dns.remove_record("org.zone.test", "app.example.com") is False
    assert [op for op, _, _ in dns.operations] == ["ensure", "ensure", "remove", "remove"]


async def test_in_memory_other_data_is_a_conflict_and_is_never_removed() -> None:
    dns = InMemoryDNSProvider()
    theirs = await dns.ensure_record("shop.zone.test", "victim.example.com")

    with pytest.raises(PermanentProviderError) as caught:
        await dns.ensure_record("shop.zone.test", "app.example.com")
    assert type(caught.value).__name__ == "DNSRecordConflict"
    assert "shop.zone.test. already has CNAME victim.example.com." in str(caught.value)

    assert await dns.remove_record("shop.zone.test", "app.example.com") is False
    assert await dns.remove_record("shop.zone.test", "victim.example.com", record_id="x") is False
    record = dns.lookup("shop.zone.test")
    assert record is not None and record.record_id == theirs


async def test_in_memory_failures_are_injectable() -> None:
    dns = InMemoryDNSProvider()
    dns.fail_next(TransientProviderError("SERVFAIL"), times=2)
    for _ in range(2):
        with pytest.raises(TransientProviderError):
            await dns.ensure_record("a.zone.test", "t.example.com")
    await dns.ensure_record("a.zone.test", "t.example.com")

    dns.fail_for("b.zone.test", PermanentProviderError("REFUSED"))
    with pytest.raises(PermanentProviderError):
        await dns.remove_record("b.zone.test.", "t.example.com")
    dns.clear_failures()
    assert await dns.remove_record("b.zone.test", "t.example.com") is False


async def test_verifier_failures_are_injectable() -> None:
    verifier = StaticDNSVerifier(answer=False)
    verifier.fail_next(TransientProviderError("timeout"))
    with pytest.raises(TransientProviderError):
        await verifier.verify("a.zone.test", "t.example.com")
    assert await verifier.verify("a.zone.test", "t.example.com") is False
    assert await StaticDNSVerifier().verify("a.zone.test", "t.example.com") is True


async def test_logging_provider_keeps_nothing_but_returns_stable_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    dns = LoggingDNSProvider()
    assert await dns.ensure_record("a.zone.test", "t.example.com") == await dns.ensure_record(
        "A.zone.test.", "t.example.com"
    )
    assert await dns.remove_record("a.zone.test", "t.example.com") is False
    assert "a.zone.test." in caplog.text


def test_implementations_satisfy_the_protocols() -> None:
    memory = InMemoryDNSProvider()
    for provider in (memory, LoggingDNSProvider()):
        assert isinstance(provider, DNSProvider)
    for verifier in (InMemoryDNSVerifier(memory), StaticDNSVerifier()):
        assert isinstance(verifier, DNSVerifier)
