"""Who the accept page's per-client limit counts: the peer, unless an explicitly trusted
proxy forwarded the request (none is trusted by default), and an IPv6 client by its /64
(one subscriber picks freely among 2^64 addresses)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from tests.api.conftest import a4c_api_run

from a4c_api.pages.throttle import AcceptThrottle, client_address
from a4c_api.settings import ApiSettings, load_settings
from a4c_worker.config import SettingsError

FORWARDED_CLIENT = "203.0.113.9"  # TEST-NET-3: never a real peer here
PROBE = "/forwarded-probe"  # a path of its own, to find its access-log line
DEVELOPMENT = {"API_MODE": "development"}  # production needs an OpenID provider and more


def _from(host: str) -> Request:
    return Request({"type": "http", "client": (host, 50000), "headers": []})


async def test_ipv6_clients_in_one_64_share_a_budget() -> None:
    throttle = AcceptThrottle("10/minute", "1/minute")
    one, neighbour = _from("2001:db8:1:2::1"), _from("2001:db8:1:2:ffff:ffff:ffff:fffe")
    assert await throttle.client(client_address(one)) is None
    refused = await throttle.client(client_address(neighbour))
    assert refused is not None, "another address of the same /64 got a budget of its own"
    assert await throttle.client(client_address(_from("2001:db8:1:3::1"))) is None  # next /64


def test_client_keys_are_canonical() -> None:
    assert client_address(_from("2001:DB8:0:0:1::7")) == "2001:db8::/64"
    assert client_address(_from("::ffff:192.0.2.7")) == "192.0.2.7"  # IPv4, mapped
    assert client_address(_from("192.0.2.7")) == "192.0.2.7"
    assert client_address(Request({"type": "http", "headers": []})) == "unknown"


def test_no_proxy_is_trusted_by_default() -> None:
    assert ApiSettings().api_forwarded_allow_ips == ()
    empty = load_settings({**DEVELOPMENT, "API_FORWARDED_ALLOW_IPS": ""})
    assert empty.api_forwarded_allow_ips == ()
    listed = load_settings(
        {**DEVELOPMENT, "API_FORWARDED_ALLOW_IPS": " 10.1.2.3, 10.42.0.0/16,fd00::/8 "}
    )
    assert listed.api_forwarded_allow_ips == ("10.1.2.3", "10.42.0.0/16", "fd00::/8")


@pytest.mark.parametrize("entry", ["*", "ingress.local", "10.0.0.0/33", "10.0.0.1/8"])
def test_a_trusted_proxy_is_an_address_or_a_network(entry: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**DEVELOPMENT, "API_FORWARDED_ALLOW_IPS": f"127.0.0.1,{entry}"})
    [(variable, problem)] = caught.value.problems
    assert variable == "API_FORWARDED_ALLOW_IPS"
    assert problem == f"{entry!r} is not an IP address or network (such as 10.42.0.0/16)"


def _client_seen(tmp_path: Path, **env: str) -> str:
    """The client address a4c-api logs for a request forwarded "for" FORWARDED_CLIENT."""
    with a4c_api_run(tmp_path, **env) as (process, base):
        httpx.get(base + PROBE, headers={"X-Forwarded-For": FORWARDED_CLIENT})
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    [line] = [
        json.loads(line)["message"]
        for line in stderr.splitlines()
        if '"uvicorn.access"' in line and PROBE in line
    ]
    return str(line.split(" - ")[0].rsplit(":", 1)[0])


def test_x_forwarded_for_from_an_untrusted_peer_is_ignored_by_default(tmp_path: Path) -> None:
    assert _client_seen(tmp_path) == "127.0.0.1"


def test_a_listed_proxy_is_believed(tmp_path: Path) -> None:
    assert _client_seen(tmp_path, API_FORWARDED_ALLOW_IPS="127.0.0.0/8") == FORWARDED_CLIENT
