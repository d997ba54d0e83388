"""A resolved connection to Temporal: what ``Client.connect`` gets, how it is shown (no
secret), and why connecting to it failed, in the operator's terms.

Built by :meth:`a4c_worker.connection.TemporalSettings.temporal_connection`, which checks
the variables; this module reads none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr
from temporalio.service import TLSConfig

from a4c_service.settings import MASK
from a4c_worker.codec import PayloadKeys

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"

TLSMode = Literal["off", "tls", "mtls"]


@dataclass(frozen=True)
class TemporalConnection:
    """Everything ``Client.connect`` needs to reach one namespace; built once, by
    :meth:`TemporalSettings.temporal_connection` (or directly, for a known local server).

    ``repr`` shows no key material: the TLS object holds the client key's bytes.
    """

    target_host: str = DEFAULT_ADDRESS
    namespace: str = DEFAULT_NAMESPACE
    tls: bool | TLSConfig = field(default=False, repr=False)
    api_key: SecretStr | None = field(default=None, repr=False)
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)
    profile: str | None = None
    config_file: str | None = None
    # None: payloads travel in clear (development without TEMPORAL_PAYLOAD_KEYS).
    payload_keys: PayloadKeys | None = field(default=None, repr=False)

    @property
    def tls_mode(self) -> TLSMode:
        if self.tls is False:
            return "off"
        if isinstance(self.tls, TLSConfig) and self.tls.client_cert is not None:
            return "mtls"
        return "tls"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``temporalio.client.Client.connect``."""
        options: dict[str, Any] = {
            "target_host": self.target_host,
            "namespace": self.namespace,
            "tls": self.tls,
        }
        if self.api_key is not None:
            options["api_key"] = self.api_key.get_secret_value()
        if self.rpc_metadata:
            options["rpc_metadata"] = dict(self.rpc_metadata)
        return options

    def describe(self) -> str:
        """One line for logs and reports; no secret: ``host:7233 namespace=x tls=mtls api-key``."""
        parts = [self.target_host, f"namespace={self.namespace}", f"tls={self.tls_mode}"]
        if self.api_key is not None:
            parts.append("api-key")
        if self.profile is not None:
            parts.append(f"profile={self.profile}")
        return " ".join(parts)

    def masked(self) -> dict[str, Any]:
        """What ``validate-config`` prints of the resolved connection: keys and gRPC
        metadata values (often an authorization header) masked."""
        server_name = self.tls.domain if isinstance(self.tls, TLSConfig) else None
        custom_ca = isinstance(self.tls, TLSConfig) and self.tls.server_root_ca_cert is not None
        return {
            "address": self.target_host,
            "namespace": self.namespace,
            "tls": self.tls_mode,
            "tls_server_name": server_name,
            "tls_server_ca": ("custom" if custom_ca else "system") if self.tls else None,
            "api_key": MASK if self.api_key is not None else None,
            "grpc_meta": {name: MASK for name in self.rpc_metadata},
            "profile": self.profile,
            "config_file": self.config_file,
            # Ids only: which key seals (the first) and which still open.
            "payload_keys": self.payload_keys.ids if self.payload_keys else None,
        }


# What the SDK's connect errors say (rustls / tonic / gRPC words), and what to fix.
_CERTIFICATE_HINTS = (
    (
        "UnknownIssuer",
        "the server's certificate is not signed by a CA this client trusts: set "
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH to the CA that signed it",
    ),
    (
        "NotValidForName",
        "the server's certificate is not issued for this address: set "
        "TEMPORAL_TLS_SERVER_NAME to the name it was issued for",
    ),
    (
        "InvalidContentType",
        "the server does not speak TLS: set TEMPORAL_TLS=false (or point TEMPORAL_ADDRESS at "
        "its TLS port)",
    ),
    ("ConnectionRefused", "nothing listens at TEMPORAL_ADDRESS"),
)


def connect_failure(connection: TemporalConnection, error: BaseException) -> str:
    """Why connecting failed, in the operator's terms (which variable to look at), then
    the SDK's own words; for logs, ``a4c validate`` and the commands' exit message."""
    text = " ".join(str(error).split())
    hint = next((why for word, why in _CERTIFICATE_HINTS if word in text), None)
    if hint is None and ("Unauthenticated" in text or "PermissionDenied" in text):
        if connection.api_key is not None:
            hint = "the server refused the API key (TEMPORAL_API_KEY)"
        elif connection.tls_mode == "mtls":
            hint = "the server refused the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH)"
        else:
            hint = (
                "the server wants credentials: an API key (TEMPORAL_API_KEY) or a client "
                "certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
            )
    if hint is None and connection.tls_mode == "off" and "http2 error" in text:
        hint = "the server may expect TLS: set TEMPORAL_TLS=true"
    reason = f"{hint}; {text}" if hint else text
    return f"cannot reach Temporal at {connection.describe()}: {reason}"


__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "TLSMode",
    "TemporalConnection",
    "connect_failure",
]
