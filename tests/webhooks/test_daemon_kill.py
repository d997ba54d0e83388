"""The daemon as real processes: one active replica among two, SIGKILL mid-delivery loses
nothing (the delivery is sent again, by the standby taking over, with the same
``webhook-id``), SIGTERM stops cleanly, and the probes say who is active."""

from __future__ import annotations

import json
import signal
import time

from tests.support import wait_for
from tests.webhooks.delivery_support import WebhooksDaemon, World, run_cli
from tests.webhooks.receiver import Answer, Receiver


def test_sigkill_mid_delivery_loses_nothing_and_the_standby_takes_over(
    world: World, receiver: Receiver
) -> None:
    _, endpoint = world.subscribed(receiver, 3)
    expected = world.expected(endpoint)
    receiver.script(Answer(200, hang=120))  # the first request never gets its answer
    env = world.env(WEBHOOK_TIMEOUT="60")
    first = WebhooksDaemon(env)
    second: WebhooksDaemon | None = None
    try:
        receiver.wait_count(1)
        wait_for(lambda: first.get("/ready")[0] == 200, 30, "the first daemon ready")
        second = WebhooksDaemon(env)
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
        first.close()
        if second is not None:
            second.close()


def test_sigterm_lets_the_delivery_in_flight_finish(world: World, receiver: Receiver) -> None:
    _, endpoint = world.subscribed(receiver, 2)
    expected = world.expected(endpoint)
    assert len(expected) >= 2
    receiver.script(Answer(200, hang=1.5))  # answered, late but within the timeout
    env = world.env(WEBHOOK_TIMEOUT="10", WEBHOOK_SHUTDOWN_GRACE="20")
    daemon = WebhooksDaemon(env)
    try:
        receiver.wait_count(1)
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(30) == 0, daemon.stderr
        assert "Traceback" not in daemon.stderr
        code, out, err = run_cli(env, "streams", "--format", "json")
        assert code == 0 and json.loads(out) == [], err
        # The late answer was recorded: a new daemon sends the rest, not that one again.
        receiver.default = Answer(200)
        again = WebhooksDaemon(env)
        try:
            receiver.wait_for(lambda got: [r.webhook_id for r in got] == expected, 30, "the rest")
            time.sleep(1.0)
            assert [r.webhook_id for r in receiver.snapshot()] == expected
        finally:
            again.close()
    finally:
        daemon.close()
