"""Secured Temporal end to end: a4c through nginx terminating TLS in front of the dev server.

A real ``a4c-worker run`` process polls through the mTLS listener (client certificate);
``a4c-worker bootstrap`` starts and follows a workflow through the API-key listener; the
worker runs it. ``a4c validate`` and a4c-api's gateway connect the same way. A wrong CA,
a missing client certificate, a wrong key or a missing server name fail, each with a
message naming the variable to fix. The proxy's access log shows which listener carried
which calls, so nothing reached Temporal around it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from a4c_api.gateway import Gateway
from a4c_api.settings import load_settings as load_api_settings
from a4c_domain import organization_id
from a4c_projector.queries import Location
from a4c_tool.validate import validate
from a4c_worker.cli import EXIT_OK, EXIT_UNREACHABLE
from tests.servers.tlsproxy import SERVER_NAME, TLSProxy
from tests.support import TOKEN_SECRET, wait_for_async
from tests.worker.test_cli import cli, start_worker, stop_worker, worker_env


def mtls(proxy: TLSProxy) -> dict[str, str]:
    """An on-premises cluster that authenticates clients by certificate."""
    return {
        "TEMPORAL_ADDRESS": proxy.mtls_address,
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(proxy.pki.ca),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(proxy.pki.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(proxy.pki.client_key),
    }


def api_key(proxy: TLSProxy) -> dict[str, str]:
    """Temporal Cloud's way: TLS, and an API key as a bearer token."""
    return {
        "TEMPORAL_ADDRESS": proxy.api_key_address,
        "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(proxy.pki.ca),
        "TEMPORAL_API_KEY": proxy.api_key,
    }


def port_of(address: str) -> str:
    return address.rsplit(":", 1)[1]


async def test_worker_and_commands_run_a_bootstrap_through_mtls_and_an_api_key(
    tls_proxy: TLSProxy, temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # temporal_env's own address is overridden: only the proxy's listeners are used.
    env = worker_env(temporal_env, sqlite=tmp_path / "events.sqlite", **mtls(tls_proxy))
    worker = start_worker(env, tmp_path / "worker.log")  # returns once /ready says 200
    try:
        org = f"tls-{uuid.uuid4().hex[:8]}"
        commands = {
            **{k: v for k, v in env.items() if not k.startswith("TEMPORAL_")},
            "TEMPORAL_TASK_QUEUE": env["TEMPORAL_TASK_QUEUE"],
            **api_key(tls_proxy),
        }
        ran = await cli("bootstrap", "--slug", org, "--name", "TLS Org", env=commands)
        assert ran.code == EXIT_OK, ran.out + ran.err
        assert ran.out.splitlines()[-1].startswith(
            f"bootstrap completed: organization {organization_id(org)}, "
        )
        ran = await cli("status", org, env=commands)
        assert ran.code == EXIT_OK, ran.err
    finally:
        code = stop_worker(worker)
    log = worker.log_text()
    assert code == 0, log
    assert f"on {tls_proxy.mtls_address} namespace=default tls=mtls" in log
    assert tls_proxy.api_key not in log and TOKEN_SECRET not in log

    calls = tls_proxy.requests()
    mtls_port, key_port = port_of(tls_proxy.mtls_address), port_of(tls_proxy.api_key_address)
    assert any(
        line.startswith(f"{mtls_port} 200 ") and "PollWorkflowTaskQueue" in line for line in calls
    ), calls
    assert any(
        line.startswith(f"{key_port} 200 ") and "StartWorkflowExecution" in line for line in calls
    ), calls


async def test_a4c_validate_reaches_temporal_through_tls(
    tls_proxy: TLSProxy, tmp_path: Path
) -> None:
    environ = {
        "WORKFLOW_MODE": "mock",
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
    }
    checks = {c.name: c for c in await validate({**environ, **mtls(tls_proxy)})}
    assert checks["temporal"].ok, checks["temporal"].line()
    assert checks["temporal"].detail == f"{tls_proxy.mtls_address} namespace=default tls=mtls"

    wrong_ca = {
        **api_key(tls_proxy),
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(tls_proxy.pki.other_ca),
    }
    checks = {c.name: c for c in await validate({**environ, **wrong_ca})}
    assert not checks["temporal"].ok
    assert "TEMPORAL_TLS_SERVER_CA_CERT_PATH" in checks["temporal"].detail
    assert tls_proxy.api_key not in checks["temporal"].line()


async def test_the_api_gateway_connects_through_tls(tls_proxy: TLSProxy, tmp_path: Path) -> None:
    settings = load_api_settings({"API_MODE": "development", **api_key(tls_proxy)})
    gateway = Gateway(
        Location("sqlite", sqlite_path=str(tmp_path / "events.sqlite")),
        temporal=settings.temporal_connection(),
        task_queue=settings.temporal_task_queue,
        consistency_timeout=0,
    )

    async def connected() -> bool:
        return gateway.connected

    gateway.start()  # connects in the background, retrying, as the service does
    try:
        await wait_for_async(connected, 20, "the gateway's connection")
        assert await gateway.client.service_client.check_health()
    finally:
        gateway.close()


def _failing(proxy: TLSProxy, case: str) -> dict[str, str]:
    if case == "wrong CA":
        return {**mtls(proxy), "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(proxy.pki.other_ca)}
    if case == "no client certificate":
        return {k: v for k, v in mtls(proxy).items() if "CLIENT" not in k}
    if case == "wrong API key":
        return {**api_key(proxy), "TEMPORAL_API_KEY": "not-the-key"}
    assert case == "no server name"
    return {k: v for k, v in mtls(proxy).items() if k != "TEMPORAL_TLS_SERVER_NAME"}


@pytest.mark.parametrize(
    ("case", "hint"),
    [
        ("wrong CA", "not signed by a CA this client trusts: set TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
        ("no client certificate", "a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH"),
        ("wrong API key", "the server refused the API key (TEMPORAL_API_KEY)"),
        ("no server name", "set TEMPORAL_TLS_SERVER_NAME to the name it was issued for"),
    ],
)
async def test_a_refused_connection_says_what_to_fix(
    tls_proxy: TLSProxy, case: str, hint: str
) -> None:
    # Development: production would first ask for TEMPORAL_PAYLOAD_KEYS.
    env = {"WORKFLOW_MODE": "development", **_failing(tls_proxy, case)}
    ran = await cli("status", "anything", env=env)
    assert ran.code == EXIT_UNREACHABLE, ran.out + ran.err
    assert ran.err.startswith("cannot reach Temporal at 127.0.0.1:"), ran.err
    assert hint in ran.err
    assert tls_proxy.api_key not in ran.err
