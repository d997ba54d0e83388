"""Projector configuration from the environment, validated once in the CLI entry point.

``PROJECTOR_*`` variables tune the daemon; the event store is configured the
eventsourcing way (``PERSISTENCE_MODULE``, ``POSTGRES_*``, ``SQLITE_DBNAME``,
``CIPHER_*``) plus ``A4C_TOKEN_SECRET``, which the domain application requires even
though the projector never derives a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from a4c_domain.errors import ConfigurationError
from a4c_domain.probes import DEFAULT_HOST as PROBE_HOST

STORE_PREFIXES = ("PERSISTENCE_MODULE", "POSTGRES_", "SQLITE_", "CIPHER_", "A4C_")
# Events per catch-up batch. Measured with bench/projector_catchup.py: 5000 beat 2000 by
# 10-25% (fewer commits and statements per event), and 10000 beats 5000 by 5-15% (more
# of an aggregate's events fold into one row write) for ~20 MB more memory at peak and
# transactions of about half a second. A live batch is as small as the events waiting,
# whatever this is.
DEFAULT_BATCH_SIZE = 10_000


class ProjectorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PROJECTOR_", extra="ignore", frozen=True)

    projection: str = Field(default="a4c", min_length=1, max_length=100)
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, ge=1, le=50_000)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    gap_grace: float = Field(default=0.25, ge=0, le=60)
    http_host: str = PROBE_HOST  # loopback unless set (the k8s manifest sets 0.0.0.0)
    http_port: int = Field(default=9102, ge=0, le=65535)
    ready_max_age: float = Field(default=30.0, gt=0)
    # /health turns red when the loop has not beaten for this long (default: the larger
    # of 5 s and four poll intervals).
    heartbeat_max_age: float | None = Field(default=None, gt=0)
    dead_letter: bool = False
    log_level: str = "INFO"
    # Where the read-model DDL is (default: the source tree, then <prefix>/share/a4c/sql).
    sql_dir: Path | None = None

    @property
    def heartbeat_limit(self) -> float:
        return self.heartbeat_max_age or max(5.0, 4 * self.poll_interval)


def load_settings(environ: Mapping[str, str]) -> ProjectorSettings:
    """Validate; a bad value raises ConfigurationError naming the variable."""
    try:
        # model_validate, not the constructor: only ``environ`` counts, not os.environ.
        return ProjectorSettings.model_validate(
            {
                k[len("PROJECTOR_") :].lower(): v
                for k, v in environ.items()
                if k.startswith("PROJECTOR_")
            }
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"PROJECTOR_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigurationError(problems) from None


def store_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of the environment that configures the event store."""
    return {k: v for k, v in environ.items() if k.startswith(STORE_PREFIXES)}
