"""What every recorder of one workflow's histories does around its own recording: read
the release from the command line, refuse to replace a recorded history, run the
recording on a fresh dev server (the tests' one: search attributes registered) and write
the files only once every path ran."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from temporalio.client import Client, WorkflowHistory
from tests.servers.temporal import start_dev_server
from tests.worker.histories import release_folder

Record = Callable[[Client, Path], Awaitable[dict[str, WorkflowHistory]]]


async def record_release(description: str, paths: Sequence[str], record: Record) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("release", help="the version being released, e.g. 0.5.0")
    args = parser.parse_args()
    folder = release_folder(args.release)
    if taken := sorted(name for name in paths if (folder / f"{name}.json").exists()):
        raise SystemExit(f"not replacing recorded histories: {', '.join(taken)}")
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            recorded = await record(env.client, Path(scratch))
    finally:
        await env.shutdown()
    folder.mkdir(exist_ok=True)
    for name, history in recorded.items():
        (folder / f"{name}.json").write_text(history.to_json())
        print(f"recorded {folder.name}/{name}.json ({len(history.events)} events)")
