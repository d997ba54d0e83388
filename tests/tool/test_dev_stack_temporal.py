"""``a4c dev``'s children reach the stack's own plain dev server, whatever Temporal the
shell points at: an API key or client certificate meant for a cluster never reaches them
(it would be sent to the dev server, or switch TLS on and fail)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from a4c_tool.stack import Ports, Stack
from a4c_worker.config import load_settings
from a4c_worker.connection import TemporalSettings
from tests.support import TOKEN_SECRET

SHELL = {
    "TEMPORAL_ADDRESS": "acme.a1b2c.tmprl.cloud:7233",
    "TEMPORAL_NAMESPACE": "acme.a1b2c",
    "TEMPORAL_API_KEY": "shell-api-key-Pp4-unique",
    "TEMPORAL_TLS": "true",
    "TEMPORAL_TLS_CLIENT_CERT_PATH": "/home/someone/client.pem",
    "TEMPORAL_PROFILE": "cloud",
    "TEMPORAL_CONFIG_FILE": "/home/someone/.config/temporalio/temporal.toml",
}


def test_children_get_the_local_server_and_none_of_the_shells_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SHELL.items():
        monkeypatch.setenv(name, value)  # a4c dev is an entry point: it reads os.environ
    ports = Ports(temporal=17233, ui=18233, worker_health=18081, projector_http=18082, api=18080)
    stack = Stack(tmp_path, TOKEN_SECRET, ports, io.StringIO(), api_keys="")
    for child in (stack.worker, stack.api, stack.projector):
        leaked = set(child.env) & (
            TemporalSettings.variables() - {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"}
        )
        assert leaked == set(), child.name
    for child in (stack.worker, stack.api):
        assert child.env["TEMPORAL_ADDRESS"] == "127.0.0.1:17233"
        assert child.env["TEMPORAL_NAMESPACE"] == "default"
        resolved = load_settings(child.env, "client").temporal_connection()
        assert resolved.describe() == "127.0.0.1:17233 namespace=default tls=off"
    assert stack.local_temporal.describe() == "127.0.0.1:17233 namespace=default tls=off"
