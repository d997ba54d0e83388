"""Projector configuration from the environment, validated once in the CLI entry point.

``PROJECTOR_*`` variables tune the daemon, ``LOG_FORMAT`` (json | text) is shared with
the worker; the event store is configured the eventsourcing way
(``PERSISTENCE_MODULE``, ``POSTGRES_*``, ``SQLITE_DBNAME``, ``CIPHER_*``). No token
secret: the projector never derives a token (see :mod:`a4c_projector.eventlog.store`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from a4c_domain.persistence import is_store_variable
from a4c_projector.eventlog.guard import DEFAULT_GAP_GRACE
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION
from a4c_service.logs import LOG_FORMAT_VAR, LogFormat, LogLevel
from a4c_service.probes import DEFAULT_HOST as PROBE_HOST
from a4c_service.settings import lowercase, read_settings, uppercase

# Events per catch-up batch. Measured with bench/projector_catchup.py: 5000 beat 2000 by
# 10-25% (fewer commits and statements per event), and 10000 beats 5000 by 5-15% (more
# of an aggregate's events fold into one row write) for ~20 MB more memory at peak and
# transactions of about half a second. A live batch is as small as the events waiting,
# whatever this is.
DEFAULT_BATCH_SIZE = 10_000


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROJECTOR_", extra="ignore", frozen=True)

    projection: str = Field(default=DEFAULT_PROJECTION, min_length=1, max_length=100)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=50_000)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    gap_grace: float = Field(default=DEFAULT_GAP_GRACE, gt=0, le=60)  # 0 would fence every gap
    http_host: str = PROBE_HOST  # loopback unless set (the k8s manifest sets 0.0.0.0)
    http_port: int = Field(default=9102, ge=0, le=65535)
    ready_max_age: float = Field(default=30.0, gt=0)
    # /health turns red when the loop has not beaten for this long (default: the larger
    # of 5 s and four poll intervals).
    heartbeat_max_age: float | None = Field(default=None, gt=0)
    dead_letter: bool = False
    log_level: LogLevel = "INFO"
    log_format: LogFormat = "json"  # from LOG_FORMAT, the worker's variable
    # Where the read-model DDL is (default: the source tree, then <prefix>/share/a4c/sql).
    sql_dir: Path | None = None

    _lowercase = field_validator("log_format", mode="before")(lowercase)
    _uppercase = field_validator("log_level", mode="before")(uppercase)

    @property
    def heartbeat_limit(self) -> float:
        return self.heartbeat_max_age or max(5.0, 4 * self.poll_interval)


def load_settings(environ: Mapping[str, str]) -> ProjectorSettings:
    """Validate; a bad value raises :class:`~a4c_service.settings.SettingsError` (a
    ConfigurationError) naming the variable."""
    return read_settings(ProjectorSettings, environ, variable=variable)


def variable(field: str) -> str:
    """The variable field ``field`` is read from (``PROJECTOR_*``; ``LOG_FORMAT`` shared)."""
    return LOG_FORMAT_VAR if field == "log_format" else f"PROJECTOR_{field.upper()}"


def store_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the environment that configures the event store (never the token key)."""
    return {k: v for k, v in environ.items() if is_store_variable(k)}
