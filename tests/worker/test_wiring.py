"""The worker's event-store environment: what it passes on, and trust auth on real PostgreSQL."""

from __future__ import annotations

from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET

from a4c_worker.config import load_settings
from a4c_worker.wiring import application_env, build_application


def test_every_store_variable_reaches_the_event_store() -> None:
    env = application_env(
        load_settings(
            {
                "WORKFLOW_MODE": "development",
                "A4C_TOKEN_SECRET": TOKEN_SECRET,
                "CREATE_TABLE": "n",  # a DBA made the table (sql/001_event_store.sql)
                "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
                "POSTGRES_GET_PASSWORD_TOPIC": "secrets_module:issue",
            }
        )
    )
    assert env["CREATE_TABLE"] == "n"
    assert env["COMPRESSOR_TOPIC"] == "eventsourcing.compressor:ZlibCompressor"
    assert env["POSTGRES_GET_PASSWORD_TOPIC"] == "secrets_module:issue"


def test_trust_auth_needs_no_postgres_password(pg_schema: str) -> None:
    environ = {
        **postgres_env(pg_schema),
        "WORKFLOW_MODE": "development",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
    }
    del environ["POSTGRES_PASSWORD"]
    settings = load_settings(environ, "store")
    assert "POSTGRES_PASSWORD" not in application_env(settings)
    app = build_application(settings)
    try:
        org = app.register_organization(name="Trust", slug="trust", org_type="provider")
        assert org.position == 1
    finally:
        app.close()
