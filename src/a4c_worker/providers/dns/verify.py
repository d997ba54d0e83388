"""Checks that a published record is really served, asking the zone's own nameservers.

Asking the authoritative servers directly (not a recursive resolver) avoids negative
caching: a record published a second ago is visible, and a "no" is current.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from pydantic import BaseModel, ConfigDict, Field

from a4c_worker.providers.dns.address import to_address
from a4c_worker.providers.dns.records import parse_rdata
from a4c_worker.providers.errors import TransientProviderError


class Nameserver(BaseModel):
    model_config = ConfigDict(frozen=True)

    host: str = Field(min_length=1)
    port: int = Field(default=53, ge=1, le=65535)


class ResolverSettings(BaseModel):
    """The authoritative nameservers to ask and how long to wait for all of them."""

    model_config = ConfigDict(frozen=True)

    nameservers: list[Nameserver] = Field(min_length=1)
    timeout: float = Field(default=5.0, gt=0, description="total time for one verification")
    use_tcp: bool = False


class ResolverDNSVerifier:
    """``DNSVerifier`` using dnspython's async stub resolver with no cache."""

    def __init__(self, settings: ResolverSettings) -> None:
        self._settings = settings

    async def verify(self, fqdn: str, target: str, *, record_type: str = "CNAME") -> bool:
        expected = parse_rdata(record_type, target)
        resolver = await self._resolver()
        try:
            answer = await resolver.resolve(
                fqdn, expected.rdtype, tcp=self._settings.use_tcp, search=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return False
        except dns.resolver.LifetimeTimeout as exc:
            raise TransientProviderError(f"no nameserver answered for {fqdn} in time") from exc
        except dns.resolver.NoNameservers as exc:
            raise TransientProviderError(f"every nameserver failed for {fqdn}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise TransientProviderError(f"resolving {fqdn} failed: {exc!r}") from exc
        return expected in set(answer)

    async def _resolver(self) -> dns.asyncresolver.Resolver:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [
            dns.nameserver.Do53Nameserver(await to_address(ns.host, ns.port), ns.port)
            for ns in self._settings.nameservers
        ]
        resolver.lifetime = self._settings.timeout
        resolver.timeout = self._settings.timeout
        resolver.cache = None
        return resolver
