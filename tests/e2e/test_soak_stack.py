"""The soak's stack (``bench/soaklib/stack.py``) as built, before anything starts: every
port it hands out is its own (the kernel may give a port just released to the next
``bind(0)``, so ``free_port`` may repeat itself)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from soaklib import stack
from soaklib.facts import StoreFacts


def test_no_two_parts_of_the_stack_are_given_one_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # free_port as the kernel may answer it: each port twice in a row.
    ports: Iterator[int] = (40_000 + n // 2 for n in range(1_000))
    monkeypatch.setattr(stack, "free_port", lambda: next(ports))
    built = stack.SoakStack(tmp_path, StoreFacts("", {}))
    given = [
        built.temporal_port,
        built.bind.port,
        built.mail.port,
        *built.api_ports,
        *built.probe_ports.values(),
    ]
    assert len(given) == len(set(given)), sorted(given)
