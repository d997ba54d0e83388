"""The delivery daemon against a real PostgreSQL, the real projector and a real receiver
that verifies every request with the ``standardwebhooks`` package.

Endpoints are added through ``OnboardingApplication`` and projected, like every other
read model; what an endpoint should get is read from the projected public-events feed
(the events API's rows) after the position that enabled it. The daemon runs in-process
(its own event loop on a thread) with a short retry schedule, 0 s, 0.2 s, 0.4 s; the CLI
commands run as processes.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from a4c_domain import ALL_ORGANIZATIONS
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.queries import ReadModel
from a4c_webhooks.signing import new_secret
from tests.servers.postgres import fresh_schema, pg_conninfo
from tests.support import wait_for
from tests.webhooks.delivery_support import RunningDaemon, World, make_world, run_cli
from tests.webhooks.receiver import Answer, Receiver


def organization_of(event: dict[str, Any]) -> str:
    return str(event["organization"]["id"])


def test_each_event_once_in_order_signed(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    alpha, beta = world.organization("alpha"), world.organization("beta")
    everything, secret = world.endpoint(receiver.url, "everything")
    only_beta, beta_secret = world.endpoint(receiver.url, "beta", organization_id=beta)
    invited, invited_secret = world.endpoint(
        receiver.url, "invited", event_types=["invitation.invited"]
    )
    receiver.secrets = [secret, beta_secret, invited_secret]
    world.activity(alpha, 4)
    world.activity(beta, 3)
    world.project()
    types = {json.loads(body)["id"]: json.loads(body)["type"] for body in _bodies(world)}
    wanted = [
        world.expected(everything),
        world.expected(only_beta, beta),
        [e for e in world.expected(invited) if types[e] == "invitation.invited"],
    ]
    total = sum(len(ids) for ids in wanted)
    assert all(wanted)
    running.append(RunningDaemon(world))
    receiver.wait_delivered(total)
    time.sleep(0.5)  # nothing more, nothing twice
    got = receiver.snapshot()
    assert len(got) == total
    # Each request verifies with its endpoint's secret and no other; an endpoint gets
    # its events once each, each organization's in feed order (the streams of two
    # organizations go side by side).
    for n, ids in enumerate(wanted):
        mine = [r for r in got if r.verified[n]]
        assert all(sum(r.verified) == 1 for r in mine)
        assert sorted(r.webhook_id for r in mine) == sorted(ids)
        for organization in (alpha, beta):
            theirs = [r.webhook_id for r in mine if organization_of(r.event) == str(organization)]
            assert theirs == [e for e in ids if e in set(world.feed(organization))]
    # The body is the feed's, byte for byte; webhook-id is the event's id.
    feed = {json.loads(body)["id"]: body.encode() for body in _bodies(world)}
    assert all(r.body == feed[r.webhook_id] for r in got)


def _bodies(world: World) -> list[str]:
    with ReadModel(world.store.location) as read_model:
        return [body for _, body in read_model.public_events(0, 10_000)]


def test_failures_are_retried_in_order_and_retry_after_is_honoured(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    _, endpoint = world.subscribed(receiver, 3)
    expected = world.expected(endpoint)
    # First event: 500, then 429 asking for 1 s (the schedule would wait 0.4 s), then ok.
    # Second: a hang past the daemon's 2 s timeout, then ok.
    receiver.script(
        Answer(500),
        Answer(429, retry_after="1"),
        Answer(200),
        Answer(200, hang=3.0),
    )
    running.append(RunningDaemon(world, schedule=(0.0, 0.2, 0.4, 0.4)))
    assert receiver.wait_delivered(len(expected)) == expected
    got = receiver.snapshot()
    ids = [r.webhook_id for r in got]
    assert ids[:3] == [expected[0]] * 3  # the same webhook-id each time
    assert got[2].at - got[1].at >= 0.95  # Retry-After, not the schedule's 0.4 s
    assert ids[3:5] == [expected[1]] * 2  # the hung one sent again
    assert all(r.verified == (True,) for r in got)


def test_an_exhausted_stream_parks_others_flow_and_retry_unparks(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    alpha, beta = world.organization("alpha"), world.organization("beta")
    endpoint, secret = world.endpoint(receiver.url)
    receiver.secrets = [secret]
    failing = str(alpha)
    receiver.rule = lambda event: Answer(500) if organization_of(event) == failing else None
    world.activity(alpha, 2)
    world.activity(beta, 3)
    world.project()
    alpha_expected = world.expected(endpoint, alpha)
    beta_expected = world.expected(endpoint, beta)
    running.append(RunningDaemon(world))
    receiver.wait_for(
        lambda got: [r.webhook_id for r in got if r.answered.status == 200] == beta_expected,
        what="beta's events",
    )
    wait_for(lambda: _streams(world) != [], what="alpha's stream parked")
    wait_for(lambda: _streams(world)[0]["state"] == "parked", what="parked")
    (stream,) = _streams(world)
    assert stream["organization_id"] == str(alpha)
    assert stream["endpoint_id"] == str(endpoint)
    assert stream["head_attempts"] == 3 and stream["last_status"] == 500
    attempts = [r.webhook_id for r in receiver.snapshot() if r.answered.status == 500]
    assert attempts == [alpha_expected[0]] * 3  # never alpha's second while parked
    time.sleep(0.5)
    assert len(receiver.snapshot()) == len(beta_expected) + 3  # parked: nothing sent

    receiver.rule = None
    code, out, err = run_cli(
        world.env(), "retry", "--endpoint", str(endpoint), "--organization", str(alpha)
    )
    assert code == 0, err
    assert "unparked 1 stream" in out
    # Beta's were all delivered before; now alpha's follow, in order, each once.
    total = len(beta_expected) + len(alpha_expected)
    assert receiver.wait_delivered(total) == beta_expected + alpha_expected
    assert _streams(world) == []
    code, out, _ = run_cli(world.env(), "retry", "--endpoint", str(endpoint))
    assert code == 1 and "unparked 0 streams" in out


def _streams(world: World) -> list[dict[str, Any]]:
    code, out, err = run_cli(world.env(), "streams", "--format", "json")
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


def test_a_receiver_that_is_down_parks_then_gets_everything_after_retry(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    _, endpoint = world.subscribed(receiver, 2)
    receiver.down()
    running.append(RunningDaemon(world))
    wait_for(lambda: [s["state"] for s in _streams(world)] == ["parked"], what="stream parked")
    (stream,) = _streams(world)
    assert "cannot connect" in stream["last_error"]
    receiver.up()
    code, out, err = run_cli(world.env(), "streams")
    assert code == 0 and "parked" in out and str(endpoint) in out, err
    assert run_cli(world.env(), "retry", "--endpoint", str(endpoint))[0] == 0
    assert receiver.wait_delivered(len(world.expected(endpoint))) == world.expected(endpoint)


def test_410_disables_the_endpoint_and_tells_its_admins(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    alpha, endpoint = world.subscribed(receiver, 3, owned=True)
    receiver.default = Answer(410)
    daemon = RunningDaemon(world)
    running.append(daemon)
    wait_for(lambda: daemon.disabler.requests != [], what="a disable")
    time.sleep(0.5)
    ((disabled, reason, notify),) = daemon.disabler.requests
    assert disabled == endpoint
    assert "410" in reason
    assert notify == [f"admin@{alpha}.example"]
    assert len(receiver.snapshot()) == 1  # held back once gone


def test_a_stream_failing_too_long_disables_the_endpoint(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    _, endpoint = world.subscribed(receiver, 1)
    receiver.default = Answer(503)
    daemon = RunningDaemon(world, schedule=(0.0, 0.3, 0.3, 0.3, 0.3), disable_after=0.5)
    running.append(daemon)
    wait_for(lambda: daemon.disabler.requests != [], what="a disable")
    ((disabled, reason, notify),) = daemon.disabler.requests
    assert disabled == endpoint
    assert "failed for more than" in reason
    assert notify == []  # the platform's endpoint: no organization's admins


def test_rotation_signs_with_both_secrets_during_the_overlap(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    alpha = world.organization("alpha")
    endpoint, old = world.endpoint(receiver.url)
    new = new_secret()
    receiver.secrets = [old, new]
    world.activity(alpha, 1, prefix="before")
    world.project()
    running.append(RunningDaemon(world))
    first = receiver.wait_delivered(len(world.expected(endpoint)))
    assert {r.verified for r in receiver.snapshot()} == {(True, False)}
    world.app.rotate_webhook_secret(
        scope=ALL_ORGANIZATIONS,
        endpoint_id=endpoint,
        secret=world.keys.seal(new),
        previous_secret_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    world.activity(alpha, 2, prefix="after")
    world.project()
    expected = world.expected(endpoint)
    assert receiver.wait_delivered(len(expected)) == expected
    later = receiver.snapshot()[len(first) :]
    assert later and all(r.verified == (True, True) for r in later)


def test_replay_resends_a_range_with_the_same_ids_in_order(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    _, endpoint = world.subscribed(receiver, 4)
    expected = world.expected(endpoint)
    since = world.enabled_since(endpoint)
    running.append(RunningDaemon(world))
    assert receiver.wait_delivered(len(expected)) == expected
    positions = _positions(world, since)
    code, out, err = run_cli(
        world.env(),
        "replay",
        "--endpoint",
        str(endpoint),
        "--after",
        str(positions[0]),
        "--until",
        str(positions[2]),
    )
    assert code == 0, err
    assert "queued 2 deliveries" in out
    assert receiver.wait_delivered(len(expected) + 2)[len(expected) :] == expected[1:3]
    code, out, err = run_cli(
        world.env(), "replay", "--endpoint", str(endpoint), "--since", "2000-01-01T00:00:00Z"
    )
    assert code == 0, err
    everything = world.feed()
    total = len(expected) + 2 + len(everything)
    assert receiver.wait_delivered(total)[len(expected) + 2 :] == everything
    code, _, err = run_cli(world.env(), "replay", "--endpoint", str(UUID(int=1)), "--after", "0")
    assert code == 1 and "no endpoint" in err


def _positions(world: World, after: int) -> list[int]:
    with ReadModel(world.store.location) as read_model:
        return [position for position, _ in read_model.public_events(after, 10_000)]


def test_per_organization_order_under_concurrent_lock_free_writers(
    running: list[RunningDaemon],
    receiver: Receiver,
) -> None:
    with fresh_schema(pg_conninfo()) as schema:
        world = make_world(schema, POSTGRES_ENABLE_DB_FUNCTIONS="y")
        runner = Runner(
            world.store.store, RunnerOptions(batch_size=7, poll_interval=0.05, gap_grace=0.05)
        )
        projecting = threading.Thread(target=runner.run)
        try:
            organizations = [world.organization(f"org-{n}") for n in range(3)]
            endpoint, secret = world.endpoint(receiver.url)
            receiver.secrets = [secret]
            world.project()
            projecting.start()
            running.append(RunningDaemon(world, concurrency=4))
            writers = [
                threading.Thread(target=world.activity, args=(organization, 8, f"w{w}-"))
                for organization in organizations
                for w in range(2)
            ]
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join()
            wait_for(
                lambda: len(world.feed(after=world.enabled_since(endpoint))) >= 3 * 2 * 8,
                what="the projector",
            )
            expected = world.expected(endpoint)
            receiver.wait_delivered(len(expected), timeout=60)
            got = receiver.delivered()
            assert sorted(r.webhook_id for r in got) == sorted(expected)  # once each
            for organization in organizations:
                mine = [r.webhook_id for r in got if organization_of(r.event) == str(organization)]
                assert mine == world.expected(endpoint, organization)
            assert all(r.verified == (True,) for r in got)
        finally:
            for daemon in running:
                daemon.stop()
            runner.stop()
            if projecting.is_alive():
                projecting.join(10)
            world.app.close()


def test_the_daemon_waits_for_the_projectors_read_models(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    alpha = world.organization("alpha")
    endpoint, secret = world.endpoint(receiver.url)
    receiver.secrets = [secret]
    world.activity(alpha, 2)
    running.append(RunningDaemon(world))  # no public_events table yet
    time.sleep(0.3)
    world.project()
    expected = world.expected(endpoint)
    assert receiver.wait_delivered(len(expected)) == expected


def _disable_and_enable(world: World, endpoint: UUID) -> None:
    """What the disable workflow records, then an admin's enable once the receiver works."""
    world.app.disable_webhook_endpoint(
        scope=ALL_ORGANIZATIONS, endpoint_id=endpoint, reason="failing", automatic=True
    )
    world.app.enable_webhook_endpoint(scope=ALL_ORGANIZATIONS, endpoint_id=endpoint)
    world.project()


def test_enabling_an_endpoint_again_forgets_its_old_failures(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    """Disabled for failing too long, then enabled again once the receiver is fixed: it is
    delivered to at once and not disabled a second time for the same outage."""
    _, endpoint = world.subscribed(receiver, 2)
    receiver.default = Answer(503)
    daemon = RunningDaemon(world, schedule=(0.0, 0.3, 0.3, 0.3), disable_after=0.5)
    running.append(daemon)
    wait_for(lambda: daemon.disabler.requests != [], what="a disable")
    expected = world.expected(endpoint)  # fanned out before the disable: still owed
    assert expected
    receiver.default = Answer(200)
    _disable_and_enable(world, endpoint)
    assert receiver.wait_delivered(len(expected)) == expected
    wait_for(lambda: _streams(world) == [], what="the stream healthy")
    assert len(daemon.disabler.requests) == 1


def test_enabling_an_endpoint_again_resumes_its_parked_streams(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    """A parked stream resumes when an admin enables its endpoint again: no operator's
    ``retry`` needed (an organization's admins cannot run one)."""
    _, endpoint = world.subscribed(receiver, 2)
    receiver.default = Answer(500)
    running.append(RunningDaemon(world, schedule=(0.0, 0.2, 0.2)))
    wait_for(lambda: [s["state"] for s in _streams(world)] == ["parked"], what="parked")
    expected = world.expected(endpoint)  # fanned out before the disable: still owed
    assert expected
    receiver.default = Answer(200)
    _disable_and_enable(world, endpoint)
    assert receiver.wait_delivered(len(expected)) == expected
    wait_for(lambda: _streams(world) == [], what="the stream healthy")


def test_an_owner_with_hanging_endpoints_leaves_slots_to_the_others(
    world: World, running: list[RunningDaemon], receiver: Receiver
) -> None:
    """Organization A's three endpoints hang (each request until the daemon's 2 s
    timeout); B's one endpoint answers at once. With three slots and at most one in
    flight per owner, A holds one slot and B's events go through the others while A's
    request hangs: they do not wait for A's timeouts."""
    alpha, beta = world.organization("alpha"), world.organization("beta")
    hanging = Receiver([])
    try:
        hanging.default = Answer(200, hang=30.0)  # past the timeout: released at the end
        for n in range(3):
            world.endpoint(hanging.url, f"slow-{n}", owner_id=alpha)
        healthy, secret = world.endpoint(receiver.url, "healthy", owner_id=beta)
        receiver.secrets = [secret]
        world.activity(alpha, 2)  # A's events first: the longest waiting
        world.activity(beta, 3)
        world.project()
        expected = world.expected(healthy, beta)
        assert len(expected) >= 3
        running.append(RunningDaemon(world, concurrency=3, max_in_flight_per_owner=1))
        assert receiver.wait_delivered(len(expected), timeout=10) == expected
        first = hanging.wait_count(1)[0]
        # Every one of B's arrived before A's first request timed out, and meanwhile A
        # had that one request in flight, not three.
        assert receiver.delivered()[-1].at < first.at + 2.0
        assert len(hanging.snapshot()) == 1
        # A goes on one request at a time: its next only after the first timed out.
        second = hanging.wait_count(2)[1]
        assert second.at - first.at >= 1.9
    finally:
        hanging.close()
