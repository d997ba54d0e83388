"""A mail server's refusal that quotes the mail never carries the token into a record.

Content filters refuse a message with a reply that quotes it, accept link included.
The invitation flow runs on the real Temporal dev server against a real aiosmtpd that
does exactly that (a 5xx on one line, a 5xx over many lines, a 4xx until retries run
out); then the event store, the read models (projected as the projector does), the
workflow histories and every log record are searched for the token and the link in the
forms a reply can carry them: none is there, while the reply code still is.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from temporalio.client import Client
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET
from tests.worker.flows import LINKS, Flows, bootstrap_input, smtp_mailer, sqlite_app

from a4c_domain import ALL_ORGANIZATIONS
from a4c_projector.engine.projector import Projector
from a4c_projector.eventlog.store import open_event_store
from a4c_worker.client import invitation_handle, start_bootstrap

# The aiosmtpd test server's own log (``mail.log``) is the remote server's record, not ours.
SERVER_LOGGERS = ("mail.log",)


def every_cell(path: Path) -> str:
    """All text of every table of a SQLite file: event store and read models alike."""
    out: list[str] = []
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        out.append(cell.decode("utf-8", "replace"))
                    elif cell is not None:
                        out.append(str(cell))
    return "\n".join(out)


def forms(secret: str) -> list[str]:
    """How a secret can appear in a quoted reply: as is, URL-encoded, QP-encoded."""
    return [secret, quote(secret, safe=""), secret.replace("=", "=3D")]


@pytest.mark.parametrize(
    "refusals",
    [
        pytest.param([(550, True)], id="5xx-one-line"),
        pytest.param([(550, True), (554, False), (451, False)], id="5xx-4xx-many-lines"),
    ],
)
async def test_a_refusal_quoting_the_mail_leaves_no_token_in_any_record(
    refusals: list[tuple[int, bool]],
    tmp_path: Path,
    temporal_client: Client,
    task_queue: str,
    smtp_server: SMTPTestServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = sqlite_app(tmp_path)
    flows = Flows(app=app, client=temporal_client, task_queue=task_queue)
    flows.mailer = smtp_mailer(smtp_server)  # type: ignore[assignment]  # a real one in the double's slot
    slug = f"quoted-{len(refusals)}"
    spec = bootstrap_input(slug, invitees=len(refusals), domain=False)
    for invitee, (code, one_line) in zip(spec.invitees, refusals, strict=True):
        smtp_server.reject_quoting(invitee.email, code, one_line=one_line)
    replies_before = len(smtp_server.handler.quoted_replies)

    async with flows.worker():
        handle = await start_bootstrap(flows.client, spec, flows.task_queue)
        result = await handle.result()
        histories = [await handle.fetch_history()]
        for inv_id in result.invitation_ids:
            histories.append(await invitation_handle(flows.client, inv_id).fetch_history())

    tokens = [app.tokens.token(inv_id, 1) for inv_id in result.invitation_ids]
    urls = [LINKS.accept_url(token) for token in tokens]
    needles = [form for secret in tokens + urls for form in forms(secret)]
    replies = smtp_server.handler.quoted_replies[replies_before:]
    # The server really quoted every token (and retried the 4xx): the test can fail.
    assert len(replies) >= len(refusals)
    assert all(any(token in reply for reply in replies) for token in tokens)

    views = [app.get_invitation(inv_id, ALL_ORGANIZATIONS) for inv_id in result.invitation_ids]
    assert [v.email_status for v in views] == ["failed"] * len(refusals)
    for view, (code, _) in zip(views, refusals, strict=True):
        assert view.email_error is not None and str(code) in view.email_error
    app.close()

    db_path = tmp_path / "ev.db"
    store = open_event_store({"SQLITE_DBNAME": str(db_path), "A4C_TOKEN_SECRET": TOKEN_SECRET})
    projector = Projector(store.location, store.mapper)
    try:
        projector.catch_up()
    finally:
        projector.close()
    with sqlite3.connect(db_path) as db:
        projected = sorted(r[0] for r in db.execute("SELECT email_error FROM invitations"))
    assert len(projected) == len(refusals)
    assert all(any(str(code) in e for e in projected) for code, _ in refusals)
    records = every_cell(db_path)

    history = b"".join(e.SerializeToString() for h in histories for e in h.events)
    logs = "\n".join(
        logging.Formatter("%(name)s %(message)s").format(r)
        for r in caplog.records
        if not r.name.startswith(SERVER_LOGGERS)
    )
    assert "550" in logs  # the refusal was logged, its code kept
    for needle in needles:
        assert needle not in records, f"the event store or a read model holds {needle!r}"
        assert needle.encode() not in history, f"workflow history holds {needle!r}"
        assert needle not in logs, f"the worker log holds {needle!r}"
