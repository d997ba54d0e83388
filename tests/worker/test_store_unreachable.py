"""The worker's event store, PostgreSQL unreachable: it fails at once with a
ConfigurationError naming the variable (as the projector does), rather than waiting
out eventsourcing's pool for half a minute with "couldn't get a connection"."""

from __future__ import annotations

import asyncio

import pytest
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, free_port

from a4c_domain.errors import ConfigurationError
from a4c_worker.config import load_settings
from a4c_worker.wiring import build_application

# eventsourcing's pool waits this long for a connection (its POSTGRES_CONNECT_TIMEOUT
# default); a refused connection must be reported long before.
POOL_WAIT = 30.0


async def test_an_unreachable_database_fails_fast_naming_the_variable() -> None:
    port = free_port()  # nothing listens there
    environ = {
        **postgres_env("unreachable"),
        "POSTGRES_PORT": str(port),
        "POSTGRES_PASSWORD": "not-shown-anywhere",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "WORKFLOW_MODE": "development",
    }
    settings = load_settings(environ, "store")

    with pytest.raises(ConfigurationError) as caught:
        await asyncio.wait_for(asyncio.to_thread(build_application, settings), POOL_WAIT / 6)

    message = str(caught.value)
    assert message.startswith(
        f"POSTGRES_HOST/POSTGRES_PORT: cannot connect to PostgreSQL at 127.0.0.1:{port}, "
        f"database {environ['POSTGRES_DBNAME']!r}: "
    ), message
    assert "not-shown-anywhere" not in message
