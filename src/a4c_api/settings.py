"""a4c-api's configuration: every variable it reads, validated once by the entry point.

Like the daemons, :func:`load_settings` takes the environment as a mapping (tests pass
plain dicts) and reports every mistake as ``VARIABLE: problem`` in a
:class:`~a4c_service.settings.SettingsError`. The event store and read models are found the
eventsourcing way (``PERSISTENCE_MODULE``, ``POSTGRES_*``, ``SQLITE_DBNAME``), Temporal
by the worker's own variables, so one environment serves every process.

Production is the default (``API_MODE`` unset); it refuses the development conveniences:
the dev sign-in, a random session key, a missing OpenID provider, an ``http://`` public
URL. ``API_MODE=development`` must be asked for, and only on a loopback ``API_HOST``.

Webhooks (:mod:`a4c_api.v1.webhooks`) need ``WEBHOOK_SECRET_KEYS``, the delivery
daemon's key ring (endpoint secrets are sealed with it); without it their routes answer
503. Their URLs are https only, http too in development; private, loopback and
link-local destinations only with ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES``. Single sign-on
(:mod:`a4c_api.v1.sso`) needs ``SSO_SECRET_KEYS`` likewise.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from a4c_domain.commands import hostname
from a4c_service.logs import LogFormat, LogLevel
from a4c_service.probes import DEFAULT_HOST as PROBE_HOST
from a4c_service.settings import (
    MASK,
    SettingsError,
    displayed,
    is_loopback,
    lowercase,
    read_settings,
    uppercase,
)
from a4c_webhooks.settings import SecretKeysText
from a4c_worker.config import DEFAULT_API_URL, DEFAULT_DNS_ZONE, DEFAULT_TASK_QUEUE
from a4c_worker.connection import TemporalSettings
from a4c_worker.workflows.models import (
    DEFAULT_MAX_RESENDS,
    DEFAULT_RESEND_COOLDOWN_SECONDS,
    CooldownSeconds,
    MaxResends,
    ResendLimit,
)

ApiMode = Literal["development", "production"]

MIN_SESSION_SECRET_LENGTH = 32
DEFAULT_PORT = urlsplit(DEFAULT_API_URL).port or 80
# Writes of one caller that wait for the projection at once (API_MAX_WAITS_PER_PRINCIPAL).
DEFAULT_MAX_WAITS_PER_PRINCIPAL = 8
# The largest real request is an onboarding with the most invitees one may carry (200),
# every field at its longest: about 570 KiB as JSON with every letter a \u escape pair
# (tests/api/test_edge_limits.py builds it). 1 MiB takes it with room to spare.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# How long a request's body may take to arrive, whole (408 past it): without it a client
# that stops sending holds the connection and what was buffered of its body for good.
DEFAULT_BODY_TIMEOUT_SECONDS = 10.0
# Connections (and so buffered bodies) served at once, per process; uvicorn answers 503
# past it. 1000 bodies of API_MAX_BODY_BYTES at most is about 1 GiB.
DEFAULT_MAX_CONNECTIONS = 1000
# Invitations an organization may issue per hour, and have pending at once (an
# onboarding may invite up to 200 people, so as many may be pending).
DEFAULT_INVITATIONS_PER_ORGANIZATION_PER_HOUR = 50
DEFAULT_MAX_PENDING_INVITATIONS_PER_ORGANIZATION = 200
# Webhook endpoints an organization may have (not deleted): each one multiplies every
# event of the organization into deliveries. The platform's (the operators') are not limited.
DEFAULT_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION = 10
# An API key is "a4c_" and 43 URL-safe characters (32 random bytes); only its SHA-256 is
# configured, so a leaked configuration does not leak a key.
API_KEY_PREFIX = "a4c_"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def api_key_hash(key: str) -> str:
    """What ``API_KEYS`` holds for ``key``: its SHA-256 (keys are random, so no salt is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyGrant(BaseModel):
    """One entry of ``API_KEYS``: ``name:sha256:operator`` or ``name:sha256:org=<uuid>``.

    ``organization_id`` None means a platform operator's key (acts on any organization).
    """

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    sha256: str = Field(pattern=_SHA256_HEX.pattern)
    organization_id: UUID | None = None

    @classmethod
    def parse(cls, entry: str) -> ApiKeyGrant:
        parts = entry.strip().split(":")
        if len(parts) != 3:
            raise ValueError("each entry must be name:sha256:operator or name:sha256:org=<uuid>")
        name, digest, grant = parts
        if grant == "operator":
            return cls(name=name, sha256=digest.lower())
        if grant.startswith("org="):
            return cls(name=name, sha256=digest.lower(), organization_id=UUID(grant[4:]))
        raise ValueError(f"{name}: the grant must be 'operator' or 'org=<uuid>'")

    def entry(self) -> str:
        grant = "operator" if self.organization_id is None else f"org={self.organization_id}"
        return f"{self.name}:{self.sha256}:{grant}"


class ApiSettings(TemporalSettings):
    """Field ``x_y`` is environment variable ``X_Y``; Temporal's connection variables are
    the worker's (:class:`~a4c_worker.connection.TemporalSettings`)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    api_mode: ApiMode = "production"  # development only when asked for (DESIGN)
    api_host: str = "127.0.0.1"  # loopback unless set (the k8s manifest sets 0.0.0.0)
    api_port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    # The address people reach the service at: the OpenID Connect redirect is built on it.
    api_public_url: str = DEFAULT_API_URL
    # Signs the session cookie (sign-in state, CSRF token). Development: random per process.
    api_session_secret: SecretStr | None = None
    # How long a write waits for the projection to show it (read-your-writes), seconds.
    api_consistency_timeout: float = Field(default=5.0, ge=0, le=60)
    # How many of one caller's writes wait for it at once; past that they answer at once
    # (A4C-Consistent says whether the read models show them).
    api_max_waits_per_principal: int = Field(default=DEFAULT_MAX_WAITS_PER_PRINCIPAL, ge=1, le=1000)
    # Accept attempts (``limits`` notation), on top of the workflow's own limit.
    api_accept_rate_per_invitation: str = "10/minute"
    api_accept_rate_per_client: str = "30/minute"
    # Proxies whose X-Forwarded-For/-Proto is believed (uvicorn's forwarded_allow_ips):
    # addresses or networks, comma-separated. None by default: the peer is the client.
    api_forwarded_allow_ips: tuple[str, ...] = ()
    api_shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    # The platform's mail. Per invitation: its workflow holds it to the limit it started
    # with (every replica and worker alike). Per organization: counted on the shared read
    # models by the invite route (a4c_api.v1.invitations says how far that holds).
    api_resend_cooldown_seconds: CooldownSeconds = DEFAULT_RESEND_COOLDOWN_SECONDS
    api_max_resends: MaxResends = DEFAULT_MAX_RESENDS
    api_invitations_per_organization_per_hour: int = Field(
        default=DEFAULT_INVITATIONS_PER_ORGANIZATION_PER_HOUR, ge=1, le=100_000
    )
    api_max_pending_invitations_per_organization: int = Field(
        default=DEFAULT_MAX_PENDING_INVITATIONS_PER_ORGANIZATION, ge=1, le=100_000
    )
    # The largest request body taken, in bytes (413 beyond it, before it is read).
    api_max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 * 1024 * 1024)
    # How long a body may take to arrive, whole (408 past it, the connection closed).
    api_body_timeout_seconds: float = Field(default=DEFAULT_BODY_TIMEOUT_SECONDS, gt=0, le=600)
    # Connections served at once (uvicorn's limit_concurrency: 503 past it).
    api_max_connections: int = Field(default=DEFAULT_MAX_CONNECTIONS, ge=1, le=1_000_000)
    # /metrics is served here, never on API_PORT (the front door): a listener Prometheus
    # reaches and the Service and ingress do not. Loopback unless set, like the daemons'.
    api_metrics_host: str = PROBE_HOST
    api_metrics_port: int = Field(default=9103, ge=0, le=65535)
    api_keys: tuple[ApiKeyGrant, ...] = ()
    # Who is a platform operator: a bearer token whose ``API_ROLES_CLAIM`` (a list, or a
    # space-separated string such as ``scope``) holds ``API_OPERATOR_ROLE``.
    api_roles_claim: str = Field(default="roles", min_length=1)
    api_operator_role: str = Field(default="a4c:operator", min_length=1)
    api_dev_sign_in: bool | None = None  # None: on in development, off in production

    # OpenID Connect: the accept page is a relying party; bearer tokens are its issuer's.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_audience: str | None = None  # bearer tokens' audience; default OIDC_CLIENT_ID
    oidc_scopes: str = "openid email profile"

    # Temporal: the worker's variables (the connection's: TemporalSettings).
    temporal_task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    # The worker's DNS_ZONE: an onboarding whose domain is not below it is refused (422)
    # before its workflow starts, instead of failing at its first step.
    dns_zone: str = Field(default=DEFAULT_DNS_ZONE, min_length=1)

    # Webhooks: the key ring sealing endpoint secrets (the daemon's WEBHOOK_SECRET_KEYS;
    # unset: the webhook routes answer 503), and whether endpoints may be private addresses.
    webhook_secret_keys: SecretKeysText | None = None
    webhook_allow_private_addresses: bool = False
    api_max_webhook_endpoints_per_organization: int = Field(
        default=DEFAULT_MAX_WEBHOOK_ENDPOINTS_PER_ORGANIZATION, ge=1, le=10_000
    )

    # Single sign-on: the key ring sealing organizations' client secrets (the webhook
    # ring's format; the worker opens them with the same ring to exchange a sign-in's
    # code). Unset: the SSO routes answer 503.
    sso_secret_keys: SecretKeysText | None = None

    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"

    _lowercase = field_validator("api_mode", "log_format", mode="before")(lowercase)
    _uppercase = field_validator("log_level", mode="before")(uppercase)

    @field_validator("api_public_url", "oidc_issuer")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("dns_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return hostname(value)

    @field_validator("api_session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SESSION_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SESSION_SECRET_LENGTH} bytes")
        return value

    @field_validator("webhook_secret_keys", "sso_secret_keys", mode="before")
    @classmethod
    def _unset_when_blank(cls, value: Any) -> Any:
        """``WEBHOOK_SECRET_KEYS=`` (as .env.example lists it) is unset, not a bad ring."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(ApiKeyGrant.parse(e) for e in value.split(",") if e.strip())
        return value

    @field_validator("api_keys")
    @classmethod
    def _distinct_keys(cls, value: tuple[ApiKeyGrant, ...]) -> tuple[ApiKeyGrant, ...]:
        names = [grant.name for grant in value]
        if len(set(names)) != len(names):
            raise ValueError("each key needs its own name")
        return value

    @field_validator("api_forwarded_allow_ips", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(entry.strip() for entry in value.split(",") if entry.strip())
        return value

    @field_validator("api_forwarded_allow_ips")
    @classmethod
    def _proxy_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry)  # strict: a network with host bits set is a typo
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (such as 10.42.0.0/16)"
                ) from None
        return value

    @field_validator("api_accept_rate_per_invitation", "api_accept_rate_per_client")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse  # the one notation the rate limiter reads

        try:
            parse(value)
        except ValueError:
            raise ValueError("must be a rate such as '10/minute'") from None
        return value

    @property
    def production(self) -> bool:
        return self.api_mode == "production"

    @property
    def dev_sign_in(self) -> bool:
        return (not self.production) if self.api_dev_sign_in is None else self.api_dev_sign_in

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def bearer_audience(self) -> str | None:
        return self.oidc_audience or self.oidc_client_id

    @property
    def resend_limit(self) -> ResendLimit:
        """What the workflows this service starts hold each invitation's re-sends to."""
        return ResendLimit(
            cooldown_seconds=self.api_resend_cooldown_seconds, max_resends=self.api_max_resends
        )

    def problems(self) -> list[tuple[str, str]]:
        """Mistakes spanning several variables, each naming the one to fix."""
        found = self.temporal_problems()
        if self.oidc_enabled:
            for field in ("oidc_client_id", "oidc_client_secret"):
                if getattr(self, field) is None:
                    found.append((field.upper(), "required when OIDC_ISSUER is set"))
        if self.production:
            if self.api_dev_sign_in:
                found.append(("API_DEV_SIGN_IN", "the dev sign-in is refused in production"))
            if self.api_session_secret is None:
                found.append(("API_SESSION_SECRET", "required when API_MODE is production"))
            if not self.oidc_enabled:
                found.append(("OIDC_ISSUER", "required when API_MODE is production"))
            if "api_public_url" not in self.model_fields_set:
                found.append(("API_PUBLIC_URL", "required when API_MODE is production"))
            elif urlsplit(self.api_public_url).scheme != "https":  # else cookies go in clear
                found.append(("API_PUBLIC_URL", "must be an https URL when API_MODE is production"))
            if self.temporal_payload_keys is None:  # else history holds personal data
                found.append(("TEMPORAL_PAYLOAD_KEYS", "required when API_MODE is production"))
        elif not is_loopback(self.api_host):
            # The dev sign-in lets anyone be anyone: never where others can reach it.
            found.append(("API_HOST", "must be a loopback address when API_MODE is development"))
        return found

    def masked(self) -> dict[str, Any]:
        """Every setting by variable name, secrets masked (``validate-config``), and the
        Temporal connection they resolve to."""
        found: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = displayed(name, getattr(self, name))
            if name == "api_keys":
                value = [f"{grant.name}:{MASK}" for grant in value]
            found[name.upper()] = value
        found["resolved"] = {"temporal": self.temporal_connection().masked()}
        return found


def load_settings(environ: Mapping[str, str]) -> ApiSettings:
    """Validate ``environ``; :class:`SettingsError` names every wrong variable."""
    settings = read_settings(ApiSettings, environ)
    if problems := settings.problems():
        raise SettingsError(problems)
    return settings
