"""Cloudflare's DNS records API (v4), with create-if-absent done client-side.

The API has no conditional create, so ``ensure_record`` looks the record up by name and
type first and treats Cloudflare's "already exists" answer to a racing create as success
once a second lookup finds the same content; other content is a ``DNSRecordConflict``.
``remove_record`` deletes only records of that name and type with exactly the given
content (and the given id), never every record of the name.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from a4c_worker.providers.dns.protocol import normalize_target, normalize_type
from a4c_worker.providers.errors import (
    DNSRecordConflict,
    PermanentProviderError,
    TransientProviderError,
)

# Cloudflare error codes for a create that collides with an existing record.
_ALREADY_EXISTS = frozenset({81053, 81057, 81058})


class CloudflareSettings(BaseModel):
    """API token scoped to "Zone.DNS: Edit" on the one zone the worker manages."""

    model_config = ConfigDict(frozen=True)

    api_token: SecretStr
    zone_id: str = Field(min_length=1)
    base_url: str = "https://api.cloudflare.com/client/v4"
    timeout: float = Field(default=10.0, gt=0)
    proxied: bool = False


class CloudflareDNSProvider:
    """``DNSProvider`` backed by the Cloudflare API; the record id is Cloudflare's own."""

    def __init__(
        self, settings: CloudflareSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._records = f"zones/{settings.zone_id}/dns_records"

    async def ensure_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", ttl: int = 300
    ) -> str:
        name, rtype = _cf_name(fqdn), normalize_type(record_type)
        async with self._client() as client:
            found = await self._find(client, name, rtype, target)
            if found is not None:
                return found
            body = {
                "type": rtype,
                "name": name,
                "content": _cf_name(target) if rtype == "CNAME" else target,
                "ttl": ttl,
                "proxied": self._settings.proxied,
            }
            response = await self._send(client, "POST", self._records, json=body)
            if _error_codes(response) & _ALREADY_EXISTS:
                found = await self._find(client, name, rtype, target)
                if found is not None:
                    return found
            return str(_result(response, "create")["id"])

    async def remove_record(
        self, fqdn: str, target: str, *, record_type: str = "CNAME", record_id: str | None = None
    ) -> bool:
        rtype = normalize_type(record_type)
        wanted = normalize_target(target, rtype)
        async with self._client() as client:
            listed = await self._list(client, _cf_name(fqdn), rtype)
            ids = [
                str(r["id"])
                for r in listed
                if normalize_target(str(r["content"]), rtype) == wanted
                and record_id in (None, str(r["id"]))
            ]
            deleted = False
            for rid in ids:
                response = await self._send(client, "DELETE", f"{self._records}/{rid}")
                if response.status_code == httpx.codes.NOT_FOUND:
                    continue
                _result(response, "delete")
                deleted = True
            return deleted

    async def _find(
        self, client: httpx.AsyncClient, name: str, rtype: str, target: str
    ) -> str | None:
        """Id of the existing record with this content; conflict if the name holds other data."""
        listed = await self._list(client, name, rtype)
        wanted = normalize_target(target, rtype)
        for record in listed:
            if normalize_target(str(record["content"]), rtype) == wanted:
                return str(record["id"])
        if listed:
            current = ", ".join(sorted(str(r["content"]) for r in listed))
            raise DNSRecordConflict(f"{name} already has {rtype} {current}, not {target}")
        return None

    async def _list(self, client: httpx.AsyncClient, name: str, rtype: str) -> list[Any]:
        params = {"name": name, "type": rtype, "per_page": 100}
        response = await self._send(client, "GET", self._records, params=params)
        return list(_result(response, "list"))

    @staticmethod
    async def _send(
        client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            return await client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise TransientProviderError(f"Cloudflare {method} timed out") from exc
        except httpx.TransportError as exc:
            raise TransientProviderError(f"Cloudflare unreachable: {exc!r}") from exc

    def _client(self) -> httpx.AsyncClient:
        settings = self._settings
        return httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {settings.api_token.get_secret_value()}"},
            timeout=settings.timeout,
            transport=self._transport,
        )


def _payload(response: httpx.Response) -> dict[str, Any]:
    try:
        payload = response.json()
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    errors = _payload(response).get("errors") or []
    return [e for e in errors if isinstance(e, dict)]


def _error_codes(response: httpx.Response) -> set[int]:
    return {e["code"] for e in _errors(response) if isinstance(e.get("code"), int)}


def _result(response: httpx.Response, action: str) -> Any:
    """The ``result`` of a successful answer; otherwise the matching provider error.

    Rate limiting and server errors are transient; any other refusal (bad token,
    missing permission, invalid record) is permanent.
    """
    payload = _payload(response)
    if response.is_success and payload.get("success") is True:
        return payload.get("result")
    detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in _errors(response))
    message = (
        f"Cloudflare {action} answered {response.status_code}: {detail or response.reason_phrase}"
    )
    status = response.status_code
    if status == httpx.codes.TOO_MANY_REQUESTS or status >= 500 or response.is_success:
        raise TransientProviderError(message)
    raise PermanentProviderError(message)


def _cf_name(name: str) -> str:
    """Cloudflare writes names without the trailing dot."""
    return name.strip().rstrip(".").lower()
