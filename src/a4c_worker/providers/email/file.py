"""A mailer that writes ``.eml`` files: the local dev stack's SMTP sink.

Files are named after the Message-ID, so re-sending the same invitation (same id)
replaces its file instead of adding a second one, just as a reader would dedupe it.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

from a4c_worker.providers.email.message import build_message, with_message_id
from a4c_worker.providers.email.protocol import OutgoingMail
from a4c_worker.providers.errors import TransientProviderError

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


def eml_name(message_id: str) -> str:
    """File name for a Message-ID: the id without brackets, unsafe characters replaced."""
    return _UNSAFE.sub("_", message_id.strip("<>")) + ".eml"


class FileMailer:
    def __init__(self, directory: Path, from_address: str = "a4c@localhost") -> None:
        self.directory = Path(directory)
        self.from_address = from_address

    async def send(self, mail: OutgoingMail) -> str:
        mail = with_message_id(mail, self.from_address)
        assert mail.message_id is not None
        data = build_message(mail, self.from_address).as_bytes()
        path = self.directory / eml_name(mail.message_id)
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as exc:
            raise TransientProviderError(f"cannot write {path}: {exc}") from exc
        return mail.message_id

    def path_for(self, message_id: str) -> Path:
        return self.directory / eml_name(message_id)


def _write_atomically(path: Path, data: bytes) -> None:
    """Readers never see half a message: write a temporary file, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not ".eml": a reader watching the folder for messages must not meet this one yet.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
