"""Every benchmark still runs: each, at a tiny size, exits 0 and prints its JSON lines.

Nothing here reads a figure: a speed is never asserted (bench/README.md). The benches run
as the README runs them, as processes of their own, all at once (most of their time is
waiting: servers starting, fixed-rate writers), against the test PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.postgres import PG_DBNAME, PG_HOST, PG_PORT, PG_USER

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"

# Each bench's tiny size: every path it measures, over as little data as it takes.
SMALL = {
    # Both insert modes, writer processes, one round of 4 events per path.
    "append.py": ["--events", "4", "--rounds", "1", "--writers", "2"],
    "api.py": ["--seconds", "0.3", "--clients", "2", "--postgres"],
    # Without eager activity dispatch: the dev server takes the setting.
    "bootstrap.py": ["--n", "2", "--invitees", "1", "--polled-activities"],
    "projector_catchup.py": [
        *("--events", "200", "--baseline-events", "50", "--baseline-seconds", "5"),
        *("--rebuild-events", "300", "--phases"),  # --phases: its timers too
    ],
    # --trace: the projector runs under bench/lag_trace.py's timers, and the lag is explained.
    # A tiny population, every query and its plan (tiny tables: plans may differ from big ones).
    "read_queries.py": ["--organizations", "200", "--samples", "20"],
    "projector_lag.py": ["--seconds", "1", "--rate", "20", "--writers", "2", "--trace"],
}
SHARED = {"common.py", "catchup_profile.py", "lag_trace.py"}  # helpers, not benches
# Benches with a test of their own, which reads their result (not only that they ran).
OWN_TEST = {"soak.py": "tests/e2e/test_soak.py"}
# The slowest (bootstrap: a Temporal dev server) takes a few seconds alone; the machine
# may be busy with other tests.
TIMEOUT_SECONDS = 240


def test_every_bench_has_a_tiny_size() -> None:
    assert {p.name for p in BENCH.glob("*.py")} - SHARED - set(OWN_TEST) == set(SMALL)
    assert all((ROOT / test).is_file() for test in OWN_TEST.values())


@pytest.fixture(scope="module")
def runs(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every bench started together, its output going to files."""
    folder = tmp_path_factory.mktemp("benches")
    env = {
        **os.environ,
        "PGHOST": PG_HOST,
        "PGPORT": PG_PORT,
        "PGUSER": PG_USER,
        "PGDATABASE": PG_DBNAME,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = {name: Run(name, args, folder, env) for name, args in SMALL.items()}
    yield started
    for run in started.values():
        run.stop()


class Run:
    """One bench's process, its stdout and stderr in files."""

    def __init__(self, name: str, args: list[str], folder: Path, env: dict[str, str]) -> None:
        self.stdout = folder / f"{name}.out"
        self.stderr = folder / f"{name}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(BENCH / name), *args],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def result(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=TIMEOUT_SECONDS)
        return code, self.stdout.read_text(), self.stderr.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_bench_runs_and_prints_json_lines(name: str, runs: dict[str, Run]) -> None:
    code, out, err = runs[name].result()
    assert code == 0, f"{name} exited {code}:\n{err[-3000:]}"
    printed = lines(out)
    assert printed, f"{name} printed nothing on stdout:\n{err[-3000:]}"
    for line in printed:  # every stdout line is one result (bench/README.md)
        record = json.loads(line)
        assert isinstance(record, dict) and record, line
