"""From an eventsourcing environment to what the projector needs: where, and how to decode.

The domain application is constructed (it never issues a command here) only for its
mapper — upcasting, the optional cipher — and for the name of its events table, so the
projector reads exactly what the domain wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import Mapper

from a4c_domain import OnboardingApplication
from a4c_projector.db import Location


@dataclass(frozen=True)
class EventStore:
    location: Location
    mapper: Mapper[Any]
    channel: str | None  # the NOTIFY channel of PostgreSQL inserts


def postgres_conninfo(env: Mapping[str, str]) -> str:
    parts = {
        "host": env.get("POSTGRES_HOST", "127.0.0.1"),
        "port": env.get("POSTGRES_PORT", "5432"),
        "user": env.get("POSTGRES_USER", "postgres"),
        "dbname": env.get("POSTGRES_DBNAME", "postgres"),
    }
    password = env.get("POSTGRES_PASSWORD")
    if password:
        parts["password"] = password
    return " ".join(f"{k}={v}" for k, v in parts.items())


def open_event_store(env: Mapping[str, str], sql_dir: Path | None = None) -> EventStore:
    """The store ``env`` configures; ``sql_dir``: the DDL directory set by the operator."""
    app = OnboardingApplication(env)
    recorder: Any = app.recorder
    module = app.env.get("PERSISTENCE_MODULE") or ""
    if "postgres" in module:
        location = Location(
            dialect="postgres",
            conninfo=postgres_conninfo(app.env),
            schema=recorder.datastore.schema or "public",
            events_table=recorder.events_table_name,
            sql_dir=sql_dir,
        )
        channel: str | None = recorder.channel_name
    else:
        location = Location(
            dialect="sqlite",
            sqlite_path=app.env.get("SQLITE_DBNAME") or "a4c-events.sqlite",
            events_table=recorder.events_table_name,
            sql_dir=sql_dir,
        )
        channel = None
    mapper = app.mapper
    app.close()
    return EventStore(location=location, mapper=mapper, channel=channel)
