"""Opening a connection to a :class:`~a4c_projector.dialects.location.Location`, as the
database of its dialect. Always explicit: nothing connects at import time."""

from __future__ import annotations

import sqlite3

import psycopg

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.location import Location
from a4c_projector.dialects.postgres import PostgresDatabase
from a4c_projector.dialects.sqlite import SQLiteDatabase


def connect(location: Location, *, autocommit: bool = False, purpose: str = "batch") -> Database:
    """A new connection; ``purpose`` names it in ``pg_stat_activity`` for operators."""
    if location.dialect == "postgres":
        conn = psycopg.connect(
            location.conninfo,  # carries the operator's connect_timeout
            password=location.get_password() if location.get_password else None,
            autocommit=autocommit,
            options=f"-c search_path={location.schema}",
            application_name=location.application_name(purpose),
            # A peer that vanishes without a FIN (node lost) is noticed in ~25 s
            # instead of the kernel's two hours.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )
        return PostgresDatabase(conn, location)
    lite = sqlite3.connect(location.sqlite_path, timeout=30, isolation_level=None)
    lite.execute("PRAGMA journal_mode=WAL")
    lite.execute("PRAGMA busy_timeout=30000")
    return SQLiteDatabase(lite, location)
