"""``a4c demo``, ``a4c entities`` and ``a4c validate`` run as the console script a user
types: a subprocess of the installed ``a4c``, on a fresh ``--data-dir``, on the SQLite
default and on PostgreSQL. Exit codes, output in the user's terms and effects on the
store are checked; the library underneath is tested in test_entities.py/test_validate.py.
(``a4c --version`` and usage errors of the top level are in tests/test_command_lines.py.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication
from tests.servers.postgres import fresh_schema, postgres_env
from tests.support import TOKEN_SECRET, free_port

A4C = Path(sys.executable).parent / "a4c"
# Trust auth ignores it, so it can be set to something a leak check can search for.
PG_PASSWORD = "pg-password-never-shown-4711"
SMTP_PASSWORD = "smtp-password-never-shown-0815"
TSIG_SECRET = "dHNpZy1zZWNyZXQtbmV2ZXItc2hvd24tNDI="
SECRETS = (TOKEN_SECRET, PG_PASSWORD, SMTP_PASSWORD, TSIG_SECRET)
DEVELOPMENT = {"WORKFLOW_MODE": "development"}
# What the process inherits from us: enough to run Python, none of our configuration.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


@dataclass(frozen=True)
class Store:
    """Where ``a4c`` keeps things for one test: its data folder and its environment."""

    kind: str
    data_dir: Path
    env: dict[str, str]

    def app_env(self) -> dict[str, str]:
        """The same event store ``a4c`` uses, for OnboardingApplication in the test."""
        if self.kind == "postgres":
            return {k: v for k, v in self.env.items() if k != "A4C_TOKEN_SECRET"}
        return {"SQLITE_DBNAME": str(self.data_dir / "events.sqlite")}

    def app(self) -> OnboardingApplication:
        return OnboardingApplication(self.app_env(), token_secret=TOKEN_SECRET)

    def head(self) -> int:
        app = self.app()
        try:
            return app.recorder.max_notification_id() or 0
        finally:
            app.close()

    def a4c(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {k: os.environ[k] for k in INHERITED if k in os.environ} | self.env | extra
        done = subprocess.run(
            [str(A4C), "--data-dir", str(self.data_dir), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
        for secret in SECRETS:
            assert secret not in done.stdout + done.stderr, f"a secret in `a4c {args}`"
        assert "Traceback" not in done.stderr, done.stderr
        return done


def make_store(kind: str, data_dir: Path, schema: str | None) -> Store:
    data_dir.mkdir(parents=True)
    env = {"A4C_TOKEN_SECRET": TOKEN_SECRET}
    if schema is not None:
        # A store other than the data folder's is a deployment's to a4c: production
        # unless development is asked for (test_another_store_is_taken_for_a_deployment).
        env |= postgres_env(schema, POSTGRES_PASSWORD=PG_PASSWORD) | DEVELOPMENT
    return Store(kind, data_dir, env)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    schema = request.getfixturevalue("pg_schema") if request.param == "postgres" else None
    return make_store(request.param, tmp_path / "data", schema)


@dataclass(frozen=True)
class DemoRun:
    store: Store
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]

    def demo_head(self) -> int:
        demo_db = self.store.data_dir / "demo-events.sqlite"
        app = OnboardingApplication({"SQLITE_DBNAME": str(demo_db)}, token_secret=TOKEN_SECRET)
        try:
            return app.recorder.max_notification_id() or 0
        finally:
            app.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoRun]:
    """``a4c demo`` run twice on one fresh data folder (one run per store kind)."""
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    if request.param == "sqlite":
        store = make_store("sqlite", data_dir, None)
        yield DemoRun(store, store.a4c("demo"), store.a4c("demo"))
        return
    with fresh_schema(request.getfixturevalue("pg_server")) as schema:
        store = make_store("postgres", data_dir, schema)
        yield DemoRun(store, store.a4c("demo"), store.a4c("demo"))


DEMO_EVENTS = [
    "Organization.Registered",
    "Invitation.Invited",
    "Organization.InvitationIssued",
    "Invitation.Invited",
    "Organization.InvitationIssued",
    "Invitation.Accepted",
    "Organization.Activated",
]
EVENT_LINE = re.compile(r"^  #(\d+)\s+(\S+)\s+v(\d+) id=[0-9a-f-]{36} cause=a4c demo$")


def test_demo_prints_the_event_stream_and_the_resulting_state(demo: DemoRun) -> None:
    done = demo.first
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == "event stream:"
    events = [EVENT_LINE.match(line) for line in lines[1:8]]
    assert [m.group(2) if m else None for m in events] == DEMO_EVENTS, lines
    assert [int(m.group(1)) for m in events if m] == list(range(1, 8))
    assert lines[8:] == [
        "organization: acme-demo status=active",
        "invitation: ada@example.com role=admin status=accepted",
        "invitation: grace@example.com role=member status=pending",
    ]


def test_demo_runs_again_without_adding_anything(demo: DemoRun) -> None:
    assert demo.second.returncode == 0
    assert demo.second.stdout == demo.first.stdout  # same events, same IDs, same state
    assert demo.demo_head() == len(DEMO_EVENTS)
    # "on SQLite, no servers": the configured store is never written by the demo.
    assert demo.store.head() == 0


def seed(store: Store) -> dict[str, UUID]:
    """Tagged entities on the store ``a4c`` uses: ``dev-one`` with three invitations (one
    accepted, one whose address a spreadsheet would run) and ``kept``, tagged ``prod``.
    Returns the invitations' IDs by address."""
    app = store.app()
    try:
        invited: dict[str, UUID] = {}
        for slug, tag, emails in (
            ("dev-one", "dev", ("ann@dev.example", "=1+cmd@dev.example", "bob@dev.example")),
            ("kept", "prod", ("carl@kept.example",)),
        ):
            org = app.register_organization(
                name=slug.title(), slug=slug, org_type="provider", tags=[tag]
            )
            for email in emails:
                inv = app.invite(
                    organization_id=org.id,
                    email=email,
                    role="member",
                    first_name="A",
                    last_name="B",
                )
                invited[email] = inv.id
        ann = invited["ann@dev.example"]
        app.accept_invitation(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=ann,
            token=app.invitation_token(ann, ALL_ORGANIZATIONS),
            user_id="u-ann",
        )
    finally:
        app.close()
    return invited


def test_entities_list_in_every_format(store: Store) -> None:
    seed(store)

    table = store.a4c("entities", "list", "--tag", "dev")
    assert (table.returncode, table.stderr) == (0, "")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["kind", "id", "name", "status", "detail"]
    assert set(lines[1]) == {"-", " "}
    assert len(lines) == 2 + 4  # header, rule, one organization and its three invitations
    assert lines[2].split()[0] == "organization" and "dev-one" in lines[2]
    assert "kept" not in table.stdout

    listed = store.a4c("entities", "list", "--tag", "dev", "--format", "json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert [(r["kind"], r["name"], r["status"]) for r in rows] == [
        ("organization", "dev-one", "registered"),
        ("invitation", "ann@dev.example", "accepted"),
        ("invitation", "=1+cmd@dev.example", "pending"),  # JSON is data: unchanged
        ("invitation", "bob@dev.example", "pending"),
    ]

    as_csv = store.a4c("entities", "list", "--tag", "dev", "--format", "csv")
    assert as_csv.returncode == 0
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in parsed] == [r["id"] for r in rows]
    assert [r["name"] for r in parsed][2] == "'=1+cmd@dev.example"  # text, never a formula

    assert store.a4c("entities", "list", "--tag", "nothing", "--format", "json").stdout == "[]\n"


def test_entities_list_refuses_an_unknown_format_as_a_usage_error(store: Store) -> None:
    done = store.a4c("entities", "list", "--tag", "dev", "--format", "xml")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("usage: a4c entities list ")
    assert "argument --format: invalid choice: 'xml'" in done.stderr


def test_entities_cleanup_is_a_dry_run_until_execute(store: Store) -> None:
    invited = seed(store)
    before = store.head()

    dry = store.a4c("entities", "cleanup", "--tag", "dev")
    assert (dry.returncode, dry.stderr) == (0, "")
    lines = dry.stdout.splitlines()
    assert lines[-1] == "(dry run: nothing was changed; add --execute to do it)"
    steps = [
        f"revoke invitation {invited['=1+cmd@dev.example']} (=1+cmd@dev.example)",
        f"revoke invitation {invited['bob@dev.example']} (bob@dev.example)",
        "deactivate organization dev-one",
    ]  # the accepted invitation and the organization tagged prod are left alone
    assert lines[:-1] == [f"would {step}" for step in steps]
    assert store.head() == before

    done = store.a4c("entities", "cleanup", "--tag", "dev", "--execute")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == steps
    app = store.app()
    try:
        assert app.get_organization_by_slug("dev-one").status == "deactivated"
        assert app.get_organization_by_slug("kept").status == "registered"
        statuses = {
            email: app.get_invitation(inv_id, ALL_ORGANIZATIONS).status
            for email, inv_id in invited.items()
        }
    finally:
        app.close()
    assert statuses == {
        "ann@dev.example": "accepted",
        "=1+cmd@dev.example": "revoked",
        "bob@dev.example": "revoked",
        "carl@kept.example": "pending",
    }


CHECK_LINE = re.compile(r"^(ok      |FAILING ) (.{12}) (\S.*)$")


def test_validate_names_every_failing_dependency_on_its_own_line(store: Store) -> None:
    seed(store)  # the store exists; no projector has made read models, no servers run
    closed = str(free_port())
    done = store.a4c(
        "validate",
        TEMPORAL_ADDRESS=f"127.0.0.1:{closed}",
        DNS_PROVIDER="rfc2136",
        RFC2136_SERVER="127.0.0.1",
        RFC2136_PORT=closed,
        RFC2136_ZONE="orgs.test",
        RFC2136_KEY_NAME="a4c-key",
        RFC2136_KEY_SECRET=TSIG_SECRET,
        EMAIL_PROVIDER="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=closed,
        SMTP_USERNAME="a4c",
        SMTP_PASSWORD=SMTP_PASSWORD,
        SMTP_FROM="onboarding@a4c.test",
    )
    assert (done.returncode, done.stderr) == (1, "")
    lines = done.stdout.splitlines()
    matches = [CHECK_LINE.match(line) for line in lines]
    assert all(matches), lines  # one line per check, each `ok` or `FAILING <reason>`
    found = {m.group(2).strip(): (m.group(1).strip(), m.group(3)) for m in matches if m}
    assert list(found) == ["config", "event store", "read models", "temporal", "dns", "email"]
    module = f"eventsourcing.{store.kind}"
    assert found["config"] == ("ok", "mode=development")
    assert found["event store"] == ("ok", f"{module}: {store.head()} events")
    state, reason = found["read models"]
    assert state == "FAILING" and "organizations" in reason
    for name in ("temporal", "dns", "email"):
        state, reason = found[name]
        assert state == "FAILING" and closed in reason, (name, reason)


def unreachable(store: Store) -> Store:
    """The same configuration with its event store out of reach: a data folder that is a
    file (SQLite cannot open its database there), or a PostgreSQL port nobody listens on."""
    if store.kind == "sqlite":
        blocked = store.data_dir.parent / "not-a-folder"
        blocked.write_text("")
        return Store(store.kind, blocked, store.env)
    env = store.env | {"POSTGRES_PORT": str(free_port()), "POSTGRES_CONNECT_TIMEOUT": "1"}
    return Store(store.kind, store.data_dir, env)


@pytest.mark.parametrize("command", [["entities", "list"], ["entities", "cleanup"]])
def test_an_unreachable_event_store_is_one_line_not_a_traceback(
    store: Store, command: list[str]
) -> None:
    done = unreachable(store).a4c(*command, "--tag", "dev")
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert line.startswith(f"a4c {command[0]}: the event store cannot be opened: "), line


def test_a_data_folder_that_is_a_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    blocked = unreachable(make_store("sqlite", tmp_path / "data", None))
    done = blocked.a4c("demo")
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("a4c demo: ") and f"File exists: '{blocked.data_dir}'" in line


def test_bad_configuration_names_the_variable(store: Store) -> None:
    listed = store.a4c("entities", "list", "--tag", "dev", SMTP_HOST="127.0.0.1", SMTP_PORT="x")
    assert (listed.returncode, listed.stdout) == (2, "")
    assert listed.stderr.startswith("configuration error: SMTP_PORT: "), listed.stderr

    checked = store.a4c("validate", SMTP_HOST="127.0.0.1", SMTP_PORT="x")
    assert (checked.returncode, checked.stderr) == (1, "")
    [line] = checked.stdout.splitlines()  # nothing else can be checked without settings
    assert line.startswith("FAILING  config       SMTP_PORT: "), line


def test_another_store_is_taken_for_a_deployment(tmp_path: Path) -> None:
    """On the data folder's own store a4c works in development (test above); pointed at
    another store it works on a deployment, in production unless told: a cleanup there
    must remove DNS records, not log that it would."""
    store = Store("postgres", tmp_path, {"A4C_TOKEN_SECRET": TOKEN_SECRET} | postgres_env("x"))
    checked = store.a4c("validate")
    assert (checked.returncode, checked.stderr) == (1, "")
    lines = checked.stdout.splitlines()
    assert all(line.startswith("FAILING  config ") for line in lines), lines
    named = [line.split()[2].rstrip(":") for line in lines]
    assert {"RFC2136_SERVER", "SMTP_HOST", "ACCEPT_URL_BASE", "DNS_ZONE"} <= set(named), lines
    assert "for local use, set WORKFLOW_MODE=development" in lines[-1], lines

    cleanup = store.a4c("entities", "cleanup", "--tag", "dev", "--execute")
    assert (cleanup.returncode, cleanup.stdout) == (2, "")
    assert cleanup.stderr.startswith("configuration error: "), cleanup.stderr
    assert "WORKFLOW_MODE: not set, so production (the default)" in cleanup.stderr
