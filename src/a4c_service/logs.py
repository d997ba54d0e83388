"""Structured logs: one JSON object per line, carrying the current cause.

Entry points call :func:`configure_logging` once; library code just uses
``logging.getLogger(__name__)``. Every record gets the ``correlation_id`` /
``workflow_id`` / ``run_id`` / ``activity_type`` of the cause set with
:func:`a4c_domain.cause.caused_by`, so a line can be traced to the workflow and the
events it produced. Never pass secrets or tokens to a logger: nothing here can tell
them apart from other text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from a4c_domain.cause import current_cause

# The choices every entry point offers (``LOG_FORMAT``; its own ``*_LOG_LEVEL``).
LOG_FORMAT_VAR = "LOG_FORMAT"
LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

# Attributes every LogRecord has; anything else was passed with ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class CauseFilter(logging.Filter):
    """Attach the current cause's fields to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_cause().as_metadata().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route the root logger to stderr, as JSON lines (default) or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CauseFilter())
    if json_lines:
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


__all__ = [
    "LOG_FORMAT_VAR",
    "CauseFilter",
    "JSONFormatter",
    "LogFormat",
    "LogLevel",
    "configure_logging",
]
