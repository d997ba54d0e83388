"""A DNS provider that only logs: development without a DNS server to talk to."""

from __future__ import annotations

import logging

from a4c_worker.providers.dns.protocol import (
    name_based_record_id,
    normalize_name,
    normalize_type,
)

logger = logging.getLogger(__name__)


class LoggingDNSProvider:
    """Logs each request and keeps nothing; ids are derived from the name so they repeat."""

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        name, rtype = normalize_name(fqdn), normalize_type(record_type)
        logger.info("dns ensure %s %s -> %s (ttl %d), not published", name, rtype, target, ttl)
        return name_based_record_id("logging", name, rtype)

    async def remove_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        logger.info(
            "dns remove %s %s -> %s, nothing to delete", normalize_name(fqdn), record_type, target
        )
        return False
