"""Every organization's DNS record in BIND matches its state.

Asked of BIND itself (not a resolver's cache), over UDP then TCP on truncation:

- an active organization with a domain: BIND serves its CNAME, pointing at the target
  its ``DNSConfigured`` named (the read model's ``dns_target``);
- a deactivated one (failed or cancelled, compensated) or an offboarded one: BIND
  serves nothing at its domain — unless an active organization holds that domain (the
  ended one lost the claim, and nothing may remove a record it did not create).

Organizations still ``registered`` are the workflows check's business: their bootstrap
has not ended, so no DNS state is promised yet.
"""

from __future__ import annotations

import asyncio
from typing import Any

import dns.asyncquery
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from soaklib.check import Violation
from soaklib.check_store import StoreReading
from soaklib.facts import DnsFacts

ENDED = ("deactivated", "offboarded")
QUERY_TIMEOUT = 5.0
PARALLEL = 16


def absolute(name: str) -> str:
    return name.rstrip(".").lower() + "."


async def served_cname(server: DnsFacts, fqdn: str) -> str | None:
    """The CNAME BIND serves at ``fqdn`` (absolute, lower-case), None for none."""
    query = dns.message.make_query(absolute(fqdn), dns.rdatatype.CNAME)
    answer = await dns.asyncquery.udp(query, server.host, timeout=QUERY_TIMEOUT, port=server.port)
    if answer.flags & dns.flags.TC:
        answer = await dns.asyncquery.tcp(
            query, server.host, timeout=QUERY_TIMEOUT, port=server.port
        )
    if answer.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise RuntimeError(f"BIND answered {dns.rcode.to_text(answer.rcode())} for {fqdn}")
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            return str(rrset[0].target).lower()
    return None


async def check_dns(server: DnsFacts, store: StoreReading) -> list[Violation]:
    held = {
        absolute(row["domain"])
        for row in store.organizations.values()
        if row["status"] == "active" and row["domain"]
    }
    limit = asyncio.Semaphore(PARALLEL)

    async def one(row: dict[str, Any]) -> Violation | None:
        domain = absolute(row["domain"])
        async with limit:
            served = await served_cname(server, domain)
        slug = row["slug"]
        if row["status"] == "active":
            expected = absolute(row["dns_target"] or "")
            if served is None:
                return Violation("dns", f"active organization {slug}: BIND serves no record")
            if served != expected:
                return Violation(
                    "dns", f"active organization {slug}: BIND points at {served}, not {expected}"
                )
        elif row["status"] in ENDED and served is not None and domain not in held:
            return Violation(
                "dns",
                f"{row['status']} organization {slug}: BIND still serves its record ({served})",
            )
        return None

    rows = [r for r in store.organizations.values() if r["domain"]]
    answers = await asyncio.gather(*(one(r) for r in sorted(rows, key=lambda r: r["slug"])))
    return [a for a in answers if a is not None]
