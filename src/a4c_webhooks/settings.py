"""a4c-webhooks configuration from the environment, validated once in the CLI entry point.

``WEBHOOK_*`` / ``WEBHOOKS_MODE`` tune the daemon; the database is the event store's
(``POSTGRES_*``, read the eventsourcing way by
:func:`a4c_projector.eventlog.store.open_event_store`);
Temporal (``TEMPORAL_*``, as the API reads them) is where an automatic disable is sent.
``LOG_LEVEL`` / ``LOG_FORMAT`` are shared with the other processes.

``WEBHOOK_SECRET_KEYS`` is required: without it no endpoint secret opens, so nothing
could be signed. In ``production`` mode only https endpoints are delivered to;
``development`` allows http. Private, loopback and link-local destinations are refused
unless ``WEBHOOK_ALLOW_PRIVATE_ADDRESSES`` is true (development, tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator

from a4c_outbound.transport import OutboundPolicy
from a4c_service.logs import LogFormat, LogLevel
from a4c_service.probes import DEFAULT_HOST as PROBE_HOST
from a4c_service.settings import lowercase, read_settings, uppercase
from a4c_webhooks.schedule import DEFAULT_SCHEDULE, ScheduleError, parse_schedule
from a4c_webhooks.sealing import SecretKeys, SecretKeysError
from a4c_worker.config import DEFAULT_TASK_QUEUE
from a4c_worker.connection import TemporalSettings

WebhooksMode = Literal["production", "development"]
DEFAULT_DISABLE_AFTER = 5 * 86400.0  # five days failing: the endpoint is disabled
DEFAULT_CONCURRENCY = 16
# One endpoint owner's share of the slots: an organization whose endpoints hang cannot
# hold them all (each of the platform's endpoints is an owner of its own).
DEFAULT_MAX_IN_FLIGHT_PER_OWNER = 4


def _duration(text: str) -> float:
    """One duration as the retry schedule writes them: ``30``, ``5s``, ``2h``, ``5d``."""
    if "," in text:
        raise ValueError("one duration, like 5d or 36h")
    try:
        (seconds,) = parse_schedule(text)
    except ScheduleError:
        raise ValueError("not a duration like 30, 5s, 5m, 2h or 5d") from None
    return seconds


def _key_ring(value: SecretStr) -> SecretStr:
    try:
        SecretKeys.parse(value.get_secret_value())
    except SecretKeysError as error:
        # The parser's words name key ids at most; drop its own variable prefix.
        raise ValueError(str(error).removeprefix("WEBHOOK_SECRET_KEYS: ")) from None
    return value


# ``WEBHOOK_SECRET_KEYS`` as the daemon and the API read it: a key ring that opens.
SecretKeysText = Annotated[SecretStr, AfterValidator(_key_ring)]


class WebhookSettings(TemporalSettings):
    """Field ``x_y`` is variable ``X_Y``."""

    webhook_secret_keys: SecretKeysText
    webhooks_mode: WebhooksMode = "production"
    webhook_allow_private_addresses: bool = False
    webhook_retry_schedule: tuple[float, ...] = DEFAULT_SCHEDULE
    webhook_disable_after: float = Field(default=DEFAULT_DISABLE_AFTER, gt=0)
    webhook_concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=1024)
    webhook_max_in_flight_per_owner: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT_PER_OWNER, ge=1, le=1024
    )
    webhook_timeout: float = Field(default=15.0, gt=0, le=60)
    webhook_max_response_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    # How often the fan-out looks for new public events and the scheduler for due ones.
    webhook_poll_interval: float = Field(default=0.5, gt=0, le=60)
    # SIGTERM: how long deliveries in flight may finish before they are abandoned
    # (abandoned ones stay pending and are sent again, with the same webhook-id).
    webhook_shutdown_grace: float = Field(default=20.0, ge=0, le=600)
    webhook_http_host: str = PROBE_HOST
    webhook_http_port: int = Field(default=9104, ge=0, le=65535)
    # /ready turns red when the fan-out is further behind the public events than this.
    webhook_ready_max_lag: int = Field(default=10_000, ge=1)
    temporal_task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"

    _lowercase = field_validator("webhooks_mode", "log_format", mode="before")(lowercase)
    _uppercase = field_validator("log_level", mode="before")(uppercase)

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse_schedule(value)
            except ScheduleError as error:
                raise ValueError(str(error)) from None
        return value

    @field_validator("webhook_disable_after", mode="before")
    @classmethod
    def _disable_after(cls, value: Any) -> Any:
        return _duration(value) if isinstance(value, str) else value

    def problems(self) -> list[tuple[str, str]]:
        """Mistakes spanning several variables, each naming the one to fix."""
        found = self.temporal_problems()
        if self.webhooks_mode == "production" and self.temporal_payload_keys is None:
            # A disable's workflow input names the organization's admins (addresses).
            found.append(("TEMPORAL_PAYLOAD_KEYS", "required when WEBHOOKS_MODE is production"))
        return found

    @property
    def secret_keys(self) -> SecretKeys:
        return SecretKeys.parse(self.webhook_secret_keys.get_secret_value())

    @property
    def outbound_policy(self) -> OutboundPolicy:
        return OutboundPolicy(
            allow_http=self.webhooks_mode == "development",
            allow_private=self.webhook_allow_private_addresses,
            timeout=self.webhook_timeout,
            max_response_bytes=self.webhook_max_response_bytes,
        )


def load_settings(environ: Mapping[str, str]) -> WebhookSettings:
    """Validate; a bad value raises :class:`~a4c_service.settings.SettingsError` (a
    ConfigurationError) naming the variable, never a key."""
    return read_settings(WebhookSettings, environ)


__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_DISABLE_AFTER",
    "DEFAULT_MAX_IN_FLIGHT_PER_OWNER",
    "SecretKeysText",
    "WebhookSettings",
    "WebhooksMode",
    "load_settings",
]
