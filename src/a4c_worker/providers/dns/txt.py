"""Reading TXT records of any domain: where an organization publishes its e-mail domain
challenge (``a4c_domain.email_domains``).

Unlike :mod:`a4c_worker.providers.dns.verify`, which asks the a4c zone's own
authoritative servers, a customer's domain can be anywhere, so this asks recursive
resolvers: ``EMAIL_DOMAIN_NAMESERVERS`` when set (tests point it at their BIND), else
the system's (``/etc/resolv.conf``). dnspython's own cache is off, so each check asks
again; a resolver's negative caching may still delay a record published moments ago,
which the activity's retries with back-off absorb.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.resolver

from a4c_worker.providers.dns.address import to_address
from a4c_worker.providers.dns.verify import Nameserver
from a4c_worker.providers.errors import TransientProviderError

DEFAULT_TIMEOUT = 5.0  # seconds, for one lookup across every resolver


@runtime_checkable
class TXTLookup(Protocol):
    """The TXT records at a name."""

    async def texts(self, name: str) -> list[str]:
        """Each TXT record's text at ``name`` (its strings joined, RFC 7208 §3.3), ``[]``
        when there is none; ``TransientProviderError`` when no answer came."""
        ...


class ResolverTXTLookup:
    """:class:`TXTLookup` through recursive resolvers: ``nameservers``, or the system's."""

    def __init__(
        self, nameservers: list[Nameserver] | None = None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self._nameservers = list(nameservers or [])
        self._timeout = timeout

    @property
    def nameservers(self) -> list[Nameserver]:
        """The resolvers asked; empty: the system's."""
        return list(self._nameservers)

    async def texts(self, name: str) -> list[str]:
        resolver = await self._resolver()
        try:
            answer = await resolver.resolve(name, dns.rdatatype.TXT, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.LifetimeTimeout as exc:
            raise TransientProviderError(f"no resolver answered for {name} in time") from exc
        except dns.resolver.NoNameservers as exc:
            raise TransientProviderError(f"every resolver failed for {name}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise TransientProviderError(f"resolving {name} failed: {exc!r}") from exc
        return [
            b"".join(rdata.strings).decode("utf-8", "replace")
            for rdata in answer
            if isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
        ]

    async def _resolver(self) -> dns.asyncresolver.Resolver:
        if not self._nameservers:
            resolver = dns.asyncresolver.Resolver()  # the system's configuration
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(await to_address(ns.host, ns.port), ns.port)
                for ns in self._nameservers
            ]
        resolver.lifetime = self._timeout
        resolver.timeout = self._timeout
        resolver.cache = None
        return resolver


class InMemoryTXTLookup:
    """:class:`TXTLookup` over ``records`` (name → texts), for mock mode and unit tests:
    whoever stands for the domain's owner writes them."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}

    async def texts(self, name: str) -> list[str]:
        return list(self.records.get(name.lower().rstrip("."), []))
