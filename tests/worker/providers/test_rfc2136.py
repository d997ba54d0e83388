"""RFC 2136 provider against a real BIND, checked through the resolver-based verifier."""

from __future__ import annotations

import base64
import uuid

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import pytest
from pydantic import SecretStr, ValidationError
from tests.servers.bind import BindServer
from tests.support import free_port

from a4c_domain.errors import DomainOutsideZone
from a4c_worker.providers.dns import (
    Nameserver,
    ResolverDNSVerifier,
    ResolverSettings,
    RFC2136DNSProvider,
    RFC2136Settings,
)
from a4c_worker.providers.errors import (
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)


def settings_for(bind: BindServer, **overrides: object) -> RFC2136Settings:
    values: dict[str, object] = {
        "server": bind.host,
        "port": bind.port,
        "zone": bind.zone,
        "key_name": bind.key_name,
        "key_secret": SecretStr(bind.secret),
        "key_algorithm": bind.algorithm,
        "timeout": 5,
    }
    values.update(overrides)
    return RFC2136Settings.model_validate(values)


@pytest.fixture
def provider(bind_server: BindServer) -> RFC2136DNSProvider:
    return RFC2136DNSProvider(settings_for(bind_server))


@pytest.fixture
def verifier(bind_server: BindServer) -> ResolverDNSVerifier:
    nameserver = Nameserver(host=bind_server.host, port=bind_server.port)
    return ResolverDNSVerifier(ResolverSettings(nameservers=[nameserver], timeout=3))


def unique_fqdn(bind: BindServer) -> str:
    return bind.fqdn(f"org-{uuid.uuid4().hex[:10]}")


def served_targets(bind: BindServer, fqdn: str, rdtype: str = "CNAME") -> list[str]:
    """What BIND answers right now, asked over TCP without going through the provider."""
    response = dns.query.tcp(dns.message.make_query(fqdn, rdtype), bind.host, port=bind.port)
    return [rdata.to_text() for rrset in response.answer for rdata in rrset]


def publish_foreign(bind: BindServer, fqdn: str, rdtype: str, data: str) -> None:
    """Another party (an operator, another tool) adds a record, not through the provider."""
    bind.add_record(fqdn, rdtype, data)


async def test_ensure_creates_a_record_that_resolves(
    bind_server: BindServer, provider: RFC2136DNSProvider, verifier: ResolverDNSVerifier
) -> None:
    fqdn = unique_fqdn(bind_server)
    assert not await verifier.verify(fqdn, "app.example.com")

    record_id = await provider.ensure_record(fqdn, "app.example.com", ttl=120)

    assert served_targets(bind_server, fqdn) == ["app.example.com."]
    assert await verifier.verify(fqdn, "app.example.com")
    assert await verifier.verify(fqdn.upper(), "APP.example.com.")
    assert not await verifier.verify(fqdn, "other.example.com")
    assert record_id == f"{fqdn} CNAME app.example.com."


async def test_ensure_twice_keeps_one_record_and_the_same_id(
    bind_server: BindServer, provider: RFC2136DNSProvider
) -> None:
    fqdn = unique_fqdn(bind_server)
    first = await provider.ensure_record(fqdn, "app.example.com")
    second = await provider.ensure_record(fqdn, "app.example.com.")
    assert first == second
    assert served_targets(bind_server, fqdn) == ["app.example.com."]


async def test_remove_twice_deletes_once(
    bind_server: BindServer, provider: RFC2136DNSProvider, verifier: ResolverDNSVerifier
) -> None:
    fqdn = unique_fqdn(bind_server)
    await provider.ensure_record(fqdn, "app.example.com")

    assert await provider.remove_record(fqdn, "app.example.com") is True
    assert await provider.remove_record(fqdn, "app.example.com") is False
    assert served_targets(bind_server, fqdn) == []
    assert not await verifier.verify(fqdn, "app.example.com")


async def test_remove_by_id_deletes_only_that_record(
    bind_server: BindServer, provider: RFC2136DNSProvider
) -> None:
    fqdn = unique_fqdn(bind_server)
    ours = await provider.ensure_record(fqdn, "192.0.2.10", record_type="A")
    publish_foreign(bind_server, fqdn, "A", "192.0.2.11")
    assert sorted(served_targets(bind_server, fqdn, "A")) == ["192.0.2.10", "192.0.2.11"]

    assert await provider.remove_record(fqdn, "192.0.2.10", record_type="A", record_id=ours)
    assert not await provider.remove_record(fqdn, "192.0.2.10", record_type="A", record_id=ours)
    assert served_targets(bind_server, fqdn, "A") == ["192.0.2.11"]


@pytest.mark.parametrize(
    ("rdtype", "theirs", "ours"),
    [("CNAME", "first.example.com.", "second.example.com"), ("A", "192.0.2.99", "192.0.2.10")],
)
async def test_a_record_with_other_data_is_a_conflict_not_success_nor_an_addition(
    bind_server: BindServer, provider: RFC2136DNSProvider, rdtype: str, theirs: str, ours: str
) -> None:
    fqdn = unique_fqdn(bind_server)
    publish_foreign(bind_server, fqdn, rdtype, theirs)
    with pytest.raises(ProviderError) as caught:
        await provider.ensure_record(fqdn, ours, record_type=rdtype)
    # The class name is the activity's ApplicationError type: the workflow sees it.
    assert type(caught.value).__name__ == "DNSRecordConflict"
    assert caught.value.retryable is False
    assert f"{fqdn} already has {rdtype} {theirs}" in str(caught.value)
    assert served_targets(bind_server, fqdn, rdtype) == [theirs]


async def test_remove_leaves_a_record_it_did_not_create_alone(
    bind_server: BindServer, provider: RFC2136DNSProvider
) -> None:
    """Same name, other data: not ours, whatever the caller thinks; only exact data goes."""
    fqdn = unique_fqdn(bind_server)
    publish_foreign(bind_server, fqdn, "CNAME", "victim.example.com.")

    assert await provider.remove_record(fqdn, "app.example.com") is False
    ours_by_id = f"{fqdn} CNAME app.example.com."
    assert await provider.remove_record(fqdn, "app.example.com", record_id=ours_by_id) is False
    assert served_targets(bind_server, fqdn) == ["victim.example.com."]


async def test_the_zone_apex_is_refused(
    bind_server: BindServer, provider: RFC2136DNSProvider
) -> None:
    for call in (provider.ensure_record, provider.remove_record):
        with pytest.raises(DomainOutsideZone, match="apex") as caught:
            await call(bind_server.zone, "app.example.com")
        assert caught.value.retryable is False
    assert served_targets(bind_server, bind_server.zone) == []


async def test_wrong_tsig_secret_is_permanent(bind_server: BindServer) -> None:
    wrong = base64.b64encode(b"not the key, not the key, not it").decode()
    provider = RFC2136DNSProvider(settings_for(bind_server, key_secret=SecretStr(wrong)))
    fqdn = unique_fqdn(bind_server)
    with pytest.raises(PermanentProviderError) as caught:
        await provider.ensure_record(fqdn, "app.example.com")
    assert caught.value.retryable is False
    assert wrong not in str(caught.value)
    assert served_targets(bind_server, fqdn) == []


async def test_unknown_key_name_is_permanent(bind_server: BindServer) -> None:
    provider = RFC2136DNSProvider(settings_for(bind_server, key_name="nobody"))
    with pytest.raises(PermanentProviderError):
        await provider.ensure_record(unique_fqdn(bind_server), "app.example.com")


async def test_name_outside_the_zone_is_permanent(provider: RFC2136DNSProvider) -> None:
    with pytest.raises(DomainOutsideZone, match="not inside the zone"):
        await provider.ensure_record("org.elsewhere.example.", "app.example.com")


async def test_zone_the_server_does_not_serve_is_refused(bind_server: BindServer) -> None:
    provider = RFC2136DNSProvider(settings_for(bind_server, zone="other.internal."))
    with pytest.raises(PermanentProviderError, match=r"NOTAUTH|REFUSED|NOTZONE"):
        await provider.ensure_record("org.other.internal.", "app.example.com")


async def test_server_down_is_transient(bind_server: BindServer) -> None:
    provider = RFC2136DNSProvider(settings_for(bind_server, port=free_port(), timeout=1))
    with pytest.raises(TransientProviderError) as caught:
        await provider.ensure_record(unique_fqdn(bind_server), "app.example.com")
    assert caught.value.retryable is True


async def test_verifier_timeout_is_transient() -> None:
    silent = Nameserver(host="127.0.0.1", port=free_port())
    verifier = ResolverDNSVerifier(ResolverSettings(nameservers=[silent], timeout=0.5))
    with pytest.raises(TransientProviderError):
        await verifier.verify("org.test.a4c.internal.", "app.example.com")


def test_settings_reject_a_secret_that_is_not_base64() -> None:
    with pytest.raises(ValidationError, match="key_secret"):
        RFC2136Settings(server="127.0.0.1", zone="z.", key_name="k", key_secret=SecretStr("%%%"))


def test_settings_never_show_the_secret(bind_server: BindServer) -> None:
    settings = settings_for(bind_server)
    assert bind_server.secret not in repr(settings)
    assert bind_server.secret not in settings.model_dump_json()
    assert dns.rdatatype.from_text("CNAME")  # the record types used above parse
