"""The short soak: the whole stack for about two minutes, every fault kind at least once.

``bench/soak.py`` runs as a user runs it, as a process of its own (it builds its own
PostgreSQL cluster under pg_auto_failover, its own dev server, BIND and SMTP sink), and
this test reads its one JSON line. The long run is by hand (docs/development.md).
``A4C_SOAK_SEED`` replays another seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from soaklib.faults import KINDS

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("A4C_SOAK_SEED", "18"))
DURATION_SECONDS = 110
# Start-up (cluster, stack), the load, the settle and the checker, on a busy machine.
TIMEOUT_SECONDS = 900


def test_the_short_soak_loses_duplicates_and_leaks_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [
            sys.executable, str(ROOT / "bench" / "soak.py"),
            "--seed", str(SEED), "--duration", str(DURATION_SECONDS), "--rate", "2",
            "--root", str(tmp_path / "soak"), "--keep",
        ],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env, cwd=ROOT,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line (exit {done.returncode}):\n{done.stderr[-4000:]}"
    result = json.loads(lines[-1])
    logs = tmp_path / "soak" / "logs"
    assert result["violations"] == [], f"seed {SEED}; logs in {logs}"
    assert result["violation_count"] == 0
    assert done.returncode == 0, done.stderr[-4000:]
    missing = [kind for kind in KINDS if result["faults"].get(kind, {}).get("count", 0) < 1]
    assert missing == [], result["faults"]
    # The load really ran: work of every kind was done, not only refused.
    succeeded = {
        kind for kind, outcomes in result["requests"].items()
        if any(outcome.startswith("2") for outcome in outcomes)
    }  # fmt: skip
    assert {"onboard", "accept", "revoke", "resend", "offboard"} <= succeeded, result["requests"]
    # Organizations offboarded under the faults (the checker proved each left nothing).
    assert result["offboardings"]["offboarded"] > 0, result["offboardings"]
    # Organizations' own providers put in force by an admin's test sign-in, their e-mail
    # domains verified (the checker proved the store, read models and mails agree).
    assert result["sso"]["activated"] > 0, result["sso"]
    assert result["sso"]["domains_verified"] > 0, result["sso"]
    assert result["mails"] > 0
    # The events feed's consumer and both webhook endpoints followed all of it (the
    # checker proved each got every event it should, once by id, in order).
    assert result["feed"]["events"] > 0
    assert result["webhooks"]["soak-all"]["events"] == result["feed"]["events"]
    assert 0 < result["webhooks"]["soak-people"]["events"] < result["feed"]["events"]
    assert result["bootstraps"]["open"] == 0, result["bootstraps"]
