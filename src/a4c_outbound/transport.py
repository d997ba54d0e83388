"""Requests to customers' URLs without becoming a way into our own network (SSRF).

A webhook endpoint's URL, an organization's identity provider: each is chosen by a
customer, so every request to it is checked:

- :func:`check_url` (no DNS, for the API when an endpoint is created or changed): https
  only (http when the policy allows it), no user info, a host that is a name or a public
  IP address (a numeric-looking name such as ``2130706433`` or ``0x7f.1`` is refused:
  resolvers read those as IP addresses), and port 80, 443 or 1024-65535;
- :func:`check_destination` also resolves the name and checks every address;
- :class:`Outbound` resolves the name **once, when it connects**, checks every address
  and connects to a checked one, so a name that answered a public address to an earlier
  check and answers ``127.0.0.1`` now (DNS rebinding) is refused. The ``Host`` header,
  TLS SNI and certificate verification keep the original name.

Refused addresses: private, loopback, link-local, multicast, reserved, unspecified and
any other non-global range (shared address space, documentation, benchmarking), IPv4
addresses inside IPv6 ones (IPv4-mapped, 6to4, the NAT64 well-known prefix) judged as
the IPv4 address they carry. ``allow_private`` lifts that rule (development, tests).

A response is read up to ``max_response_bytes`` only, a redirect is never followed (it is
just a status), and the whole request — resolving, connecting, sending, reading — is
bounded by ``timeout``. Network failures raise :class:`DeliveryFailed`, whose reason
names the URL by scheme and host only (a query string may hold a token) and carries no
header: the signature and anything else the caller sent stay out of it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) → its addresses; raises OSError when the name does not resolve.
Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]

DEFAULT_PORTS = {"https": 443, "http": 80}
ALLOWED_LOW_PORTS = frozenset({80, 443})
FIRST_HIGH_PORT = 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A last label of digits only, or hexadecimal: inet_aton and getaddrinfo read such a
# "name" (127.1, 2130706433, 0x7f.1) as an IPv4 address. No top-level domain looks so.
_NUMERIC_LABEL = re.compile(r"(?:\d+|0x[0-9a-f]*)", re.IGNORECASE)
_LOCALHOST = re.compile(r"(?:.*\.)?localhost", re.IGNORECASE)
# Letters, digits, '-' and '_' (found in real names), 1-63 per label, dot-separated.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?", re.IGNORECASE)
MAX_HOST_NAME = 253
MAX_PORT = 65535


class UnsafeURL(ValueError):
    """An endpoint URL the outbound rules refuse; ``reason`` says why, in the caller's terms."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DeliveryFailed(Exception):
    """A delivery got no HTTP response (connection, TLS, timeout, protocol error).

    ``reason`` names the endpoint by scheme and host only, and never a header.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DestinationRefused(DeliveryFailed):
    """The delivery was not sent: the URL or an address its name resolves to is refused."""


class NoResponseInTime(DeliveryFailed):
    """The whole request (resolving, connecting, sending, reading) outlasted the timeout."""


@dataclass(frozen=True)
class OutboundPolicy:
    allow_http: bool
    allow_private: bool
    timeout: float = 15.0
    max_response_bytes: int = 64 * 1024


@dataclass(frozen=True)
class Response:
    """What an endpoint answered: its status, Retry-After, the start of its body."""

    status: int
    retry_after: str | None
    body: bytes  # at most the policy's max_response_bytes
    elapsed: float  # seconds, from resolving the name to the last byte read
    truncated: bool = False  # the body was longer than ``body``


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the operating system's resolver gives ``host``, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` may not be connected to (``"loopback"``…), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            problem = address_problem(embedded)
            return None if problem is None else f"{problem} (it carries the IPv4 {embedded})"
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
        (not address.is_global, "not public"),
    )
    return next((kind for refused, kind in checks if refused), None)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _where(url: httpx.URL) -> str:
    """The URL as errors name it: scheme, host and port, never path or query."""
    host = url.raw_host.decode("ascii", "replace")
    host = f"[{host}]" if ":" in host else host
    return f"{url.scheme}://{host}" + ("" if url.port is None else f":{url.port}")


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise UnsafeURL("the URL is not valid") from None


def _check(parsed: httpx.URL, policy: OutboundPolicy) -> None:
    if parsed.scheme not in DEFAULT_PORTS:
        allowed = "https or http is required" if policy.allow_http else "https is required"
        raise UnsafeURL(f"the scheme {parsed.scheme!r} is not allowed: {allowed}")
    if parsed.scheme == "http" and not policy.allow_http:
        raise UnsafeURL("https is required")
    if parsed.userinfo:
        raise UnsafeURL("user info in URL is not allowed")
    host = parsed.raw_host.decode("ascii", "replace")
    if not host:
        raise UnsafeURL("the URL has no host")
    port = parsed.port
    if (
        port is not None
        and port not in ALLOWED_LOW_PORTS
        and not FIRST_HIGH_PORT <= port <= MAX_PORT
    ):
        raise UnsafeURL(f"port {port} is not allowed (only 80, 443 or 1024-65535)")
    address = _ip_literal(host)
    if address is None:
        name = host.rstrip(".")
        if len(name) > MAX_HOST_NAME or not _HOST_NAME.fullmatch(host):
            raise UnsafeURL("the host is not a valid name")
        if _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
            raise UnsafeURL(f"the host {host} is neither a name nor a valid IP address")
        if _LOCALHOST.fullmatch(name) and not policy.allow_private:
            raise UnsafeURL(f"the host {host} is loopback")
    elif not policy.allow_private:
        problem = address_problem(address)
        if problem is not None:
            raise UnsafeURL(f"the address {address} is {problem}")


def check_url(url: str, policy: OutboundPolicy) -> None:
    """Refuse ``url`` (:class:`UnsafeURL`) if the outbound rules forbid it; no DNS."""
    _check(_parse(url), policy)


class _NoAddress(OSError):
    """The name resolves to nothing (or not at all)."""


async def _checked_addresses(
    host: str, port: int, policy: OutboundPolicy, resolver: Resolver
) -> list[IPAddress]:
    """``host``'s addresses, each checked: :class:`UnsafeURL` if any is refused."""
    literal = _ip_literal(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = list(await resolver(host, port))
        except OSError:
            raise _NoAddress(f"the host {host} does not resolve") from None
        if not addresses:
            raise _NoAddress(f"the host {host} does not resolve")
    if not policy.allow_private:
        for address in addresses:
            problem = address_problem(address)
            if problem is not None:
                if literal is not None:
                    raise UnsafeURL(f"the address {address} is {problem}")
                raise UnsafeURL(f"{host} resolves to {address}, which is {problem}")
    return addresses


async def check_destination(
    url: str, policy: OutboundPolicy, *, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """:func:`check_url`, then resolve the host and check every address it has.

    Returns the addresses. A name that does not resolve is refused too (:class:`UnsafeURL`).
    """
    parsed = _parse(url)
    _check(parsed, policy)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    try:
        return await _checked_addresses(host, port, policy, resolver)
    except _NoAddress as error:
        raise UnsafeURL(str(error)) from None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once at connect time, checks every address, connects to a checked one."""

    def __init__(self, policy: OutboundPolicy, resolver: Resolver) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _checked_addresses(host, port, self._policy, self._resolver)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None  # _checked_addresses returns at least one address
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("Unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _BodyStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class _GuardedTransport(httpx.AsyncBaseTransport):
    """httpx over an httpcore pool whose every connection goes through the guard.

    httpx's own ``AsyncHTTPTransport`` takes no network backend, hence this small
    adapter over httpcore's public API (what ``AsyncHTTPTransport`` does, minus proxies
    and its exception mapping: :class:`Outbound` maps httpcore's exceptions itself).
    """

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        answer = await self._pool.handle_async_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(answer.stream, AsyncIterable)  # an async pool's stream
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_BodyStream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class Outbound:
    """Requests (deliveries, an identity provider's documents) under an
    :class:`OutboundPolicy`; one per process or task, closed at exit.

    ``resolver`` and ``ssl_context`` are for tests (a fake DNS, a test CA); by default
    the system's resolver and httpx's certificate verification (certifi's CAs).
    """

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._policy = policy
        pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context if ssl_context is not None else httpx.create_ssl_context(),
            http1=True,
            http2=False,
            retries=0,
            network_backend=_GuardedBackend(policy, resolver),
        )
        self._client = httpx.AsyncClient(
            transport=_GuardedTransport(pool),
            follow_redirects=False,
            timeout=httpx.Timeout(policy.timeout),
            trust_env=False,  # no proxy from the environment: it would connect for us
            # The raw body is read, never decompressed: the cap holds on the bytes in memory.
            headers={"accept-encoding": "identity"},
        )

    @property
    def policy(self) -> OutboundPolicy:
        return self._policy

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post(self, url: str, headers: Mapping[str, str], body: bytes) -> Response:
        """POST ``body`` to ``url``; any HTTP status is a :class:`Response`.

        Raises :class:`DestinationRefused` when the rules refuse the URL or an address,
        :class:`DeliveryFailed` when no response came (in time: :class:`NoResponseInTime`).
        """
        return await self.request("POST", url, headers, body)

    async def get(self, url: str, headers: Mapping[str, str] | None = None) -> Response:
        """GET ``url`` under the same rules and bounds as :meth:`post`."""
        return await self.request("GET", url, headers or {}, b"")

    async def request(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> Response:
        """One request to ``url`` under the policy; see :meth:`post` for what it raises."""
        try:
            parsed = _parse(url)
            _check(parsed, self._policy)
        except UnsafeURL as error:
            raise DestinationRefused(f"not sent: {error.reason}") from None
        where = _where(parsed)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._policy.timeout):
                return await self._exchange(method, parsed, headers, body, started)
        except UnsafeURL as error:
            raise DestinationRefused(f"not sent to {where}: {error.reason}") from None
        except _NoAddress as error:
            raise DeliveryFailed(f"{error} ({where})") from None
        except TimeoutError:
            raise NoResponseInTime(
                f"no response from {where} within {self._policy.timeout:g} s"
            ) from None
        except (httpcore.TimeoutException, httpx.TimeoutException) as error:
            raise NoResponseInTime(
                f"{type(error).__name__} from {where} (timeout {self._policy.timeout:g} s)"
            ) from None
        except (httpcore.ConnectError, httpx.ConnectError) as error:
            raise DeliveryFailed(f"cannot connect to {where}: {_detail(error)}") from None
        except (httpcore.ProtocolError, httpx.ProtocolError) as error:
            raise DeliveryFailed(f"protocol error from {where}: {_detail(error)}") from None
        except (httpcore.NetworkError, httpx.TransportError, OSError) as error:
            raise DeliveryFailed(
                f"network error with {where}: {type(error).__name__}: {_detail(error)}"
            ) from None

    async def _exchange(
        self,
        method: str,
        url: httpx.URL,
        headers: Mapping[str, str],
        body: bytes,
        started: float,
    ) -> Response:
        cap = self._policy.max_response_bytes
        async with self._client.stream(method, url, headers=dict(headers), content=body) as answer:
            prefix = bytearray()
            truncated = False
            async for chunk in answer.aiter_raw():
                room = cap - len(prefix)
                prefix += chunk[:room]
                if len(chunk) > room:
                    truncated = True
                    break  # leaving the block closes the connection mid-body
            return Response(
                status=answer.status_code,
                retry_after=answer.headers.get("retry-after"),
                body=bytes(prefix),
                elapsed=time.monotonic() - started,
                truncated=truncated,
            )


def _detail(error: BaseException) -> str:
    """An exception's own words, one bounded line (httpcore's name no URL or header)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


__all__ = [
    "DeliveryFailed",
    "DestinationRefused",
    "IPAddress",
    "NoResponseInTime",
    "Outbound",
    "OutboundPolicy",
    "Resolver",
    "Response",
    "UnsafeURL",
    "address_problem",
    "check_destination",
    "check_url",
    "system_resolver",
]
