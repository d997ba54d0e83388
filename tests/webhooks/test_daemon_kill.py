"""The daemon as real processes: one active replica among two, SIGKILL mid-delivery loses
nothing (the delivery is sent again, by the standby taking over, with the same
``webhook-id``), SIGTERM stops cleanly, and the probes say who is active."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import IO, Any

from tests.projector.conftest import PROBES_LINE, http_get, parse_metrics
from tests.support import wait_for
from tests.webhooks.delivery_support import World, run_cli, webhooks_cli, world
from tests.webhooks.receiver import Answer, Receiver

__all__ = ["world"]  # fixture


class DaemonProcess:
    """``a4c-webhooks run``, its stderr drained all along, its probes' port from the log."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = webhooks_cli(env, "run")
        self._lines: list[str] = []
        for stream, lines in ((self.proc.stderr, self._lines), (self.proc.stdout, [])):
            threading.Thread(target=self._drain, args=(stream, lines), daemon=True).start()
        self._port: int | None = None

    @staticmethod
    def _drain(stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._lines)

    @property
    def port(self) -> int:
        if self._port is None:
            wait_for(lambda: PROBES_LINE.search(self.stderr) is not None, 60, "probes line")
            found = PROBES_LINE.search(self.stderr)
            assert found is not None
            self._port = int(found.group(1))
        return self._port

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        assert self.proc.poll() is None, f"the daemon exited:\n{self.stderr}"
        status, body = http_get(self.port, path)
        return status, (json.loads(body) if status in (200, 503) else {})

    def metrics(self) -> dict[str, float]:
        status, body = http_get(self.port, "/metrics")
        assert status == 200
        return parse_metrics(body)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_sigkill_mid_delivery_loses_nothing_and_the_standby_takes_over(world: World) -> None:
    receiver = Receiver([])
    alpha = world.organization("alpha")
    endpoint, secret = world.endpoint(receiver.url)
    receiver.secrets = [secret]
    world.activity(alpha, 3)
    world.project()
    expected = world.expected(endpoint)
    receiver.script(Answer(200, hang=120))  # the first request never gets its answer
    env = world.env(WEBHOOK_TIMEOUT="60")
    first = DaemonProcess(env)
    second: DaemonProcess | None = None
    try:
        receiver.wait_count(1)
        wait_for(lambda: first.get("/ready")[0] == 200, 30, "the first daemon ready")
        second = DaemonProcess(env)
        wait_for(lambda: second.get("/health")[0] == 200, 30, "the second daemon alive")
        status, body = second.get("/ready")
        assert status == 503 and body["reasons"][0] == "standby"
        time.sleep(0.5)
        assert len(receiver.snapshot()) == 1  # in flight, nothing else (order)

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        receiver.release()  # its answer goes to a dead connection

        assert receiver.wait_delivered(len(expected), timeout=60) == expected
        got = receiver.snapshot()
        assert [r.webhook_id for r in got] == [expected[0], *expected]  # the same id again
        assert all(r.verified == (True,) for r in got)
        assert got[0].body == got[1].body
        wait_for(lambda: second.get("/ready")[0] == 200, 30, "the second daemon ready")
        wait_for(
            lambda: second.metrics()["a4c_webhooks_pending_deliveries"] == 0, 10, "all recorded"
        )
        metrics = second.metrics()
        assert metrics["a4c_webhooks_deliveries_total{outcome=delivered}"] == len(expected)
        assert metrics["a4c_webhooks_active"] == 1
        assert metrics["a4c_webhooks_pending_deliveries"] == 0

        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(30) == 0, second.stderr
        assert "Traceback" not in second.stderr
    finally:
        receiver.close()
        first.close()
        if second is not None:
            second.close()


def test_sigterm_lets_the_delivery_in_flight_finish(world: World) -> None:
    receiver = Receiver([])
    alpha = world.organization("alpha")
    endpoint, secret = world.endpoint(receiver.url)
    receiver.secrets = [secret]
    world.activity(alpha, 2)
    world.project()
    expected = world.expected(endpoint)
    assert len(expected) >= 2
    receiver.script(Answer(200, hang=1.5))  # answered, late but within the timeout
    env = world.env(WEBHOOK_TIMEOUT="10", WEBHOOK_SHUTDOWN_GRACE="20")
    daemon = DaemonProcess(env)
    try:
        receiver.wait_count(1)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(30) == 0, daemon.stderr
        assert "Traceback" not in daemon.stderr
        code, out, err = run_cli(env, "streams", "--format", "json")
        assert code == 0 and json.loads(out) == [], err
        # The late answer was recorded: a new daemon sends the rest, not that one again.
        receiver.default = Answer(200)
        again = DaemonProcess(env)
        try:
            receiver.wait_for(lambda got: [r.webhook_id for r in got] == expected, 30, "the rest")
            time.sleep(1.0)
            assert [r.webhook_id for r in receiver.snapshot()] == expected
        finally:
            again.close()
    finally:
        receiver.close()
        daemon.close()
