"""Structured logs (a4c_service.logs): one JSON object per line, carrying the current cause."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from a4c_domain import Cause, caused_by
from a4c_service.logs import configure_logging


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_carry_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug")
    log = logging.getLogger("a4c.test")
    cause = Cause(workflow_id="wf-1", run_id="run-1", activity_type="verify_dns", attempt=2)
    with caused_by(cause):
        log.info("verified %s", "acme", extra={"slug": "acme"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["message"] == "verified acme"
    assert (first["level"], first["logger"], first["slug"]) == ("info", "a4c.test", "acme")
    assert {k: first[k] for k in ("workflow_id", "run_id", "activity_type", "attempt")} == {
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "activity_type": "verify_dns",
        "attempt": "2",
    }
    assert first["correlation_id"] == cause.correlation_id
    assert "workflow_id" not in second and second["correlation_id"] != cause.correlation_id
    assert "RuntimeError: boom" in second["exception"]


@pytest.mark.usefixtures("restore_root_logger")
def test_plain_text_mode(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("warning", json_lines=False)
    with caused_by(Cause(correlation_id="corr-7")):
        logging.getLogger("a4c.test").warning("plain")
        logging.getLogger("a4c.test").info("filtered out")
    err = capsys.readouterr().err
    assert "[corr-7] plain" in err and "filtered out" not in err
