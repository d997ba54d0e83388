"""a4c-api as a process: settings named in the operator's terms, probes, graceful SIGTERM,
problem+json for whatever goes wrong, and no token in its access log or metrics."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.api.conftest import A4C_API, Stack, a4c_api_run
from tests.support import free_port

from a4c_api.cli import main, new_key
from a4c_api.settings import api_key_hash, load_settings
from a4c_worker.config import SettingsError

SECRET_TOKEN = "tok-" + "s3cr3t" * 8


def problems_of(env: dict[str, str]) -> dict[str, str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return dict(caught.value.problems)


def test_bad_values_are_named_by_variable_in_the_operators_terms() -> None:
    found = problems_of(
        {
            "API_PORT": "eighty",
            "API_CONSISTENCY_TIMEOUT": "-1",
            "API_PUBLIC_URL": "ftp://example.com",
            "API_SESSION_SECRET": "short",
            "API_ACCEPT_RATE_PER_CLIENT": "lots",
            "API_MODE": "staging",
        }
    )
    assert found == {
        "API_PORT": "must be a valid integer, unable to parse string as an integer",
        "API_CONSISTENCY_TIMEOUT": "must be greater than or equal to 0",
        "API_PUBLIC_URL": "must be an http(s) URL",
        "API_SESSION_SECRET": "must be at least 32 bytes",
        "API_ACCEPT_RATE_PER_CLIENT": "must be a rate such as '10/minute'",
        "API_MODE": "must be 'development' or 'production'",
    }


def test_api_keys_are_checked_entry_by_entry() -> None:
    digest = api_key_hash("a4c_x")
    assert "API_KEYS" in problems_of({"API_KEYS": "ci:nothex:operator"})
    assert "API_KEYS" in problems_of({"API_KEYS": f"ci:{digest}:admin"})
    assert "API_KEYS" in problems_of({"API_KEYS": f"ci:{digest}:operator,ci:{digest}:operator"})
    settings = load_settings({"API_MODE": "development", "API_KEYS": f"ci:{digest}:operator"})
    assert [g.entry() for g in settings.api_keys] == [f"ci:{digest}:operator"]


def test_production_refuses_the_development_conveniences() -> None:
    assert problems_of({"API_MODE": "production", "API_DEV_SIGN_IN": "true"}) == {
        "API_DEV_SIGN_IN": "the dev sign-in is refused in production",
        "API_SESSION_SECRET": "required when API_MODE is production",
        "OIDC_ISSUER": "required when API_MODE is production",
        "API_PUBLIC_URL": "required when API_MODE is production",
        "TEMPORAL_PAYLOAD_KEYS": "required when API_MODE is production",
    }
    settings = load_settings(
        {
            "API_MODE": "production",
            "API_SESSION_SECRET": "k" * 32,
            "API_PUBLIC_URL": "https://onboard.example.com",
            "OIDC_ISSUER": "https://id.example.com",
            "OIDC_CLIENT_ID": "a4c",
            "OIDC_CLIENT_SECRET": "s" * 20,
            "TEMPORAL_PAYLOAD_KEYS": PRODUCTION_READY["TEMPORAL_PAYLOAD_KEYS"],
        }
    )
    assert not settings.dev_sign_in


# Everything production needs; API_MODE unset.
PRODUCTION_READY = {
    "API_HOST": "0.0.0.0",
    "API_SESSION_SECRET": "k" * 32,
    "API_PUBLIC_URL": "https://onboard.example.com",
    "OIDC_ISSUER": "https://id.example.com",
    "OIDC_CLIENT_ID": "a4c",
    "OIDC_CLIENT_SECRET": "s" * 20,
    "TEMPORAL_PAYLOAD_KEYS": "k1:" + base64.b64encode(b"p" * 32).decode(),
}


def test_production_is_the_default() -> None:
    settings = load_settings(PRODUCTION_READY)
    assert settings.api_mode == "production"
    assert not settings.dev_sign_in
    assert "API_SESSION_SECRET" in problems_of({})  # unconfigured is not development


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "onboard.example.com"])
def test_development_mode_is_refused_on_a_host_others_can_reach(host: str) -> None:
    assert problems_of({"API_MODE": "development", "API_HOST": host}) == {
        "API_HOST": "must be a loopback address when API_MODE is development",
    }


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_development_mode_serves_loopback_hosts(host: str) -> None:
    assert load_settings({"API_MODE": "development", "API_HOST": host}).dev_sign_in


def test_production_requires_an_https_public_url() -> None:
    insecure = {**PRODUCTION_READY, "API_PUBLIC_URL": "http://onboard.example.com"}
    assert problems_of(insecure) == {
        "API_PUBLIC_URL": "must be an https URL when API_MODE is production",
    }


def test_an_issuer_needs_its_client() -> None:
    assert problems_of({"API_MODE": "development", "OIDC_ISSUER": "https://id.example.com"}) == {
        "OIDC_CLIENT_ID": "required when OIDC_ISSUER is set",
        "OIDC_CLIENT_SECRET": "required when OIDC_ISSUER is set",
    }


def test_new_key_is_shown_once_and_only_its_hash_is_configured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["new-key", "--name", "ci", "--operator"]) == 0
    out = capsys.readouterr().out
    key = out.split("keep it secret): ")[1].split()[0]
    entry = out.split("(comma-separated): ")[1].split()[0]
    assert key.startswith("a4c_") and len(key) > 40
    assert entry == f"ci:{api_key_hash(key)}:operator"
    assert key not in entry
    other, _ = new_key("ci", None)
    assert other != key


def test_validate_config_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("API_MODE", "development")
    monkeypatch.setenv("API_SESSION_SECRET", "x" * 40)
    monkeypatch.setenv("API_KEYS", f"ci:{api_key_hash('a4c_k')}:operator")
    assert main(["validate-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["API_SESSION_SECRET"] == "**********"
    assert shown["API_KEYS"] == ["ci:**********"]
    assert "x" * 40 not in json.dumps(shown)


def test_bad_configuration_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run(
        [A4C_API, "run"],
        env={**os.environ, "API_PORT": "eighty", "SQLITE_DBNAME": str(tmp_path / "e.db")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "API_PORT: must be a valid integer" in done.stderr


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """``a4c-api run`` on a free port, Temporal unreachable, an empty SQLite store: the
    process, the front door's base URL and the metrics listener's ``/metrics`` URL."""
    metrics_port = free_port()
    with a4c_api_run(tmp_path, API_METRICS_PORT=str(metrics_port)) as (process, base):
        yield process, base, f"http://127.0.0.1:{metrics_port}/metrics"


def test_the_process_serves_probes_and_stops_cleanly_on_sigterm(
    api_process: tuple[subprocess.Popen[str], str, str],
) -> None:
    process, base, metrics_url = api_process
    assert httpx.get(base + "/health").json() == {"ok": True}
    ready = httpx.get(base + "/ready")
    assert ready.status_code == 503  # Temporal is not reachable
    assert ready.json()["ok"] is False
    missing = httpx.get(f"{base}/no/such/page?token={SECRET_TOKEN}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json() == {"type": "about:blank", "title": "Not Found", "status": 404}
    assert httpx.get(base + "/metrics").status_code == 404  # not on the front door
    metrics = httpx.get(metrics_url).text
    assert 'a4c_api_requests_total{method="GET",route="/health",status="200"}' in metrics
    assert 'route="(unmatched)",status="404"' in metrics  # never the requested path
    assert SECRET_TOKEN not in metrics

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    access = [json.loads(line) for line in stderr.splitlines() if '"uvicorn.access"' in line]
    assert any("/no/such/page" in entry["message"] for entry in access)
    assert SECRET_TOKEN not in stderr


async def test_ready_once_temporal_and_the_read_models_answer(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.base_url) as http:
        ready = await http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ok": True, "reasons": []}


async def test_the_openapi_document_is_served(api_stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=api_stack.base_url) as http:
        docs = await http.get("/docs")
        spec = await http.get("/openapi.json")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert spec.json()["info"]["title"] == "a4c"
