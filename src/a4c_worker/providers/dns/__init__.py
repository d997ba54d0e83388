"""DNS providers: publish the organization's record, then check it is served.

Pick one ``DNSProvider`` (RFC 2136, Cloudflare, logging, in-memory) and one
``DNSVerifier`` (resolver at the authoritative servers, or in-memory/static for mock mode).
``TXTLookup`` reads the TXT records of any domain (e-mail domain challenges).
"""

from a4c_worker.providers.dns.cloudflare import CloudflareDNSProvider, CloudflareSettings
from a4c_worker.providers.dns.logged import LoggingDNSProvider
from a4c_worker.providers.dns.memory import (
    InMemoryDNSProvider,
    InMemoryDNSVerifier,
    MemoryRecord,
    StaticDNSVerifier,
)
from a4c_worker.providers.dns.protocol import DNSProvider, DNSVerifier
from a4c_worker.providers.dns.rfc2136 import RFC2136DNSProvider, RFC2136Settings
from a4c_worker.providers.dns.txt import InMemoryTXTLookup, ResolverTXTLookup, TXTLookup
from a4c_worker.providers.dns.verify import Nameserver, ResolverDNSVerifier, ResolverSettings

__all__ = [
    "CloudflareDNSProvider",
    "CloudflareSettings",
    "DNSProvider",
    "DNSVerifier",
    "InMemoryDNSProvider",
    "InMemoryDNSVerifier",
    "InMemoryTXTLookup",
    "LoggingDNSProvider",
    "MemoryRecord",
    "Nameserver",
    "RFC2136DNSProvider",
    "RFC2136Settings",
    "ResolverDNSVerifier",
    "ResolverSettings",
    "ResolverTXTLookup",
    "StaticDNSVerifier",
    "TXTLookup",
]
