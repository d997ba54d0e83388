"""Record data parsed once, so providers compare records the way DNS servers do."""

from __future__ import annotations

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from a4c_worker.providers.errors import PermanentProviderError


def parse_rdatatype(record_type: str) -> dns.rdatatype.RdataType:
    try:
        return dns.rdatatype.from_text(record_type)
    except dns.exception.DNSException as exc:
        raise PermanentProviderError(f"unknown DNS record type {record_type!r}") from exc


def parse_rdata(record_type: str, target: str) -> dns.rdata.Rdata:
    """``target`` as record data; relative names count as absolute (``a.b`` is ``a.b.``)."""
    rdtype = parse_rdatatype(record_type)
    try:
        return dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, target, origin=dns.name.root, relativize=False
        )
    except dns.exception.DNSException as exc:
        raise PermanentProviderError(f"invalid {record_type} record data {target!r}") from exc
