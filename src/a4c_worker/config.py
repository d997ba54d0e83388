"""The worker's configuration: every environment variable it reads, validated at start.

:func:`load_settings` is called once, by the CLI, with ``os.environ``; nothing else in
the worker reads the environment (the mapping is passed in, like the domain library's
``env``), so tests hand in plain dicts and nothing leaks in from the machine.

Problems are reported as :class:`~a4c_service.settings.SettingsError`, one
``(VARIABLE, problem)`` pair per mistake. Secrets are ``SecretStr``: their ``repr``,
``str`` and the masked view printed by ``validate-config`` show ``**********``.

Longer than most modules on purpose: every variable the worker reads, its default and
its cross-checks are in this one place.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from a4c_domain.application import MAX_INVITATION_TTL, OnboardingApplication
from a4c_domain.commands import Email
from a4c_domain.persistence import DEFAULT_PORT, PersistenceModule, is_store_variable, port_list
from a4c_service.logs import LogFormat, LogLevel
from a4c_service.probes import DEFAULT_HOST as PROBE_HOST
from a4c_service.settings import MASK, displayed, read_settings
from a4c_service.settings import SettingsError as SettingsError  # importers reach it here too
from a4c_worker.attempts import DEFAULT_MAX_WRONG, DEFAULT_WINDOW_SECONDS, MaxWrong, WindowSeconds
from a4c_worker.connection import TemporalSettings
from a4c_worker.providers.dns import Nameserver
from a4c_worker.providers.dns.rfc2136 import TSIG_ALGORITHMS
from a4c_worker.sealing import SecretKeys, SecretKeysError

WorkflowMode = Literal["mock", "development", "production"]
DNSProviderName = Literal["rfc2136", "cloudflare", "logging", "memory"]
EmailProviderName = Literal["smtp", "file", "logging", "memory"]

Scope = Literal["client", "store", "worker"]

MIN_TOKEN_SECRET_LENGTH = 32
SSO_SECRET_KEYS_VARIABLE = "SSO_SECRET_KEYS"  # noqa: S105 - the variable's name
# The worker's defaults, also used by whatever starts workflows or workers without settings.
DEFAULT_TASK_QUEUE = "a4c-onboarding"
DEFAULT_MAX_CONCURRENT_ACTIVITIES = 100
# How long a workflow task (an update, a finished activity's next step) waits on the
# sticky queue of the worker that has the workflow cached before any worker may take
# it: after a worker dies, its workflows move on within this (the SDK's default is 10 s).
DEFAULT_STICKY_QUEUE_TIMEOUT_SECONDS = 3.0
# Where invitation links lead: a4c-api serves the accept page at this path, and in the
# local stack listens where the default link points.
ACCEPT_PATH = "/invitations/accept"
DEFAULT_API_URL = "http://localhost:8080"
# The zone organizations' DNS records go under (DNS_ZONE): the worker publishes there, and
# a4c-api refuses an onboarding whose domain lies outside it.
DEFAULT_DNS_ZONE = "orgs.a4c.localhost"


DEFAULT_DNS = {"mock": "memory", "development": "logging", "production": "rfc2136"}
REQUIRED_IN_PRODUCTION = "required when WORKFLOW_MODE is production"
# Added to the problems when the mode was not set: production was assumed, not chosen.
UNSET_MODE_HINT = (
    "not set, so production (the default), which needs the variables named here "
    "(for local use, set WORKFLOW_MODE=development)"
)


class WorkerSettings(TemporalSettings):
    """Field ``x_y`` is environment variable ``X_Y``; see the module docstring. The
    connection to Temporal (``TEMPORAL_ADDRESS``, TLS, API key...) is
    :class:`~a4c_worker.connection.TemporalSettings`'."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    # Which providers: the mode picks defaults, the two overrides win. Production unless
    # asked otherwise: a deployment that forgot the variable must not log its mails away.
    workflow_mode: WorkflowMode = "production"
    dns_provider: DNSProviderName | None = None
    email_provider: EmailProviderName | None = None

    # Temporal (the connection itself: TemporalSettings).
    temporal_task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    max_concurrent_activities: int = Field(
        default=DEFAULT_MAX_CONCURRENT_ACTIVITIES, ge=1, le=10_000
    )
    temporal_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    sticky_queue_timeout_seconds: float = Field(
        default=DEFAULT_STICKY_QUEUE_TIMEOUT_SECONDS, gt=0, le=60
    )

    # The domain's event store (eventsourcing's own variable names).
    persistence_module: PersistenceModule = "eventsourcing.sqlite"
    # The domain library's default file, so both say the same.
    sqlite_dbname: str = Field(default=OnboardingApplication.env["SQLITE_DBNAME"], min_length=1)
    postgres_dbname: str | None = None
    postgres_host: str | None = None
    # One port, or one per host of a replicated store's POSTGRES_HOST list.
    postgres_port: str = DEFAULT_PORT
    postgres_user: str | None = None
    postgres_password: SecretStr | None = None
    postgres_schema: str | None = None
    cipher_key: SecretStr | None = None
    # Required by whatever touches the event store (``run``, ``invite``); see problems().
    a4c_token_secret: SecretStr | None = None
    a4c_invitation_ttl_seconds: int | None = Field(
        default=None, ge=60, le=int(MAX_INVITATION_TTL.total_seconds())
    )
    # Wrong tokens allowed per invitation per window before TooManyAttempts (attempts.py).
    a4c_accept_max_wrong: MaxWrong = DEFAULT_MAX_WRONG
    a4c_accept_window_seconds: WindowSeconds = DEFAULT_WINDOW_SECONDS
    # Other POSTGRES_*/SQLITE_*/CIPHER_* variables, kept opaque: any of them may be a secret.
    persistence_extra: dict[str, SecretStr] = Field(default_factory=dict)

    # RFC 2136 dynamic DNS.
    rfc2136_server: str | None = None
    rfc2136_port: int = Field(default=53, ge=1, le=65535)
    rfc2136_zone: str | None = None
    rfc2136_key_name: str | None = None
    rfc2136_key_secret: SecretStr | None = None
    rfc2136_algorithm: str = "hmac-sha256"

    # Cloudflare.
    cloudflare_api_token: SecretStr | None = None
    cloudflare_zone_id: str | None = None
    cloudflare_base_url: str = "https://api.cloudflare.com/client/v4"

    # Verification: the zone's authoritative servers ("host[:port],...").
    dns_nameservers: list[Nameserver] = Field(default_factory=list)
    # E-mail domain challenges (TXT records of customers' domains): recursive resolvers
    # ("host[:port],..."); empty: the system's (/etc/resolv.conf).
    email_domain_nameservers: list[Nameserver] = Field(default_factory=list)
    # Organizations' identity providers on private, loopback or link-local addresses
    # (development, tests); https is required in production whatever this says.
    sso_allow_private_addresses: bool = False
    # The key ring organizations' SSO client secrets are sealed with (the API's
    # SSO_SECRET_KEYS, the format of WEBHOOK_SECRET_KEYS): opened only to exchange a
    # sign-in's code. Unset: sign-ins through organizations' providers fail.
    sso_secret_keys: SecretStr | None = None

    # SMTP.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_from: str | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    a4c_mail_dir: str | None = None

    # What the activities put into records and mails.
    accept_url_base: str = DEFAULT_API_URL + ACCEPT_PATH
    mail_domain: str | None = None
    dns_target: str = "ingress.a4c.localhost"
    dns_zone: str = DEFAULT_DNS_ZONE
    # Named in the provisioning-failed, welcome and offboarded mails; unset: the sender.
    support_email: Email | None = None
    # Where a failed onboarding is reported (operators); unset: no such mail.
    provisioning_failed_mail_to: Email | None = None

    # The process.
    health_host: str = PROBE_HOST  # loopback unless set (the k8s manifest sets 0.0.0.0)
    health_port: int = Field(default=8081, ge=0, le=65535)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0, le=3600)
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"
    # Tracing (off by default); the standard OpenTelemetry variable.
    otel_traces_exporter: Literal["none", "console", "otlp"] = "none"

    # Production must say these itself: a dev default there would be silently wrong.
    PRODUCTION_REQUIRED: ClassVar[tuple[str, ...]] = ("accept_url_base", "dns_target", "dns_zone")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "workflow_mode", "dns_provider", "email_provider", "smtp_security", mode="before"
    )
    @classmethod
    def _lower_choice(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return value or None
        return value

    @field_validator("postgres_port", mode="before")
    @classmethod
    def _ports(cls, value: Any) -> str:
        return port_list(str(value))

    @field_validator("dns_nameservers", "email_domain_nameservers", mode="before")
    @classmethod
    def _parse_nameservers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [_nameserver(item) for item in value.split(",") if item.strip()]
        return value

    @field_validator("a4c_token_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_TOKEN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_SECRET_LENGTH} bytes")
        return value

    @field_validator("sso_secret_keys", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sso_secret_keys")
    @classmethod
    def _key_ring(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                SecretKeys.parse(value.get_secret_value(), SSO_SECRET_KEYS_VARIABLE)
            except SecretKeysError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("rfc2136_algorithm")
    @classmethod
    def _tsig_algorithm(cls, value: str) -> str:
        value = value.lower().rstrip(".")
        if value not in TSIG_ALGORITHMS:
            raise ValueError(f"must be one of {', '.join(sorted(TSIG_ALGORITHMS))}")
        return value

    @field_validator("accept_url_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment (the token is appended)")
        return value

    # --- what the mode and overrides resolve to ------------------------------------

    @property
    def resolved_dns_provider(self) -> DNSProviderName:
        chosen = self.dns_provider or DEFAULT_DNS[self.workflow_mode]
        return chosen  # type: ignore[return-value]

    @property
    def resolved_email_provider(self) -> EmailProviderName:
        if self.email_provider is not None:
            return self.email_provider
        if self.workflow_mode == "mock":
            return "memory"
        if self.workflow_mode == "production":
            return "smtp"
        return "file" if self.a4c_mail_dir else "logging"

    @property
    def resolved_nameservers(self) -> list[Nameserver]:
        """``DNS_NAMESERVERS``, else the RFC 2136 primary (it is authoritative)."""
        if self.dns_nameservers:
            return list(self.dns_nameservers)
        if self.resolved_dns_provider == "rfc2136" and self.rfc2136_server:
            return [Nameserver(host=self.rfc2136_server, port=self.rfc2136_port)]
        return []

    @property
    def resolved_mail_domain(self) -> str:
        """``MAIL_DOMAIN``, else the domain of ``SMTP_FROM``, else ``a4c.localhost``."""
        if self.mail_domain:
            return self.mail_domain
        if self.smtp_from and "@" in self.smtp_from:
            return self.smtp_from.rsplit("@", 1)[1].strip(" >")
        return "a4c.localhost"

    @property
    def from_address(self) -> str:
        return self.smtp_from or f"a4c@{self.resolved_mail_domain}"

    @property
    def resolved_support_email(self) -> str:
        """``SUPPORT_EMAIL``, else the address the mails come from."""
        return self.support_email or self.from_address

    # --- checks that span several variables ----------------------------------------

    def problems(self, scope: Scope = "worker") -> list[tuple[str, str]]:
        """Cross-variable mistakes for ``scope``, each naming the variable to fix.

        ``client`` (status, cancel, bootstrap...) needs only Temporal's settings;
        ``store`` (invite) also the event store; ``worker`` (run) everything.
        """
        found: list[tuple[str, str]] = []

        def require(field: str, why: str) -> None:
            if getattr(self, field) in (None, ""):
                found.append((field.upper(), f"required {why}"))

        found.extend(self.temporal_problems())  # every command reaches Temporal or may
        if self.workflow_mode == "production" and self.temporal_payload_keys is None:
            # Every command writes or reads history, which would hold personal data in clear.
            found.append(("TEMPORAL_PAYLOAD_KEYS", REQUIRED_IN_PRODUCTION))
        if scope == "client":
            return found
        require("a4c_token_secret", "(at least 32 bytes; it derives invitation tokens)")
        if self.persistence_module == "eventsourcing.postgres":
            for field in ("postgres_dbname", "postgres_host", "postgres_user"):
                require(field, "when PERSISTENCE_MODULE is eventsourcing.postgres")
        if scope == "store":
            return found

        dns, email = self.resolved_dns_provider, self.resolved_email_provider
        # A provider the mode chose says so: the operator may never have named it.
        chosen_by_mode = f" (the default when WORKFLOW_MODE is {self.workflow_mode})"
        dns_why = "when DNS_PROVIDER is rfc2136" + ("" if self.dns_provider else chosen_by_mode)
        smtp_why = "when EMAIL_PROVIDER is smtp" + ("" if self.email_provider else chosen_by_mode)
        if dns == "rfc2136":
            for field in (
                "rfc2136_server",
                "rfc2136_zone",
                "rfc2136_key_name",
                "rfc2136_key_secret",
            ):
                require(field, dns_why)
            if self.rfc2136_key_secret is not None and not _is_base64(self.rfc2136_key_secret):
                found.append(("RFC2136_KEY_SECRET", "must be base64 (as tsig-keygen prints it)"))
        if dns == "cloudflare":
            require("cloudflare_api_token", "when DNS_PROVIDER is cloudflare")
            require("cloudflare_zone_id", "when DNS_PROVIDER is cloudflare")
            if not self.dns_nameservers:
                found.append(
                    ("DNS_NAMESERVERS", "required when DNS_PROVIDER is cloudflare (the zone's NS)")
                )
        if email == "smtp":
            require("smtp_host", smtp_why)
            require("smtp_from", smtp_why)
            if (self.smtp_username is None) != (self.smtp_password is None):
                missing = "SMTP_PASSWORD" if self.smtp_password is None else "SMTP_USERNAME"
                found.append((missing, "SMTP_USERNAME and SMTP_PASSWORD must be set together"))
        if email == "file":
            require("a4c_mail_dir", "when EMAIL_PROVIDER is file")
        if self.workflow_mode == "production":
            for field in self.PRODUCTION_REQUIRED:
                if field not in self.model_fields_set:
                    found.append((field.upper(), REQUIRED_IN_PRODUCTION))
        return found

    # --- what validate-config prints -------------------------------------------------

    def masked(self) -> dict[str, Any]:
        """Every setting by variable name, secrets masked, plus what the mode resolved to."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = displayed(name, getattr(self, name))
            if name in ("dns_nameservers", "email_domain_nameservers"):
                value = [f"{ns.host}:{ns.port}" for ns in value]
            elif name == "persistence_extra":
                value = {
                    k: MASK if _looks_secret(k) else v.get_secret_value() for k, v in value.items()
                }
            shown[name.upper()] = value
        shown["resolved"] = {
            "dns_provider": self.resolved_dns_provider,
            "email_provider": self.resolved_email_provider,
            "dns_nameservers": [f"{ns.host}:{ns.port}" for ns in self.resolved_nameservers],
            "mail_domain": self.resolved_mail_domain,
            "support_email": self.resolved_support_email,
            "temporal": self.temporal_connection().masked(),
        }
        return shown


def load_settings(environ: Mapping[str, str], scope: Scope = "worker") -> WorkerSettings:
    """Validate the variables ``scope`` needs from ``environ``; :class:`SettingsError` if wrong.

    Empty values count as unset, so ``SMTP_HOST=`` in a manifest is reported as missing.
    Names are matched whatever their case (``smtp_host`` too), as they always were here.
    """
    environ = {key.upper(): value for key, value in environ.items()}
    # The other store variables are passed through: eventsourcing documents them.
    extra = {
        key: value
        for key, value in environ.items()
        if value != "" and key.lower() not in WorkerSettings.model_fields and is_store_variable(key)
    }
    settings = read_settings(
        WorkerSettings, environ, empty_is_unset=True, derived={"persistence_extra": extra}
    )
    problems = settings.problems(scope)
    if problems and "workflow_mode" not in settings.model_fields_set:
        problems.append(("WORKFLOW_MODE", UNSET_MODE_HINT))
    if problems:
        raise SettingsError(problems)
    return settings


def _nameserver(item: str) -> Nameserver:
    """``host``, ``host:port`` or ``[v6]:port``."""
    item = item.strip()
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":") or "53"
    elif item.count(":") == 1:
        host, port = item.split(":")
    else:
        host, port = item, "53"
    if not port.isdigit():
        raise ValueError(f"{item!r}: port must be a number")
    return Nameserver(host=host, port=int(port))


def _is_base64(secret: SecretStr) -> bool:
    try:
        base64.b64decode(secret.get_secret_value(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _looks_secret(name: str) -> bool:
    return any(word in name.upper() for word in ("PASSWORD", "KEY", "SECRET", "TOKEN"))
