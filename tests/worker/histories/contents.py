"""What a recorded history says, in plain text: for scanning it for secrets.

``history.to_json()`` writes payloads (inputs, results, update arguments, failure
details) base64-encoded, so searching the file's text for a token finds nothing even
when one is there. :func:`texts` decodes every payload and yields it with the history's
other strings (failure messages, ids), each with where it was found.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Text:
    event_type: str  # e.g. EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    where: str  # the JSON path inside the event
    text: str


def texts(history_json: str) -> Iterator[Text]:
    """Every string of every event, payload data decoded."""
    for event in json.loads(history_json)["events"]:
        yield from _strings(event["eventType"], "", event)


def _strings(event_type: str, where: str, node: Any) -> Iterator[Text]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}"
            if key in ("data", "encoding") and isinstance(value, str):
                yield Text(event_type, path, _decoded(value))
            else:
                yield from _strings(event_type, path, value)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(event_type, f"{where}[{index}]", value)
    elif isinstance(node, str):
        yield Text(event_type, where, node)


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def workflow_type(found: list[Text]) -> str:
    """The type of the workflow whose history ``found`` was read from."""
    return next(
        text.text
        for text in found
        if text.event_type == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
        and text.where.endswith(".workflowType.name")
    )


def plain_text(history_json: str) -> str:
    """All of :func:`texts` in one string: what ``secret in ...`` checks must search."""
    return "\n".join(found.text for found in texts(history_json))
