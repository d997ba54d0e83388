"""Cloudflare provider against a loopback HTTP server speaking the v4 DNS records API."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr
from tests.support import free_port
from tests.worker.providers.fake_cloudflare import TOKEN, ZONE_ID, FakeCloudflare

from a4c_worker.providers.dns import CloudflareDNSProvider, CloudflareSettings
from a4c_worker.providers.errors import PermanentProviderError, TransientProviderError


def provider_for(
    api: FakeCloudflare, token: str = TOKEN, **overrides: object
) -> CloudflareDNSProvider:
    values: dict[str, object] = {
        "api_token": SecretStr(token),
        "zone_id": ZONE_ID,
        "base_url": api.base_url,
        "timeout": 3,
    }
    values.update(overrides)
    return CloudflareDNSProvider(CloudflareSettings.model_validate(values))


def unique_name() -> str:
    return f"org-{uuid.uuid4().hex[:10]}.example.com"


async def test_ensure_creates_once_and_returns_the_same_id(cloudflare_api: FakeCloudflare) -> None:
    name = unique_name()
    provider = provider_for(cloudflare_api)

    first = await provider.ensure_record(name + ".", "app.example.com.", ttl=120)
    second = await provider.ensure_record(name, "APP.example.com")

    assert first == second
    [record] = cloudflare_api.named(name)
    assert record == {
        "id": first,
        "type": "CNAME",
        "name": name,
        "content": "app.example.com",
        "ttl": 120,
        "proxied": False,
    }


async def test_remove_by_name_then_again(cloudflare_api: FakeCloudflare) -> None:
    name = unique_name()
    provider = provider_for(cloudflare_api)
    await provider.ensure_record(name, "app.example.com")

    assert await provider.remove_record(name, "app.example.com") is True
    assert await provider.remove_record(name, "app.example.com") is False
    assert cloudflare_api.named(name) == []


async def test_remove_by_id_twice(cloudflare_api: FakeCloudflare) -> None:
    name = unique_name()
    provider = provider_for(cloudflare_api)
    record_id = await provider.ensure_record(name, "app.example.com")

    assert await provider.remove_record(name, "app.example.com", record_id=record_id) is True
    assert await provider.remove_record(name, "app.example.com", record_id=record_id) is False


async def test_a_different_cname_is_a_conflict(cloudflare_api: FakeCloudflare) -> None:
    name = unique_name()
    provider = provider_for(cloudflare_api)
    await provider.ensure_record(name, "first.example.com")
    with pytest.raises(PermanentProviderError, match="already has CNAME"):
        await provider.ensure_record(name, "second.example.com")


async def test_bad_token_is_permanent_and_not_echoed(cloudflare_api: FakeCloudflare) -> None:
    with pytest.raises(PermanentProviderError, match="403") as caught:
        await provider_for(cloudflare_api, token="wrong-token-xyz").ensure_record(
            unique_name(), "app.example.com"
        )
    assert caught.value.retryable is False
    assert "wrong-token-xyz" not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_rate_limit_and_server_errors_are_transient(
    cloudflare_api: FakeCloudflare, status: int
) -> None:
    cloudflare_api.answer_next(status)
    with pytest.raises(TransientProviderError, match=str(status)):
        await provider_for(cloudflare_api).ensure_record(unique_name(), "app.example.com")


async def test_unreachable_api_is_transient(cloudflare_api: FakeCloudflare) -> None:
    provider = provider_for(cloudflare_api, base_url=f"http://127.0.0.1:{free_port()}/v4")
    with pytest.raises(TransientProviderError, match="unreachable"):
        await provider.remove_record(unique_name(), "app.example.com")


def publish_foreign(api: FakeCloudflare, name: str, rtype: str, content: str) -> str:
    """A record someone else created in the zone (the dashboard, another tool)."""
    record = {"id": uuid.uuid4().hex, "type": rtype, "name": name, "content": content}
    with api.lock:
        api.records[record["id"]] = record
    return record["id"]


@pytest.mark.parametrize(
    ("rtype", "theirs", "ours"),
    [("CNAME", "victim.example.com", "app.example.com"), ("A", "192.0.2.99", "192.0.2.10")],
)
async def test_other_data_at_the_name_is_a_conflict(
    cloudflare_api: FakeCloudflare, rtype: str, theirs: str, ours: str
) -> None:
    name = unique_name()
    publish_foreign(cloudflare_api, name, rtype, theirs)
    with pytest.raises(PermanentProviderError) as caught:
        await provider_for(cloudflare_api).ensure_record(name, ours, record_type=rtype)
    assert type(caught.value).__name__ == "DNSRecordConflict"
    assert f"{name} already has {rtype} {theirs}" in str(caught.value)
    assert [r["content"] for r in cloudflare_api.named(name)] == [theirs]


async def test_remove_leaves_a_record_it_did_not_create_alone(
    cloudflare_api: FakeCloudflare,
) -> None:
    name = unique_name()
    theirs = publish_foreign(cloudflare_api, name, "CNAME", "victim.example.com")
    provider = provider_for(cloudflare_api)
    assert await provider.remove_record(name, "app.example.com") is False
    assert await provider.remove_record(name, "victim.example.com", record_id="ours") is False
    assert [r["id"] for r in cloudflare_api.named(name)] == [theirs]


async def test_racing_create_is_resolved_by_a_second_lookup() -> None:
    """Another writer creates the record between our lookup and our create."""
    name = unique_name()
    lookups = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal lookups
        if request.method == "GET":
            lookups += 1
            found = [{"id": "theirs", "content": "app.example.com"}] if lookups > 1 else []
            return httpx.Response(200, json={"success": True, "errors": [], "result": found})
        assert request.method == "POST"
        error = {"code": 81057, "message": "The record already exists."}
        return httpx.Response(400, json={"success": False, "errors": [error], "result": None})

    settings = CloudflareSettings(api_token=SecretStr(TOKEN), zone_id=ZONE_ID)
    provider = CloudflareDNSProvider(settings, transport=httpx.MockTransport(handle))
    assert await provider.ensure_record(name, "app.example.com") == "theirs"
    assert lookups == 2


async def test_non_json_error_page_is_mapped() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>bad gateway"))
    settings = CloudflareSettings(api_token=SecretStr(TOKEN), zone_id=ZONE_ID)
    with pytest.raises(TransientProviderError, match="502"):
        await CloudflareDNSProvider(settings, transport=transport).remove_record(
            unique_name(), "app.example.com"
        )
