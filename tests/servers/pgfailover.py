"""A replicated PostgreSQL for the failover tests and the soak: pg_auto_failover on this
machine (a monitor, a primary and a secondary, each its own data folder and port, run as
the ``postgres`` user), created and destroyed here.

No pytest at module level: ``bench/soak.py`` uses the cluster outside pytest too.

The monitor notices a lost primary in a few seconds rather than pg_auto_failover's
~30 s, because the tests and the soak kill primaries on purpose. Values (``ALTER SYSTEM``
on the monitor, :data:`FAST_DETECTION`) and why they are safe *here*: every node is on
this machine, so a health check that does not answer in a second means a dead node, not a
slow network; production keeps pg_auto_failover's defaults, whose longer waits are what
prevents a split brain across a real network.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psycopg

from a4c_tool.processes import _dies_with
from tests.support import free_port

BINDIR = "/usr/lib/postgresql/15/bin"
PG_AUTOCTL = "/usr/bin/pg_autoctl"
HOST = "127.0.0.1"
MONITOR_DB = "pg_auto_failover"
# The monitor's failure detection (milliseconds), shortened from the defaults in brackets.
FAST_DETECTION = {
    "pgautofailover.health_check_period": 1000,  # [5000] how often it checks each node
    "pgautofailover.health_check_timeout": 1000,  # [5000] connect timeout of a check
    "pgautofailover.health_check_max_retries": 1,  # [2]
    "pgautofailover.health_check_retry_delay": 500,  # [2000]
    # [20000] no report from the keeper and failed checks for this long: unhealthy
    "pgautofailover.node_considered_unhealthy_timeout": 2000,
    # [30000] how long the monitor waits for a lost primary to demote itself before
    # promoting: the keeper is killed with its postmaster here, so it never reports.
    "pgautofailover.primary_demote_timeout": 2000,
    "pgautofailover.startup_grace_period": 2000,  # [10000] after the monitor starts
}
HEALTHY = {"primary", "secondary"}
WRITABLE = {"single", "wait_primary", "primary"}


def _children(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc: the tree, not a name match)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` and everything it started (keeper, postmaster, backends)."""
    for pid in [process.pid, *_children(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()


class Node:
    """One pg_autoctl process (monitor or keeper) and its data folder."""

    def __init__(self, name: str, folder: Path, port: int) -> None:
        self.name, self.pgdata, self.port = name, folder / name, port
        self.log_path = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def kill(self) -> None:
        if self.process is not None:
            _kill_tree(self.process)
            self.process = None
        postmaster = self.pgdata / "postmaster.pid"  # one pg_autoctl left running: none here
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(postmaster.read_text().splitlines()[0])
            if str(self.pgdata) in Path(f"/proc/{pid}/cmdline").read_text():
                os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None


class FailoverCluster:
    """A monitor, a primary and a secondary; clients use :attr:`conninfo`."""

    def __init__(self, root: Path, *, dbname: str = "a4c") -> None:
        self.root, self.dbname = Path(root), dbname
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        monitor, one, two = sorted(ports)
        self.monitor = Node("monitor", self.root, monitor)
        self.nodes = [Node("node1", self.root, one), Node("node2", self.root, two)]
        self._env = {
            "PATH": f"{BINDIR}:/usr/bin:/bin",
            "XDG_CONFIG_HOME": str(self.root / "xdg" / "config"),
            "XDG_DATA_HOME": str(self.root / "xdg" / "data"),
            "XDG_RUNTIME_DIR": str(self.root / "xdg" / "run"),
            "PG_AUTOCTL_DEBUG": "",
        }

    # --- what clients use -------------------------------------------------------------

    @property
    def conninfo(self) -> str:
        hosts = ",".join(HOST for _ in self.nodes)
        ports = ",".join(str(n.port) for n in self.nodes)
        return (
            f"host={hosts} port={ports} user=postgres dbname={self.dbname} "
            "target_session_attrs=read-write connect_timeout=2"
        )

    def store_env(self) -> dict[str, str]:
        """The store variables of an a4c process using this cluster as its event store."""
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": ",".join(HOST for _ in self.nodes),
            "POSTGRES_PORT": ",".join(str(n.port) for n in self.nodes),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_USER": "postgres",
            "POSTGRES_PASSWORD": "",
            "POSTGRES_TARGET_SESSION_ATTRS": "read-write",
            "POSTGRES_PRE_PING": "y",
            "POSTGRES_CONNECT_TIMEOUT": "2",
        }

    # --- life -------------------------------------------------------------------------

    def __enter__(self) -> FailoverCluster:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for sub in ("config", "data", "run"):
            (self.root / "xdg" / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "xdg" / "run", 0o700)
        shutil.chown(self.root, "postgres", "postgres")
        for path in self.root.rglob("*"):
            shutil.chown(path, "postgres", "postgres")
        try:
            self._launch(self.monitor, "create", "monitor")
            self._until(deadline, "the monitor", self._monitor_ready)
            with self._monitor_db() as conn:
                for name, value in FAST_DETECTION.items():
                    conn.execute(f"ALTER SYSTEM SET {name} = {int(value)}")
                conn.execute("SELECT pg_reload_conf()")
            first, second = self.nodes
            self._launch_node(first)
            self._until(deadline, "node1 primary", lambda: self._states().get(1) in WRITABLE)
            self._launch_node(second)
            self.wait_healthy(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for node in [*self.nodes, self.monitor]:
            node.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- faults -----------------------------------------------------------------------

    def primary_port(self) -> int:
        return self._primary().port

    def perform_failover(self) -> float:
        """``pg_autoctl perform failover``; seconds from asking until writes work again."""
        old = self.primary_port()
        started = time.monotonic()
        self._autoctl(self.monitor, "perform", "failover", timeout=60)
        self._until_writable(started + 60, besides=old)
        return time.monotonic() - started

    def kill_primary(self) -> float:
        """SIGKILL the primary with its keeper (so the monitor fails over instead of the
        keeper restarting it); wait for writes on the other node; restart the dead keeper
        so it rejoins as a secondary. Seconds of write unavailability."""
        dead = self._primary()
        started = time.monotonic()
        dead.kill()
        self._until_writable(started + 60, besides=dead.port)
        unavailable = time.monotonic() - started
        self._launch(dead, "run")
        return unavailable

    def wait_healthy(self, timeout: float = 120) -> None:
        """One primary and one secondary, both as the monitor wants them."""

        def healthy() -> bool:
            # A spread checkpoint (minutes when idle) holds up a base backup or a rewind.
            with contextlib.suppress(psycopg.Error, RuntimeError):
                self._checkpoint()
            nodes = self._nodes()
            return {n["reported"] for n in nodes} == HEALTHY and all(
                n["reported"] == n["goal"] for n in nodes
            )

        self._until(time.monotonic() + timeout, "a primary and a secondary", healthy, 0.5)

    def _checkpoint(self) -> None:
        with self._connect(self._primary().port) as conn:
            conn.execute("CHECKPOINT")

    def backend_pids(self, application_name_like: str | None = None) -> list[int]:
        """Client backends on the primary's database (for ``pg_terminate_backend``)."""
        query = (
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend'"
            " AND datname = %s AND pid <> pg_backend_pid()"
        )
        params: list[str] = [self.dbname]
        if application_name_like is not None:
            query += " AND application_name LIKE %s"
            params.append(application_name_like)
        with self._connect(self.primary_port()) as conn:
            return [int(row[0]) for row in conn.execute(query, params)]

    def states(self) -> dict[str, str]:
        """Each node's reported state (for logs and reports)."""
        return {f"{n['port']}": str(n["reported"]) for n in self._nodes()}

    # --- inside -----------------------------------------------------------------------

    def _launch_node(self, node: Node) -> None:
        monitor = f"postgres://autoctl_node@{HOST}:{self.monitor.port}/{MONITOR_DB}?sslmode=disable"
        self._launch(node, "create", "postgres", "--monitor", monitor, "--dbname", self.dbname)

    def _launch(self, node: Node, *command: str) -> None:
        """Start ``pg_autoctl COMMAND ... --run`` (or ``run``) for ``node`` as postgres."""
        args = [*command, "--pgdata", str(node.pgdata)]
        if command[0] == "create":
            args += ["--pgport", str(node.port), "--hostname", HOST, "--auth", "trust"]
            args += ["--no-ssl", "--run"]
        in_main_thread = threading.current_thread() is threading.main_thread()
        node._log = node.log_path.open("ab")
        node.process = subprocess.Popen(
            self._as_postgres(PG_AUTOCTL, *args),
            stdin=subprocess.DEVNULL,
            stdout=node._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # our own group: Ctrl-C in a terminal is ours to pass
            # Never outlive this process, even SIGKILLed: the kernel sends SIGTERM to
            # runuser, which passes it on to pg_autoctl, which stops its postgres. The
            # kernel acts when the forking *thread* ends, so only from the main thread
            # (a keeper restarted from another one relies on stop()).
            preexec_fn=_dies_with(os.getpid()) if in_main_thread else None,
        )

    def _autoctl(self, node: Node, *command: str, timeout: float) -> str:
        done = subprocess.run(
            self._as_postgres(PG_AUTOCTL, *command, "--pgdata", str(node.pgdata)),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pg_autoctl {' '.join(command)}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode()

    def _as_postgres(self, *command: str) -> list[str]:
        env = [f"{k}={v}" for k, v in self._env.items()]
        return ["runuser", "-u", "postgres", "--", "env", *env, *command]

    def _connect(self, port: int, dbname: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=HOST,
            port=port,
            user="postgres",
            dbname=dbname or self.dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def _monitor_db(self) -> psycopg.Connection[Any]:
        return self._connect(self.monitor.port, MONITOR_DB)

    def _monitor_ready(self) -> bool:
        try:
            with self._monitor_db() as conn:
                conn.execute("SELECT 1 FROM pgautofailover.node LIMIT 1")
        except psycopg.Error:
            return False
        return True

    def _nodes(self) -> list[dict[str, Any]]:
        try:
            with self._monitor_db() as conn:
                rows = conn.execute(
                    "SELECT nodeid, nodeport, reportedstate::text, goalstate::text"
                    " FROM pgautofailover.node ORDER BY nodeid"
                ).fetchall()
        except psycopg.Error:
            return []
        return [{"id": r[0], "port": r[1], "reported": r[2], "goal": r[3]} for r in rows]

    def _states(self) -> dict[int, str]:
        return {int(n["id"]): str(n["reported"]) for n in self._nodes()}

    def _primary(self) -> Node:
        writable = [n["port"] for n in self._nodes() if n["reported"] in WRITABLE]
        for node in self.nodes:
            if node.port in writable:
                return node
        raise RuntimeError(f"no primary: {json.dumps(self.states())}")

    def _writes_at(self, port: int) -> bool:
        """A write commits at ``port`` (a primary that is still read-write)."""
        try:
            with psycopg.connect(
                host=HOST,
                port=port,
                user="postgres",
                dbname=self.dbname,
                connect_timeout=1,
                autocommit=True,
                target_session_attrs="read-write",
                options="-c statement_timeout=1000",  # a wait for a lost standby, cut short
            ) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS failover_probe (at timestamptz)")
                conn.execute("INSERT INTO failover_probe VALUES (now())")
        except psycopg.Error:
            return False
        return True

    def _until_writable(self, deadline: float, *, besides: int) -> None:
        others = [n.port for n in self.nodes if n.port != besides]
        self._until(deadline, "writes on the new primary", lambda: self._writes_at(others[0]))

    def _until(self, deadline: float, what: str, ready: Any, every: float = 0.1) -> None:
        while not ready():
            for node in [self.monitor, *self.nodes]:
                if node.process is not None and node.process.poll() is not None:
                    log = node.log_path.read_bytes()[-3000:].decode(errors="replace")
                    raise RuntimeError(f"pg_autoctl {node.name} exited:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within the time given ({self.states()})")
            time.sleep(every)
