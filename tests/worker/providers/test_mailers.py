"""The non-SMTP mailers: file sink, in-memory, logging; and OutgoingMail validation."""

from __future__ import annotations

import email
import email.policy
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from a4c_worker.providers.email import (
    FileMailer,
    InMemoryMailer,
    LoggingMailer,
    Mailer,
    OutgoingMail,
)
from a4c_worker.providers.errors import PermanentProviderError, TransientProviderError

SECRET_BODY = "accept: https://app.test/accept?token=s3cr3t-token"


def mail(
    to: str = "ada@example.org", message_id: str | None = "<inv.1.1@a4c.test>"
) -> OutgoingMail:
    return OutgoingMail(
        to=to, subject="Invitation", text=SECRET_BODY, html=f"<p>{SECRET_BODY}</p>",
        message_id=message_id,
    )  # fmt: skip


async def test_file_mailer_writes_one_eml_per_message_id(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path / "outbox", from_address="a4c <noreply@a4c.test>")
    first = await mailer.send(mail())
    second = await mailer.send(mail())

    assert first == second == "<inv.1.1@a4c.test>"
    [path] = sorted((tmp_path / "outbox").iterdir())
    assert path == mailer.path_for(first)
    assert path.name == "inv.1.1@a4c.test.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == first
    assert parsed["To"] == "ada@example.org"
    assert parsed.get_content_type() == "multipart/alternative"

    await mailer.send(mail(message_id="<inv.1.2@a4c.test>"))
    assert len(list((tmp_path / "outbox").iterdir())) == 2


async def test_file_mailer_cannot_write_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(TransientProviderError):
        await FileMailer(blocker / "outbox").send(mail())


async def test_in_memory_mailer_records_and_fails_per_recipient() -> None:
    mailer = InMemoryMailer()
    mailer.fail_for("bob@example.org", PermanentProviderError("550 no such user"))

    assert await mailer.send(mail("ada@example.org")) == "<inv.1.1@a4c.test>"
    with pytest.raises(PermanentProviderError):
        await mailer.send(mail("BOB@example.org"))
    generated = await mailer.send(mail("carol@example.org", message_id=None))

    assert [m.to for m in mailer.sent] == ["ada@example.org", "carol@example.org"]
    assert generated.startswith("<") and generated.endswith("@localhost>")
    assert mailer.sent_to("CAROL@example.org")[0].message_id == generated

    mailer.fail_next(TransientProviderError("421 busy"))
    with pytest.raises(TransientProviderError):
        await mailer.send(mail("ada@example.org"))
    await mailer.send(mail("ada@example.org"))
    assert len(mailer.sent_to("ada@example.org")) == 2


async def test_logging_mailer_never_logs_body_or_local_part(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    message_id = await LoggingMailer().send(mail("ada.secret@example.org"))
    assert message_id == "<inv.1.1@a4c.test>"
    assert "example.org" in caplog.text and "Invitation" in caplog.text
    assert "s3cr3t" not in caplog.text
    assert "ada.secret" not in caplog.text


def test_every_mailer_satisfies_the_protocol(tmp_path: Path) -> None:
    for mailer in (FileMailer(tmp_path), InMemoryMailer(), LoggingMailer()):
        assert isinstance(mailer, Mailer)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"to": "not-an-address"}, "e-mail address"),
        ({"to": "a@b.c\r\nBcc: x@y.z"}, "single line"),
        ({"subject": "hi\nBcc: x@y.z"}, "single line"),
        ({"message_id": "no-brackets@x"}, "local@domain"),
        ({"headers": {"From": "evil@x"}}, "set by the mailer"),
        ({"headers": {"X-Note": "a\nb"}}, "single line"),
    ],
)
def test_outgoing_mail_rejects_header_injection(fields: dict[str, object], problem: str) -> None:
    values: dict[str, object] = {"to": "ada@example.org", "subject": "s", "text": "t"}
    values.update(fields)
    with pytest.raises(ValueError, match=problem):
        OutgoingMail(**values)  # type: ignore[arg-type]  # bad values are the test


async def test_a_file_mail_being_written_is_no_eml_file_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader watching the folder for ``*.eml`` (the dev stack's users, the tests) never
    meets a message still being written: the temporary file has another suffix (one
    with ``.eml`` was read half-way by a test once, and was gone when opened)."""
    outbox = tmp_path / "outbox"
    seen: list[list[str]] = []
    rename = os.replace

    def watching(source: Any, target: Any) -> None:
        seen.append(sorted(p.name for p in outbox.glob("*.eml")))
        rename(source, target)

    monkeypatch.setattr(os, "replace", watching)
    await FileMailer(outbox).send(mail())
    assert seen == [[]]
    assert len(list(outbox.glob("*.eml"))) == 1
