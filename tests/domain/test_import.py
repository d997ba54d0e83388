"""``import a4c_domain`` pulls in only its declared dependencies and does no I/O."""

from __future__ import annotations

import json
import subprocess
import sys

ALLOWED_THIRD_PARTY = {
    "a4c_domain",
    "eventsourcing",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    "typing_inspection",
    "email_validator",
    "idna",
}

PROBE = r"""
import json, sys
io_events = []
WATCHED = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "sqlite3.connect")
def hook(event, args):
    if event.startswith(WATCHED):
        io_events.append(event)
    elif event == "open" and isinstance(args[1], str) and any(c in args[1] for c in "wax+"):
        io_events.append(f"open for writing: {args[0]}")
before = set(sys.modules)
sys.addaudithook(hook)
import a4c_domain
exec(sys.argv[1])
loaded = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"loaded": loaded, "io": io_events}))
"""


def probe(after_import: str = "") -> dict[str, list[str]]:
    out = subprocess.run(
        [sys.executable, "-I", "-B", "-c", PROBE, after_import],  # -B: no .pyc writes,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    report: dict[str, list[str]] = json.loads(out.stdout)
    return report


def test_import_has_no_side_effects() -> None:
    report = probe()
    third_party = {
        m for m in report["loaded"] if m not in sys.stdlib_module_names and not m.startswith("_")
    }
    assert "psycopg" not in third_party and "temporalio" not in third_party
    assert third_party <= ALLOWED_THIRD_PARTY, third_party - ALLOWED_THIRD_PARTY
    assert "eventsourcing" in third_party and "pydantic" in third_party
    assert report["io"] == []


def test_the_probe_sees_io() -> None:
    """The control: the same probe does notice a socket being opened."""
    report = probe("import socket; socket.socket().close()")
    assert any(event.startswith("socket.") for event in report["io"])
