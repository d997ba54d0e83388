"""``a4c validate`` against real servers: every dependency reported, failures named."""

from __future__ import annotations

from pathlib import Path

import psycopg
from temporalio.testing import WorkflowEnvironment

from a4c_tool.validate import validate
from a4c_worker.codec import PayloadKeys
from tests.servers.bind import BindServer
from tests.servers.postgres import PG_DBNAME, PG_HOST, PG_PORT, PG_USER
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET, free_port

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def production_environ(
    schema: str, bind: BindServer, smtp: SMTPTestServer, temporal_address: str
) -> dict[str, str]:
    return {
        "WORKFLOW_MODE": "production",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": PG_HOST,
        "POSTGRES_PORT": PG_PORT,
        "POSTGRES_USER": PG_USER,
        "POSTGRES_DBNAME": PG_DBNAME,
        "POSTGRES_SCHEMA": schema,
        "TEMPORAL_ADDRESS": temporal_address,
        "RFC2136_SERVER": bind.host,
        "RFC2136_PORT": str(bind.port),
        "RFC2136_ZONE": bind.zone,
        "RFC2136_KEY_NAME": bind.key_name,
        "RFC2136_KEY_SECRET": bind.secret,
        "DNS_NAMESERVERS": f"{bind.host}:{bind.port}",
        "SMTP_HOST": smtp.host,
        "SMTP_PORT": str(smtp.port),
        "SMTP_SECURITY": "none",
        "SMTP_FROM": "onboarding@a4c.test",
        "ACCEPT_URL_BASE": "https://app.a4c.test/accept",
        "DNS_TARGET": "ingress.a4c.test",
        "DNS_ZONE": bind.zone.rstrip("."),
        "TEMPORAL_PAYLOAD_KEYS": PayloadKeys.generate("k1").entry(),
    }


def create_read_models(pg_server: str, schema: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("SET search_path TO {}").format(psycopg.sql.Identifier(schema))
        )
        for path in sorted(SQL_DIR.glob("0[1-9]*.sql")):
            conn.execute(path.read_text().encode())


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_everything_reachable_is_ok(
    pg_server: str,
    pg_schema: str,
    bind_server: BindServer,
    smtp_server: SMTPTestServer,
    temporal_env: WorkflowEnvironment,
) -> None:
    create_read_models(pg_server, pg_schema)
    environ = production_environ(pg_schema, bind_server, smtp_server, address(temporal_env))
    checks = await validate(environ)
    assert [c.name for c in checks] == [
        "config", "event store", "read models", "temporal", "dns", "email",
    ]  # fmt: skip
    assert all(c.ok for c in checks), [c.line() for c in checks]
    by_name = {c.name: c.detail for c in checks}
    assert "organizations=0" in by_name["read models"]
    assert bind_server.zone in by_name["dns"]
    # The TSIG secret and the token key never appear in the report.
    report = "\n".join(c.line() for c in checks)
    assert bind_server.secret not in report and TOKEN_SECRET not in report


async def test_failures_are_named_and_do_not_hide_the_rest(
    pg_schema: str,
    bind_server: BindServer,
    smtp_server: SMTPTestServer,
    temporal_env: WorkflowEnvironment,
) -> None:
    environ = production_environ(pg_schema, bind_server, smtp_server, address(temporal_env))
    environ["SMTP_PORT"] = str(free_port())  # nothing listens there
    environ["RFC2136_ZONE"] = "not-served.example."
    checks = {c.name: c for c in await validate(environ)}
    assert checks["event store"].ok and checks["temporal"].ok
    assert not checks["read models"].ok and "organizations" in checks["read models"].detail
    assert not checks["email"].ok
    assert not checks["dns"].ok and "not-served.example" in checks["dns"].detail


async def test_bad_configuration_names_each_variable() -> None:
    checks = await validate({"WORKFLOW_MODE": "production", "A4C_TOKEN_SECRET": "short"})
    assert [(c.name, c.ok) for c in checks] == [("config", False)]
    assert "A4C_TOKEN_SECRET" in checks[0].detail

    checks = await validate({"WORKFLOW_MODE": "production", "A4C_TOKEN_SECRET": TOKEN_SECRET})
    assert not any(c.ok for c in checks)
    failing = " ".join(c.detail for c in checks)
    assert "SMTP_HOST" in failing and "RFC2136_SERVER" in failing
