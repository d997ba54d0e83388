"""Host names to IP addresses: dnspython sends to addresses only, settings may hold names."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from a4c_worker.providers.errors import TransientProviderError


async def to_address(host: str, port: int) -> str:
    """``host`` if it already is an IP address, else its first address from the system resolver."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TransientProviderError(f"cannot resolve DNS server {host!r}: {exc}") from exc
    return str(infos[0][4][0])
