"""The outbound client against real local servers: statuses, limits and the SSRF rules.

The receiver is a real uvicorn server on 127.0.0.1 (``tests.servers.http``), which the
tests reach with ``allow_private=True``; with ``allow_private=False`` the same server
must never see a request. The hanging endpoint is a listening socket that is never
accepted; the TLS endpoint an asyncio TLS server with the test CA's certificate. A fake
resolver stands in for DNS where the test is about the check's logic (rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from a4c_outbound.transport import (
    DeliveryFailed,
    DestinationRefused,
    IPAddress,
    NoResponseInTime,
    Outbound,
    OutboundPolicy,
    Resolver,
    UnsafeURL,
    check_destination,
    check_url,
    system_resolver,
)
from a4c_webhooks.schedule import parse_retry_after
from a4c_webhooks.signing import delivery_headers, new_secret
from tests.servers.http import ServedApp, serve_asgi
from tests.servers.tlsproxy import SERVER_NAME, make_pki
from tests.support import free_port

LOCAL = OutboundPolicy(allow_http=True, allow_private=True, timeout=5.0)
PUBLIC_ONLY = OutboundPolicy(allow_http=True, allow_private=False, timeout=5.0)
STRICT = OutboundPolicy(allow_http=False, allow_private=False)
SECRET = new_secret()
BODY = b'{"type":"ping"}'
TOKEN = "query-token-Xy7-must-not-leak"  # a marker, searched for in errors
HUGE_CHUNK = b"x" * 65536
HUGE_CHUNKS = 64  # 4 MiB


@dataclass
class Receiver:
    served: ServedApp
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.served.base_url.rsplit(":", 1)[1])

    def url(self, path: str) -> str:
        return self.served.url(path)

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.seen]


def _receiver_app(seen: list[tuple[str, dict[str, str], bytes]]) -> Starlette:
    async def record(request: Request) -> None:
        seen.append((request.url.path, dict(request.headers), await request.body()))

    async def ok(request: Request) -> Response:
        await record(request)
        return Response(b'{"received":true}', media_type="application/json")

    async def status(request: Request) -> Response:
        await record(request)
        code = int(request.path_params["code"])
        headers = {"retry-after": "120"} if code == 429 else {}
        return Response(b"no", status_code=code, headers=headers)

    async def moved(request: Request) -> Response:
        await record(request)
        return RedirectResponse("/landed", status_code=302)

    async def huge(request: Request) -> Response:
        await record(request)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(HUGE_CHUNKS):
                yield HUGE_CHUNK

        return StreamingResponse(chunks())

    return Starlette(
        routes=[
            Route("/ok", ok, methods=["POST"]),
            Route("/landed", ok, methods=["POST", "GET"]),
            Route("/status/{code}", status, methods=["POST"]),
            Route("/moved", moved, methods=["POST"]),
            Route("/huge", huge, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[Receiver]:
    seen: list[tuple[str, dict[str, str], bytes]] = []
    with serve_asgi(_receiver_app(seen)) as served:
        yield Receiver(served, seen)


@pytest.fixture
def receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.seen.clear()
    return receiver_server


def headers() -> dict[str, str]:
    return delivery_headers([SECRET], "evt_1", int(time.time()), BODY)


def resolving_to(*answers: Sequence[str]) -> tuple[list[str], Resolver]:
    """A fake DNS: the n-th lookup gets ``answers[n]`` (the last one from then on)."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        answer = answers[min(len(asked), len(answers)) - 1]
        return [ipaddress.ip_address(a) for a in answer]

    return asked, resolve


async def test_a_delivery_is_posted_signed_and_its_answer_read(receiver: Receiver) -> None:
    sent = headers()
    async with Outbound(LOCAL) as outbound:
        response = await outbound.post(receiver.url("/ok"), sent, BODY)

    assert response.status == 200
    assert response.body == b'{"received":true}'
    assert response.retry_after is None
    assert not response.truncated
    assert 0 < response.elapsed < LOCAL.timeout
    [(path, got, body)] = receiver.seen
    assert (path, body) == ("/ok", BODY)
    assert got["host"] == f"127.0.0.1:{receiver.port}"
    assert got["accept-encoding"] == "identity"
    assert got["user-agent"].startswith("a4c-webhooks/")
    assert Webhook(SECRET).verify(body, got) == {"type": "ping"}


@pytest.mark.parametrize("code", [500, 410, 503, 400])
async def test_an_error_status_is_a_response_not_an_exception(
    receiver: Receiver, code: int
) -> None:
    async with Outbound(LOCAL) as outbound:
        response = await outbound.post(receiver.url(f"/status/{code}"), headers(), BODY)
    assert (response.status, response.body) == (code, b"no")
    assert receiver.paths() == [f"/status/{code}"]


async def test_a_429_carries_its_retry_after(receiver: Receiver) -> None:
    async with Outbound(LOCAL) as outbound:
        response = await outbound.post(receiver.url("/status/429"), headers(), BODY)
    assert response.status == 429
    assert response.retry_after == "120"
    assert parse_retry_after(response.retry_after, datetime.now(UTC)) == 120.0


async def test_a_redirect_is_not_followed(receiver: Receiver) -> None:
    async with Outbound(LOCAL) as outbound:
        response = await outbound.post(receiver.url("/moved"), headers(), BODY)
    assert response.status == 302
    assert receiver.paths() == ["/moved"]


async def test_a_huge_answer_is_read_up_to_the_cap_only(receiver: Receiver) -> None:
    policy = OutboundPolicy(allow_http=True, allow_private=True, max_response_bytes=1000)
    async with Outbound(policy) as outbound:
        response = await outbound.post(receiver.url("/huge"), headers(), BODY)
        assert response.status == 200
        assert response.body == b"x" * 1000
        assert response.truncated
        # The connection cut mid-body is not reused: the next delivery still works.
        again = await outbound.post(receiver.url("/ok"), headers(), BODY)
        assert again.status == 200


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that completes TCP handshakes (the backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_hanging_endpoint_hits_the_timeout(silent_port: int, method: str) -> None:
    policy = OutboundPolicy(allow_http=True, allow_private=True, timeout=0.5)
    url = f"http://127.0.0.1:{silent_port}/hooks?token={TOKEN}"
    started = time.monotonic()
    async with Outbound(policy) as outbound:
        with pytest.raises(NoResponseInTime) as failed:
            if method == "POST":
                await outbound.post(url, headers(), BODY)
            else:
                await outbound.get(url)
    assert time.monotonic() - started < 3
    assert f"http://127.0.0.1:{silent_port}" in failed.value.reason
    assert "0.5 s" in failed.value.reason
    assert TOKEN not in str(failed.value)
    assert "/hooks" not in str(failed.value)


async def test_a_closed_port_fails_without_naming_path_query_or_headers() -> None:
    port = free_port()
    sent = headers()
    async with Outbound(LOCAL) as outbound:
        with pytest.raises(DeliveryFailed) as failed:
            await outbound.post(f"http://127.0.0.1:{port}/in?token={TOKEN}", sent, BODY)
    assert not isinstance(failed.value, DestinationRefused)
    reason = str(failed.value)
    assert reason.startswith(f"cannot connect to http://127.0.0.1:{port}")
    assert TOKEN not in reason and "/in" not in reason
    assert sent["webhook-signature"] not in reason


async def test_loopback_is_refused_unless_private_addresses_are_allowed(
    receiver: Receiver,
) -> None:
    async with Outbound(PUBLIC_ONLY) as outbound:
        with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is loopback"):
            await outbound.post(receiver.url("/ok"), headers(), BODY)
    assert receiver.seen == []
    with pytest.raises(UnsafeURL, match="loopback"):
        check_url(receiver.url("/ok"), PUBLIC_ONLY)

    check_url(receiver.url("/ok"), LOCAL)
    async with Outbound(LOCAL) as outbound:
        assert (await outbound.post(receiver.url("/ok"), headers(), BODY)).status == 200
    assert receiver.paths() == ["/ok"]


async def test_a_get_is_held_to_the_same_rules(receiver: Receiver) -> None:
    async with Outbound(PUBLIC_ONLY) as outbound:
        with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1 is loopback"):
            await outbound.get(receiver.url("/landed"))
    assert receiver.seen == []
    async with Outbound(LOCAL) as outbound:
        answer = await outbound.get(receiver.url("/landed"), {"accept": "application/json"})
    assert answer.status == 200 and answer.body == b'{"received":true}'
    [(path, sent, body)] = receiver.seen
    assert path == "/landed" and sent["accept"] == "application/json" and body == b""


async def test_http_is_refused_unless_allowed(receiver: Receiver) -> None:
    strict_local = OutboundPolicy(allow_http=False, allow_private=True)
    with pytest.raises(UnsafeURL, match="https is required"):
        check_url(receiver.url("/ok"), strict_local)
    async with Outbound(strict_local) as outbound:
        with pytest.raises(DestinationRefused, match="https is required"):
            await outbound.post(receiver.url("/ok"), headers(), BODY)
    assert receiver.seen == []


async def test_a_name_resolving_to_loopback_is_refused(receiver: Receiver) -> None:
    local_url = f"http://localhost:{receiver.port}/ok"
    with pytest.raises(UnsafeURL, match="localhost is loopback"):
        check_url(local_url, PUBLIC_ONLY)
    with pytest.raises(UnsafeURL):
        await check_destination(local_url, PUBLIC_ONLY)
    # The operating system's own answer for localhost, given to another name: refused
    # for the address it resolves to, when checked and when connecting.
    assert ipaddress.ip_address("127.0.0.1") in await system_resolver("localhost", 80)

    async def as_localhost(host: str, port: int) -> list[IPAddress]:
        return await system_resolver("localhost", port)

    url = f"http://hooks.example.com:{receiver.port}/ok"
    check_url(url, PUBLIC_ONLY)
    with pytest.raises(
        UnsafeURL, match=r"hooks\.example\.com resolves to 127\.0\.0\.1, which is loopback"
    ):
        await check_destination(url, PUBLIC_ONLY, resolver=as_localhost)
    async with Outbound(PUBLIC_ONLY, resolver=as_localhost) as outbound:
        with pytest.raises(DestinationRefused, match="loopback"):
            await outbound.post(url, headers(), BODY)
    assert receiver.seen == []
    # Allowed, the connection goes to the resolved address with the original Host.
    assert await check_destination(url, LOCAL, resolver=as_localhost)
    async with Outbound(LOCAL, resolver=as_localhost) as outbound:
        assert (await outbound.post(url, headers(), BODY)).status == 200
    [(_, got, _)] = receiver.seen
    assert got["host"] == f"hooks.example.com:{receiver.port}"


async def test_ipv4_mapped_ipv6_is_judged_as_the_ipv4_it_carries(receiver: Receiver) -> None:
    for address in ("::ffff:127.0.0.1", "::ffff:10.1.2.3", "::ffff:169.254.169.254"):
        with pytest.raises(UnsafeURL, match="carries the IPv4"):
            check_url(f"https://[{address}]/hooks", STRICT)
    check_url("https://[::ffff:93.184.215.14]/hooks", STRICT)

    _, mapped = resolving_to(["::ffff:127.0.0.1"])
    async with Outbound(PUBLIC_ONLY, resolver=mapped) as outbound:
        with pytest.raises(
            DestinationRefused,
            match=r"to ::ffff:7f00:1, which is loopback \(it carries the IPv4 127\.0\.0\.1\)",
        ):
            await outbound.post(f"http://hooks.example.com:{receiver.port}/ok", headers(), BODY)
    assert receiver.seen == []


async def test_dns_rebinding_is_refused_at_connect_time(receiver: Receiver) -> None:
    asked, rebinding = resolving_to(["93.184.215.14"], ["127.0.0.1"])
    url = f"http://rebind.example.com:{receiver.port}/ok"

    checked = await check_destination(url, PUBLIC_ONLY, resolver=rebinding)
    assert checked == [ipaddress.ip_address("93.184.215.14")]
    async with Outbound(PUBLIC_ONLY, resolver=rebinding) as outbound:
        with pytest.raises(DestinationRefused, match=r"resolves to 127\.0\.0\.1, which is loop"):
            await outbound.post(url, headers(), BODY)
    assert asked == ["rebind.example.com", "rebind.example.com"]
    assert receiver.seen == []


async def test_one_refused_address_among_public_ones_refuses_the_name(
    receiver: Receiver,
) -> None:
    _, mixed = resolving_to(["93.184.215.14", "10.0.0.7"])
    with pytest.raises(UnsafeURL, match=r"resolves to 10\.0\.0\.7, which is private"):
        await check_destination("https://mixed.example.com/", STRICT, resolver=mixed)


async def test_a_name_that_does_not_resolve() -> None:
    async def nowhere(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnsafeURL, match="does not resolve"):
        await check_destination("https://gone.example.com/", STRICT, resolver=nowhere)
    async with Outbound(STRICT, resolver=nowhere) as outbound:
        with pytest.raises(DeliveryFailed, match=r"gone\.example\.com does not resolve") as failed:
            await outbound.post("https://gone.example.com/?token=" + TOKEN, headers(), BODY)
    assert not isinstance(failed.value, DestinationRefused)
    assert TOKEN not in str(failed.value)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "https is required"),
        ("http://hooks.example.com/", "https is required"),
        ("https://user:pw@hooks.example.com/", "user info in URL is not allowed"),
        ("https://hooks.example.com:22/", "port 22 is not allowed"),
        ("https://hooks.example.com:0/", "port 0 is not allowed"),
        ("https:///path", "no host"),
        ("https://exa mple.com/", "not a valid name"),
        ("https://a..b.example/", "not a valid name"),
        ("https://-a.example/", "not a valid name"),
        ("https://hooks.example.com:99999/", "port 99999 is not allowed"),
        ("https://hooks.example.com\\@evil.example/", "user info"),
        ("https://hooks.example.com/\n", "the URL is not valid"),
        ("https://10.0.0.1/", "the address 10.0.0.1 is private"),
        ("https://169.254.169.254/latest", "is link-local"),
        ("https://100.64.0.1/", "is not public"),
        ("https://0.0.0.0/", "is unspecified"),
        ("https://224.0.0.1/", "is multicast"),
        ("https://[::1]/", "is loopback"),
        ("https://[fe80::1]/", "is link-local"),
        ("https://[fc00::1]/", "is private"),
        ("https://[2002:7f00:1::]/", "carries the IPv4 127.0.0.1"),
        ("https://[64:ff9b::a00:1]/", "carries the IPv4 10.0.0.1"),
        ("https://2130706433/", "neither a name nor a valid IP address"),
        ("https://0x7f.1/", "neither a name nor a valid IP address"),
        ("https://127.1/", "neither a name nor a valid IP address"),
        ("https://app.localhost/", "loopback"),
    ],
)
def test_check_url_refusals(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url, STRICT)


@pytest.mark.parametrize(
    "url",
    [
        f"https://hooks.example.com/in?token={TOKEN}",
        "https://hooks.example.com:8443/",
        "https://93.184.215.14/",
        "https://[2606:4700::1]/",
        "https://[64:ff9b::5db8:d70e]/",
        "https://bücher.example/hooks",
    ],
)
def test_check_url_accepts_public_https(url: str) -> None:
    check_url(url, STRICT)


async def _tls_endpoint(
    context: ssl.SSLContext, names: list[str | None]
) -> tuple[asyncio.Server, int]:
    """An HTTPS endpoint answering 204 to anything; ``names`` gets each SNI it sees."""

    def remember(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        names.append(name)

    context.sni_callback = remember

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    return server, int(server.sockets[0].getsockname()[1])


async def test_tls_verifies_and_names_the_original_host(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(pki.server_cert, pki.server_key)
    names: list[str | None] = []
    server, port = await _tls_endpoint(served, names)
    _, to_local = resolving_to(["127.0.0.1"])
    try:
        trusting = ssl.create_default_context(cafile=str(pki.ca))
        async with Outbound(LOCAL, resolver=to_local, ssl_context=trusting) as outbound:
            response = await outbound.post(f"https://{SERVER_NAME}:{port}/", headers(), BODY)
            assert response.status == 204
            assert names == [SERVER_NAME]
            # The same server under another name: its certificate does not name it.
            with pytest.raises(DeliveryFailed, match="cannot connect to https://other"):
                await outbound.post(f"https://other.a4c.test:{port}/", headers(), BODY)
        other = ssl.create_default_context(cafile=str(pki.other_ca))
        async with Outbound(LOCAL, resolver=to_local, ssl_context=other) as outbound:
            with pytest.raises(DeliveryFailed, match="certificate verify failed"):
                await outbound.post(f"https://{SERVER_NAME}:{port}/", headers(), BODY)
    finally:
        server.close()
        await server.wait_closed()
