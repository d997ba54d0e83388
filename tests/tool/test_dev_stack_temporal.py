"""``a4c dev``'s children reach the stack's own plain dev server, whatever Temporal the
shell points at: an API key or client certificate meant for a cluster never reaches them
(it would be sent to the dev server, or switch TLS on and fail)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from a4c_tool.stack import Stack
from a4c_tool.stackconfig import Ports
from a4c_worker.codec import PayloadKeys
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
    "TEMPORAL_PAYLOAD_KEYS": PayloadKeys.generate("cluster-key").entry(),
}


def test_children_get_the_local_server_and_none_of_the_shells_connection(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SHELL.items():
        monkeypatch.setenv(name, value)  # a4c dev is an entry point: it reads os.environ
    ports = Ports(
        temporal=17233,
        ui=18233,
        worker_health=18081,
        projector_http=18082,
        api=18080,
        api_metrics=18083,
        codec_server=18084,
        webhooks_http=18085,
    )
    stack = Stack(tmp_path, TOKEN_SECRET, ports, io.StringIO(), api_keys="")
    own = {"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_PAYLOAD_KEYS"}
    for child in (stack.worker, stack.api, stack.projector, stack.codec_server):
        leaked = set(child.env) & (TemporalSettings.variables() - own)
        assert leaked == set(), child.name
        # The stack's own payload key (kept in its data folder), never the shell's.
        assert child.env.get("TEMPORAL_PAYLOAD_KEYS") != SHELL["TEMPORAL_PAYLOAD_KEYS"]
    for child in (stack.worker, stack.api):
        assert child.env["TEMPORAL_ADDRESS"] == "127.0.0.1:17233"
        assert child.env["TEMPORAL_NAMESPACE"] == "default"
        resolved = load_settings(child.env, "client").temporal_connection()
        assert resolved.describe() == "127.0.0.1:17233 namespace=default tls=off"
    assert stack.local_temporal.describe() == "127.0.0.1:17233 namespace=default tls=off"
    # Every client of the stack seals with the same key, kept across runs of the folder;
    # the Web UI opens payloads through the codec server, which allows the UI's origin.
    keys = {child.env["TEMPORAL_PAYLOAD_KEYS"] for child in (stack.worker, stack.api)}
    assert keys == {(tmp_path / "payload-keys").read_text()}
    assert stack.local_temporal.payload_keys == PayloadKeys.parse(keys.pop())
    again = Stack(tmp_path, TOKEN_SECRET, ports, io.StringIO(), api_keys="")
    assert again.local_temporal.payload_keys == stack.local_temporal.payload_keys
    ui = stack.temporal.argv[stack.temporal.argv.index("--ui-codec-endpoint") + 1]
    assert ui == "http://127.0.0.1:18084" == stack.codec_url
    assert "http://localhost:18233" in stack.codec_server.env["CODEC_SERVER_ORIGINS"]


def test_the_api_and_worker_share_the_data_folders_sso_key_ring(tmp_path: Path) -> None:
    """Single sign-on in the dev stack: the API seals client secrets with a key ring kept
    in the data folder, the worker opens them with the same one and reaches providers on
    this machine (a developer's own test provider)."""
    ports = Ports(
        temporal=17233,
        ui=18233,
        worker_health=18081,
        projector_http=18082,
        api=18080,
        api_metrics=18083,
        codec_server=18084,
        webhooks_http=18085,
    )
    stack = Stack(tmp_path, TOKEN_SECRET, ports, io.StringIO(), api_keys="")
    ring = (tmp_path / "sso-secret-keys").read_text()
    assert stack.api.env["SSO_SECRET_KEYS"] == stack.worker.env["SSO_SECRET_KEYS"] == ring
    assert stack.worker.env["SSO_ALLOW_PRIVATE_ADDRESSES"] == "true"
    assert "SSO_SECRET_KEYS" not in stack.projector.env
    assert load_settings(stack.worker.env, "worker").sso_secret_keys is not None
