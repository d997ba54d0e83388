"""From an eventsourcing environment to what the projector needs: where, and how to decode.

The domain application is constructed (it never issues a command here) only for its
mapper — upcasting, the optional cipher — and for the name of its events table, so the
projector reads exactly what the domain wrote. A configuration mistake, including a
PostgreSQL that cannot be reached, raises ``ConfigurationError`` naming the variable,
within the connect timeout (before eventsourcing's pool would wait for a connection).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import Mapper, PersistenceError
from eventsourcing.utils import Environment

from a4c_domain import OnboardingApplication
from a4c_domain.application import TOKEN_SECRET_VAR
from a4c_domain.errors import ConfigurationError, StoreUnreachable
from a4c_domain.persistence import (
    DEFAULT_SQLITE_DBNAME,
    PERSISTENCE_MODULE_VAR,
    PERSISTENCE_MODULES,
    SQLITE_DBNAME_VAR,
    PostgresConnection,
    connect_failure,
    postgres_connection,
    store_flags,
)
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location


@dataclass(frozen=True)
class EventStore:
    location: Location
    mapper: Mapper[Any]
    channel: str | None  # the NOTIFY channel of PostgreSQL inserts


def open_event_store(env: Mapping[str, str], sql_dir: Path | None = None) -> EventStore:
    """The store ``env`` configures; ``sql_dir``: the DDL directory set by the operator."""
    # Read as the application reads it (A4C_-prefixed names first).
    environment = Environment(OnboardingApplication.name, env)
    module = (
        environment.get(PERSISTENCE_MODULE_VAR) or OnboardingApplication.env[PERSISTENCE_MODULE_VAR]
    )
    if module not in PERSISTENCE_MODULES:
        raise ConfigurationError(
            f"{PERSISTENCE_MODULE_VAR}: {module!r} is not one of {', '.join(PERSISTENCE_MODULES)}"
        )
    creates_table = store_flags(environment)["CREATE_TABLE"]
    connection = None
    if module == "eventsourcing.postgres":
        connection = postgres_connection(environment)
        check_reachable(connection)
    app = _application(env, "SQLITE_DBNAME" if connection is None else "POSTGRES_SCHEMA")
    recorder: Any = app.recorder
    if connection is not None:
        location = Location(
            dialect="postgres",
            conninfo=psycopg.conninfo.make_conninfo(
                **connection.keywords(with_password=connection.get_password is None)
            ),
            get_password=connection.get_password,
            schema=connection.schema,
            events_table=recorder.events_table_name,
            sql_dir=sql_dir,
        )
        channel: str | None = recorder.channel_name
    else:
        location = Location(
            dialect="sqlite",
            sqlite_path=app.env.get(SQLITE_DBNAME_VAR) or DEFAULT_SQLITE_DBNAME,
            events_table=recorder.events_table_name,
            sql_dir=sql_dir,
        )
        channel = None
    mapper = app.mapper
    app.close()
    if not creates_table:
        require_events_table(location)
    return EventStore(location=location, mapper=mapper, channel=channel)


def require_events_table(location: Location) -> None:
    """With ``CREATE_TABLE=n`` nobody creates the event store: a missing one is named."""
    with connect(location, purpose="startup") as db:
        found = db.events_table_exists()
    if not found:
        where = "POSTGRES_SCHEMA" if location.dialect == "postgres" else "SQLITE_DBNAME"
        raise ConfigurationError(
            f"{where}: no event store table {location.qualified_events_table} and "
            "CREATE_TABLE is off (create it with sql/001_event_store.sql)"
        )


def _application(env: Mapping[str, str], where: str) -> OnboardingApplication:
    """The domain application, holding a throwaway token key.

    The projector never issues or checks a token, so it needs no secret, and with a
    fresh random key it could not derive a real token even if asked. ``where``: the
    variable to name when the store cannot be opened (reached, but no schema or file).
    """
    without_secret = {k: v for k, v in env.items() if not k.endswith(TOKEN_SECRET_VAR)}
    try:
        return OnboardingApplication(without_secret, token_secret=secrets.token_bytes(32))
    except OSError as exc:  # eventsourcing's word for a bad value; it quotes the variable
        named = re.search(r"'([A-Z][A-Z0-9_]*)'", str(exc))
        raise ConfigurationError(f"{named.group(1)}: {exc}" if named else str(exc)) from None
    except PersistenceError as exc:
        raise ConfigurationError(
            f"{where}: cannot open the event store: {_first_line(exc)}"
        ) from None


def check_reachable(connection: PostgresConnection) -> None:
    """Connect once; a failure raises StoreUnreachable naming the variable to fix."""
    try:
        with psycopg.connect(**connection.keywords()):
            pass
    except psycopg.OperationalError as exc:
        raise StoreUnreachable(connect_failure(connection, exc)) from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
