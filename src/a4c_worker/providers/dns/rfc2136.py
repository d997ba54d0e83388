"""RFC 2136 dynamic updates signed with TSIG, sent over TCP to the zone's primary.

Idempotency comes from update prerequisites evaluated atomically by the server:
creation is conditional on the RRset being absent, deletion of the one exact record
(never the RRset) on the RRset being what was read, so the response code alone says
whether this call changed anything. A name holding other data is a conflict, never
adopted and never added to; the zone apex and names outside the zone are refused.
"""

from __future__ import annotations

import base64
import binascii

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from a4c_domain.errors import DomainOutsideZone
from a4c_worker.providers.dns.address import to_address
from a4c_worker.providers.dns.records import parse_rdata
from a4c_worker.providers.errors import (
    DNSRecordConflict,
    PermanentProviderError,
    TransientProviderError,
)

TSIG_ALGORITHMS = frozenset(
    {"hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
)

# Server answers that mean "asking again later may work"; every other error is final.
_CAS_ATTEMPTS = 5
_TRANSIENT_RCODES = frozenset({dns.rcode.SERVFAIL})
_TSIG_ERRORS = (
    dns.tsig.PeerError,
    dns.tsig.BadSignature,
    dns.tsig.BadKey,
    dns.tsig.BadTime,
    dns.tsig.BadAlgorithm,
    dns.message.UnknownTSIGKey,
)


def tsig_algorithm(value: str) -> str:
    """``value`` as a canonical TSIG algorithm name; ``ValueError`` listing the valid ones."""
    value = value.lower().rstrip(".")
    if value not in TSIG_ALGORITHMS:
        raise ValueError(f"unsupported TSIG algorithm; use one of {sorted(TSIG_ALGORITHMS)}")
    return value


class RFC2136Settings(BaseModel):
    """Where and how to send signed updates. ``key_secret`` is the base64 TSIG secret."""

    model_config = ConfigDict(frozen=True)

    server: str = Field(min_length=1, description="primary server host name or IP address")
    port: int = Field(default=53, ge=1, le=65535)
    zone: str = Field(min_length=1)
    key_name: str = Field(min_length=1)
    key_secret: SecretStr
    key_algorithm: str = "hmac-sha256"
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("key_secret")
    @classmethod
    def _secret_is_base64(cls, value: SecretStr) -> SecretStr:
        try:
            base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the TSIG secret must be base64") from None
        return value

    @field_validator("key_algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        return tsig_algorithm(value)


class RFC2136DNSProvider:
    """``DNSProvider`` for BIND, Knot, PowerDNS or any server accepting TSIG updates.

    The record id is the record in presentation form (``name TYPE rdata``), so removal
    by id deletes exactly the record this provider created and nothing else.
    """

    def __init__(self, settings: RFC2136Settings) -> None:
        self._settings = settings
        self._zone = dns.name.from_text(settings.zone)
        self._key = dns.tsig.Key(
            dns.name.from_text(settings.key_name),
            settings.key_secret.get_secret_value(),
            settings.key_algorithm,
        )

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        name = self._name_in_zone(fqdn)
        rdata = parse_rdata(record_type, target)
        record_id = f"{name} {dns.rdatatype.to_text(rdata.rdtype)} {rdata.to_text()}"

        update = self._update()
        update.absent(name, rdata.rdtype)
        update.add(name, ttl, rdata)
        if await self._send(update, dns.rcode.YXRRSET) == dns.rcode.NOERROR:
            return record_id

        existing = await self._current(name, rdata.rdtype)
        if rdata in existing:  # a retry after the record was created
            return record_id
        current = ", ".join(sorted(r.to_text() for r in existing))
        rtype = dns.rdatatype.to_text(rdata.rdtype)
        raise DNSRecordConflict(f"{name} already has {rtype} {current}, not {rdata}")

    async def remove_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        name = self._name_in_zone(fqdn)
        rdata = parse_rdata(record_type, target)
        if record_id is not None and self._rdata_from_id(name, record_id) != rdata:
            return False  # the recorded record is not this data: nothing of ours to delete
        return await self._remove_one(name, rdata)

    async def _remove_one(self, name: dns.name.Name, rdata: dns.rdata.Rdata) -> bool:
        """Delete one record of a possibly larger RRset, as a compare-and-swap on that RRset.

        A value-dependent prerequisite must match the whole RRset, so read it, and delete
        on condition that it is still what was read; a concurrent change makes us re-read.
        """
        for _ in range(_CAS_ATTEMPTS):
            current = await self._current(name, rdata.rdtype)
            if rdata not in current:
                return False
            update = self._update()
            update.present(name, dns.rdataset.from_rdata_list(0, list(current)))
            update.delete(name, rdata)
            rcode = await self._send(update, dns.rcode.NXRRSET, dns.rcode.NXDOMAIN)
            if rcode == dns.rcode.NOERROR:
                return True
        raise TransientProviderError(f"{name} kept changing while deleting {rdata}")

    def _name_in_zone(self, fqdn: str) -> dns.name.Name:
        """``fqdn`` as a name strictly below the zone; the apex holds the zone's own data."""
        name = dns.name.from_text(fqdn)
        if name == self._zone or not name.is_subdomain(self._zone):
            raise DomainOutsideZone(
                name.to_text(omit_final_dot=True), self._zone.to_text(omit_final_dot=True)
            )
        return name

    @staticmethod
    def _rdata_from_id(name: dns.name.Name, record_id: str) -> dns.rdata.Rdata:
        parts = record_id.split(" ", 2)
        if len(parts) != 3 or dns.name.from_text(parts[0]) != name:
            raise PermanentProviderError(f"record id {record_id!r} does not belong to {name}")
        return parse_rdata(parts[1], parts[2])

    def _update(self) -> dns.update.UpdateMessage:
        return dns.update.UpdateMessage(self._zone, keyring=self._key)

    async def _current(
        self, name: dns.name.Name, rdtype: dns.rdatatype.RdataType
    ) -> set[dns.rdata.Rdata]:
        query = dns.message.make_query(name, rdtype)
        query.use_tsig(self._key)
        response = await self._exchange(query)
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise _rcode_error(rcode, f"query for {name}")
        rrset = response.get_rrset(response.answer, name, dns.rdataclass.IN, rdtype)
        return set(rrset) if rrset is not None else set()

    async def _send(self, update: dns.update.UpdateMessage, *accepted: dns.rcode.Rcode) -> int:
        """Send ``update``; return its rcode if NOERROR or one of ``accepted``, else raise."""
        response = await self._exchange(update)
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR or rcode in accepted:
            return rcode
        raise _rcode_error(rcode, f"update of zone {self._zone}")

    async def _exchange(self, message: dns.message.Message) -> dns.message.Message:
        settings = self._settings
        where = await to_address(settings.server, settings.port)
        try:
            return await dns.asyncquery.tcp(
                message, where, timeout=settings.timeout, port=settings.port
            )
        except _TSIG_ERRORS as exc:
            raise PermanentProviderError(
                f"TSIG key {settings.key_name!r} rejected by {settings.server}: {exc!r}"
            ) from exc
        except dns.exception.Timeout as exc:
            raise TransientProviderError(f"DNS server {settings.server} timed out") from exc
        except (OSError, EOFError, dns.exception.DNSException) as exc:
            raise TransientProviderError(
                f"DNS server {settings.server}:{settings.port} unreachable: {exc!r}"
            ) from exc


def _rcode_error(rcode: int, what: str) -> PermanentProviderError | TransientProviderError:
    text = dns.rcode.to_text(dns.rcode.Rcode.make(rcode))
    if rcode in _TRANSIENT_RCODES:
        return TransientProviderError(f"{what} failed: {text}")
    return PermanentProviderError(f"{what} refused: {text}")
