"""Workflow histories recorded by each release, replayed by every later one.

Layout: ``v<release>/<path>.json``, one folder per release, written by
``python -m tests.worker.histories.record <release>``. The files at the top level were
recorded by release 0.1.0, before these folders, and stay where they are: they prove
that executions started then still replay.
"""

from __future__ import annotations

from pathlib import Path

HISTORIES = Path(__file__).parent


def release_folder(release: str) -> Path:
    return HISTORIES / f"v{release}"


def recorded_histories() -> dict[str, Path]:
    """Every recorded history of every release, by its path under this folder."""
    return {
        path.relative_to(HISTORIES).with_suffix("").as_posix(): path
        for path in sorted(HISTORIES.rglob("*.json"))
    }
