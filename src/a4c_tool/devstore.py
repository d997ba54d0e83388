"""``a4c dev --postgres``: the local stack on the local PostgreSQL, in a database of its own.

A database, not a schema in an existing one: the dev stack's event store, read models
and tracking tables then share nothing with another application's (nor with the tests'
``test`` database), ``public`` works as in production, and starting afresh is one
``dropdb a4c_dev``. The defaults are the local server the tests use (127.0.0.1:5432,
user ``postgres``, trust authentication); any ``POSTGRES_*`` in the environment wins,
so ``POSTGRES_DBNAME=other a4c dev --postgres`` runs on another database, created too.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import errors, sql

from a4c_domain.persistence import PERSISTENCE_MODULE_VAR, postgres_connection

DEV_DATABASE = "a4c_dev"
DEV_POSTGRES = {
    "POSTGRES_HOST": "127.0.0.1",
    "POSTGRES_PORT": "5432",
    "POSTGRES_USER": "postgres",
    "POSTGRES_DBNAME": DEV_DATABASE,
}
# Where CREATE DATABASE is sent from: the maintenance database every server has.
MAINTENANCE_DATABASE = "postgres"


class DevDatabaseUnavailable(RuntimeError):
    """The dev stack's PostgreSQL database can neither be reached nor created."""


def postgres_store(environ: Mapping[str, str]) -> dict[str, str]:
    """The event-store variables of ``a4c dev --postgres``: the defaults, then ``POSTGRES_*``."""
    given = {k: v for k, v in environ.items() if k.startswith("POSTGRES_")}
    return {**DEV_POSTGRES, **given, PERSISTENCE_MODULE_VAR: "eventsourcing.postgres"}


def ensure_database(store: Mapping[str, str]) -> bool:
    """Create the store's database unless it exists; True when this call created it.

    Tried first by connecting to it, so a login without ``CREATEDB`` works on a database
    someone else made; else created from the maintenance database. Safe when two runs
    race: the loser finds it made.
    """
    connection = postgres_connection(store)
    keywords = connection.keywords()
    where = f"{connection.dbname!r} on {connection.address} as {connection.user!r}"
    unreachable = f"cannot reach the database {where}"
    try:
        with psycopg.connect(**keywords):
            return False
    except psycopg.OperationalError as exc:
        # libpq reports a missing database like any failed connection (no SQLSTATE):
        # the server's catalogue tells whether that is the reason.
        refused = exc
    exists = sql.SQL("SELECT 1 FROM pg_database WHERE datname = %s")
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(connection.dbname))
    try:
        maintenance = keywords | {"dbname": MAINTENANCE_DATABASE}
        with psycopg.connect(**maintenance, autocommit=True) as conn:
            if conn.execute(exists, (connection.dbname,)).fetchone() is not None:
                raise DevDatabaseUnavailable(f"{unreachable}: {_reason(refused)}")
            conn.execute(create)
    except errors.DuplicateDatabase:  # another run made it in between
        return False
    except psycopg.Error as exc:
        raise DevDatabaseUnavailable(
            f"{unreachable}: {_reason(refused)}; nor create it: {_reason(exc)}"
        ) from None
    return True


def _reason(exc: psycopg.Error) -> str:
    """The server's or libpq's first line: it names the cause, never a password."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
