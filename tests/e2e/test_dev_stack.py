"""The README's main job, end to end: ``a4c dev`` on a fresh data folder, then again.

Real Temporal dev server, worker, projector and API as child processes, the SQLite event
store, logging DNS and mails kept as files — exactly what a new user's first command
runs: the first run until it says it is running (then the invitation link from the mail
is opened, an invitee accepts through the stack's Temporal, and Ctrl-C stops it), the
second bounded by ``--once``, whose report shows the new member.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from a4c_api.pages.identity import dev_identity
from a4c_api.pages.paths import SIGN_IN_DEV_PATH
from a4c_domain import OnboardingApplication, organization_id
from a4c_projector.dialects.location import Location
from a4c_projector.queries import ReadModel
from a4c_tool.cli import main
from a4c_tool.processes import free_port
from a4c_tool.stackconfig import store_env
from a4c_tool.stackreport import SAMPLE
from a4c_worker.config import ACCEPT_PATH
from tests.e2e.dev import CHILD_COMMANDS, assert_all_gone, descendants, read_until, start_dev
from tests.servers.postgres import postgres_env
from tests.support import wait_for
from tests.worker.histories.contents import plain_text

INVITED = SAMPLE.invitees[0].email


def invitation_mails(data_dir: Path) -> list[Path]:
    """The sample's two invitation mails, after checking the folder holds only them and
    the one welcome of its admin (which carries no link)."""
    mails = sorted((data_dir / "mail").glob("*.eml"))
    invitations = [m for m in mails if m.name.startswith("invitation.")]
    [welcome] = [m for m in mails if m.name.startswith("welcome.")]
    assert len(invitations) == 2 and len(mails) == 3, mails
    assert "Ada" in welcome.read_text() and "token=" not in welcome.read_text()
    return invitations


# Who the dev sign-in says the invitee is.
USER_ID = dev_identity(INVITED).sub

A4C = str(Path(sys.executable).parent / "a4c")
TEMPORAL = str(Path(sys.executable).parent / "temporal")


def run_once(
    data_dir: Path, *, after: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``a4c --data-dir X dev --once``, or with ``after`` ``a4c dev --data-dir X --once``."""
    folder = ["--data-dir", str(data_dir)]
    return subprocess.run(
        [A4C, *([] if after else folder), "dev", *(folder if after else []), "--once",
         "--temporal-port", str(free_port()), "--ui-port", str(free_port()),
         "--api-port", str(free_port())],
        capture_output=True, text=True, timeout=240, check=False,
        env=None if env is None else os.environ | env,
    )  # fmt: skip


def link_in(mail: Path) -> str:
    """The accept link in a mail the file mailer wrote, as the invitee sees it."""
    message = BytesParser(policy=policy.default).parsebytes(mail.read_bytes())
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text: str = body.get_content()
    (link,) = [word for word in text.split() if ACCEPT_PATH in word]
    return link


def show_history(address: str, workflow_id: str, codec: str | None = None) -> str:
    """The workflow's history as ``temporal workflow show`` prints it (payloads decoded
    from base64), through ``codec`` if given."""
    through = ["--codec-endpoint", codec] if codec else []
    done = subprocess.run(
        [TEMPORAL, "workflow", "show", "--address", address, "--workflow-id", workflow_id,
         "--output", "json", *through],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return plain_text(done.stdout)


def form_value(html: str, name: str) -> str:
    """The value of the form field ``name`` on a page."""
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found is not None, f"no {name} field in {html}"
    return found.group(1)


def test_dev_stack_bootstraps_the_sample_serves_its_links_and_a_second_run_adds_nothing(
    tmp_path: Path, pg_schema: str
) -> None:
    data_dir = tmp_path / "a4c"
    api_port = free_port()
    api = f"http://localhost:{api_port}"
    dev = start_dev(data_dir, api_port=api_port)
    try:
        out = "".join(read_until(dev, "running; press Ctrl-C to stop"))
        children = descendants(dev.pid)
        mails = invitation_mails(data_dir)
        # The invitee's first step: the link in the mail reaches the API child.
        link = link_in(next(m for m in mails if INVITED in m.read_text()))
        assert link.startswith(f"{api}{ACCEPT_PATH}?token="), link
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(link))
        with httpx.Client(timeout=30, follow_redirects=True) as http:
            ready = http.get(f"{origin}/ready")
            docs = http.get(f"{api}/docs")
            # The journey as a new user makes it: open the link, dev sign-in, accept.
            page = http.get(link)
            signed_in = http.post(
                f"{api}{SIGN_IN_DEV_PATH}",
                data={"csrf": form_value(page.text, "csrf"), "email": INVITED},
            )
            joined = http.post(
                f"{api}{ACCEPT_PATH}",
                data={
                    "csrf": form_value(signed_in.text, "csrf"),
                    "invitation_id": form_value(signed_in.text, "invitation_id"),
                },
            )
            again = http.get(link)
            key = re.findall(r"dev operator key \(this run only\): (a4c_\S+)", out)
            listed = http.get(
                f"{api}/v1/organizations/{SAMPLE.slug}/members",
                headers={"Authorization": f"Bearer {key[0]}"} if key else {},
            )
        org_id = organization_id(SAMPLE.slug)
        location = Location(dialect="sqlite", sqlite_path=str(data_dir / "events.sqlite"))

        def projected() -> bool:
            with ReadModel(location) as reads:
                return reads.member(org_id, USER_ID) is not None

        wait_for(projected, 30, "the new member in the read model")
        # History as Temporal stores it holds no invitee; through the stack's codec
        # server (the Web UI's codec endpoint) it reads in full.
        temporal = re.findall(r"temporal dev server  (127\.0\.0\.1:\d+)", out)[0]
        codec = re.findall(r"codec server         (http://\S+)", out)[0]
        stored = show_history(temporal, f"org-bootstrap-{SAMPLE.slug}")
        opened = show_history(temporal, f"org-bootstrap-{SAMPLE.slug}", codec)
    finally:
        dev.send_signal(signal.SIGINT)  # Ctrl-C
        rest, err = dev.communicate(timeout=120)
    assert dev.returncode == 0, out + rest + err
    assert "Traceback" not in err, err
    assert_all_gone(children)
    assert all(name in " | ".join(children.values()) for name in CHILD_COMMANDS), children
    # Stopped in reverse order, the API first (no request meets a worker already gone).
    stopped = [line.strip() for line in rest.splitlines() if line.startswith("  stopped ")]
    order = ("api", "worker", "projector", "codec-server", "temporal")
    assert stopped == [f"stopped {name} (exit 0)" for name in order], rest

    assert "state=completed" in out
    for invitee in SAMPLE.invitees:
        for value in (invitee.email, invitee.first_name, invitee.last_name):
            assert value not in stored, value
            assert value in opened, value
    assert "Temporal Web UI:  http://127.0.0.1:" in out
    assert out.count(f"invitation link: {api}{ACCEPT_PATH}?token=") == 2
    assert f"  api                  {api}  (OpenAPI: {api}/docs)" in out
    assert f"API:              {api}  (OpenAPI: {api}/docs)" in out
    key = re.findall(r"dev operator key \(this run only\): (a4c_\S+)", out)
    assert len(key) == 1 and out.count(key[0]) == 2  # the key line and the curl line
    assert f'curl -H "Authorization: Bearer {key[0]}" {api}/v1/organizations/acme' in out
    read_models = out.split("read models:", 1)[1].split("Temporal Web UI", 1)[0]
    assert "acme.orgs.a4c.localhost" in read_models and "active" in read_models
    assert "ada@example.com" in read_models and "grace@example.com" in read_models
    assert "user_id" in read_models and "joined_at" in read_models  # members: none yet

    assert ready.status_code == 200 and docs.status_code == 200, (ready.text, docs.text)
    assert "text/html" in docs.headers["content-type"]
    assert page.status_code == 200 and "text/html" in page.headers["content-type"], page.text
    assert "Acme Widgets" in page.text and "a***@example.com" in page.text
    assert signed_in.status_code == 200 and INVITED in signed_in.text, signed_in.text
    assert joined.status_code == 200, joined.text
    assert "You joined" in joined.text and "Acme Widgets" in joined.text, joined.text
    assert "already accepted" in again.text, again.text
    assert listed.status_code == 200, listed.text
    assert [m["user_id"] for m in listed.json()["members"]] == [USER_ID], listed.text
    # The API child logged the link's request without the query string: the token is
    # nowhere in its log.
    api_log = (data_dir / "logs" / "api.log").read_text()
    assert f"GET {ACCEPT_PATH} HTTP/1.1" in api_log, api_log
    assert "token=" not in api_log and link.split("token=")[1] not in api_log

    env = store_env(data_dir, (data_dir / "token-secret").read_text().strip())
    app = OnboardingApplication(env)
    try:
        org = app.get_organization(organization_id(SAMPLE.slug))
        assert org.status == "active" and org.dns_status == "verified"
        events_after_first = app.recorder.max_notification_id()
    finally:
        app.close()

    with ReadModel(Location(dialect="sqlite", sqlite_path=env["SQLITE_DBNAME"])) as reads:
        record = reads.organization_by_slug(SAMPLE.slug)
        assert record is not None and record.status == "active"
        invitations = reads.invitations(record.id)
        assert sorted(i.email for i in invitations) == sorted(i.email for i in SAMPLE.invitees)
        assert {i.email_status for i in invitations} == {"sent"}
        assert reads.position() == events_after_first

    mails = invitation_mails(data_dir)
    for mail in mails:
        assert "token=" in mail.read_text()

    second = run_once(data_dir, after=True)  # --data-dir after "dev" names the same folder
    assert second.returncode == 0, second.stdout + second.stderr
    assert "was bootstrapped before" in second.stdout
    read_models = second.stdout.split("read models:", 1)[1].split("Temporal Web UI", 1)[0]
    members = read_models.split("joined_at", 1)[1]  # the members table, after its header
    (row,) = [line for line in members.splitlines() if USER_ID in line]
    assert row.split()[:3] == [SAMPLE.slug, INVITED, SAMPLE.invitees[0].role], row
    app = OnboardingApplication(env)
    try:
        assert app.recorder.max_notification_id() == events_after_first
    finally:
        app.close()
    assert invitation_mails(data_dir) == mails  # and still the one welcome: nothing new

    # The same folder pointed at PostgreSQL: its Temporal state's events are in the
    # SQLite file, so the run is refused, naming both stores, before anything starts.
    third = run_once(data_dir, env=postgres_env(pg_schema))
    assert third.returncode == 2, third.stdout + third.stderr
    assert "reusing" not in third.stdout and "temporal dev server" not in third.stdout
    assert f"belongs to the SQLite file {env['SQLITE_DBNAME']}, but this run uses PostgreSQL" in (
        third.stderr
    ), third.stderr
    assert f"(schema {pg_schema!r})" in third.stderr


def test_data_dir_is_accepted_before_and_after_the_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    assert main(["--data-dir", str(before), "demo"]) == 0
    assert main(["demo", "--data-dir", str(after)]) == 0
    assert (before / "demo-events.sqlite").exists() and (after / "demo-events.sqlite").exists()
    # Given in both places, the one after the subcommand (the nearer) wins.
    assert main(["--data-dir", str(tmp_path / "unused"), "demo", "--data-dir", str(after)]) == 0
    assert not (tmp_path / "unused").exists()
    assert "acme-demo" in capsys.readouterr().out
