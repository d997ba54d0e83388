"""``a4c validate``: is this deployment able to run? One line per dependency.

Checks, in order: the configuration itself, the event store (PostgreSQL or SQLite), the
projector's read-model tables, Temporal, the DNS provider and the e-mail provider. Each
is reported ``ok`` with what was found or ``FAILING`` with the reason; a failing check
does not stop the others, so one run shows everything an operator has to fix.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import httpx
import psycopg
from eventsourcing.utils import Environment

from a4c_domain import OnboardingApplication
from a4c_domain.persistence import postgres_connection
from a4c_projector.schema import expected_tables
from a4c_worker.client import connect
from a4c_worker.config import SettingsError, WorkerSettings, load_settings
from a4c_worker.connection import connect_failure
from a4c_worker.wiring import application_env, build_application

READ_MODEL_TABLES = expected_tables(read_models_only=True)  # declared once, by the projector
TIMEOUT = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        # One line whatever the detail: a driver's error text spans several (psycopg's
        # hint, the offending SQL and a caret) and would break the one-line-per-check form.
        detail = " ".join(self.detail.split())
        return f"{'ok' if self.ok else 'FAILING':<8} {self.name:<12} {detail}"


async def _check(name: str, probe: Callable[[], Awaitable[str]]) -> Check:
    try:
        return Check(name, True, await asyncio.wait_for(probe(), TIMEOUT))
    except TimeoutError:
        return Check(name, False, f"no answer within {TIMEOUT:.0f}s")
    except Exception as exc:  # a report, not control flow
        return Check(name, False, f"{type(exc).__name__}: {exc}")


async def _event_store(settings: WorkerSettings) -> str:
    def probe() -> str:
        app = build_application(settings)
        try:
            return (
                f"{settings.persistence_module}: {app.recorder.max_notification_id() or 0} events"
            )
        finally:
            app.close()

    return await asyncio.to_thread(probe)


async def _read_models(settings: WorkerSettings) -> str:
    env = application_env(settings)

    def probe() -> str:
        counts = []
        if settings.persistence_module == "eventsourcing.postgres":
            connection = postgres_connection(Environment(OnboardingApplication.name, env))
            schema = connection.schema
            with psycopg.connect(**connection.keywords()) as conn:
                for table in READ_MODEL_TABLES:
                    query = psycopg.sql.SQL("SELECT count(*) FROM {}.{}").format(
                        psycopg.sql.Identifier(schema), psycopg.sql.Identifier(table)
                    )
                    row = conn.execute(query).fetchone()
                    counts.append(f"{table}={row[0] if row else 0}")
        else:
            path = Path(env["SQLITE_DBNAME"])
            if not path.exists():
                raise FileNotFoundError(f"{path} does not exist")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                for table in READ_MODEL_TABLES:
                    (count,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()  # noqa: S608
                    counts.append(f"{table}={count}")
        return ", ".join(counts)

    return await asyncio.to_thread(probe)


async def _temporal(settings: WorkerSettings) -> str:
    temporal = settings.temporal_connection()
    try:
        client = await connect(temporal)
    except RuntimeError as exc:  # the SDK's "Failed client connect"
        raise ConnectionError(connect_failure(temporal, exc)) from None
    await client.service_client.check_health()
    return temporal.describe()


async def _dns(settings: WorkerSettings) -> str:
    provider = settings.resolved_dns_provider
    if provider == "rfc2136":
        assert settings.rfc2136_server and settings.rfc2136_zone
        query = dns.message.make_query(settings.rfc2136_zone, dns.rdatatype.SOA)
        answer = await dns.asyncquery.tcp(
            query, settings.rfc2136_server, port=settings.rfc2136_port, timeout=5
        )
        if answer.rcode() != dns.rcode.NOERROR or not answer.answer:
            rcode = dns.rcode.to_text(answer.rcode())
            raise RuntimeError(f"SOA of {settings.rfc2136_zone}: {rcode}")
        server = f"{settings.rfc2136_server}:{settings.rfc2136_port}"
        return f"rfc2136 {server} serves {settings.rfc2136_zone}"
    if provider == "cloudflare":
        assert settings.cloudflare_api_token is not None
        async with httpx.AsyncClient(base_url=settings.cloudflare_base_url, timeout=5) as http:
            response = await http.get(
                f"/zones/{settings.cloudflare_zone_id}",
                headers={
                    "Authorization": f"Bearer {settings.cloudflare_api_token.get_secret_value()}"
                },
            )
        response.raise_for_status()
        return f"cloudflare zone {settings.cloudflare_zone_id}"
    return f"{provider} (no server to reach)"


async def _email(settings: WorkerSettings) -> str:
    provider = settings.resolved_email_provider
    if provider == "smtp":
        assert settings.smtp_host is not None
        smtp = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=5,
        )
        await smtp.connect()
        try:
            if settings.smtp_username and settings.smtp_password:
                await smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            await smtp.noop()
        finally:
            smtp.close()
        return f"smtp {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security})"
    if provider == "file":
        folder = Path(settings.a4c_mail_dir or "mail")

        def probe() -> str:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder):
                pass
            return f"file {folder} is writable"

        return await asyncio.to_thread(probe)
    return f"{provider} (no server to reach)"


async def validate(environ: Mapping[str, str]) -> list[Check]:
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        return [Check("config", False, f"{var}: {msg}") for var, msg in exc.problems]
    checks = [Check("config", True, f"mode={settings.workflow_mode}")]
    checks.append(await _check("event store", lambda: _event_store(settings)))
    checks.append(await _check("read models", lambda: _read_models(settings)))
    checks.append(await _check("temporal", lambda: _temporal(settings)))
    checks.append(await _check("dns", lambda: _dns(settings)))
    checks.append(await _check("email", lambda: _email(settings)))
    return checks


def main_validate(environ: Mapping[str, str]) -> int:
    checks = asyncio.run(validate(environ))
    for check in checks:
        print(check.line())
    return 0 if all(c.ok for c in checks) else 1
