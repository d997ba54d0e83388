"""The no-skip guarantee end to end: writers on PostgreSQL in lock-free insert mode
(``POSTGRES_ENABLE_DB_FUNCTIONS=y``), some through ``OnboardingApplication`` in several
threads, some holding their drawn ids uncommitted a while so later ids commit first; the
real projector runs, and a consumer follows ``GET /v1/events``'s cursor all along. It
ends with every event exactly once, in the store's order (compared with the store).
With the naive "take everything visible" rule in place of the gap guard, it misses events.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from tests.api.events_support import Event, ids, public_ids, query
from tests.projector.conftest import seed
from tests.servers.http import serve_asgi
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, free_port

from a4c_api.app import create_app
from a4c_api.cli import new_key
from a4c_api.settings import load_settings
from a4c_domain import OnboardingApplication, Organization
from a4c_projector.dialects.connection import connect
from a4c_projector.engine.runner import Runner, RunnerOptions
from a4c_projector.eventlog.store import EventStore, open_event_store
from a4c_projector.readmodel.tables import ensure_schema

WRITERS = 4  # threads issuing commands through OnboardingApplication
ORGS_PER_WRITER = 12  # five events each, four of them public
SLOW_WRITERS = 3  # threads holding their ids uncommitted a while
SLOW_WRITES = 6


def _slow_insert(store: EventStore, slug: str, pause: float) -> None:
    """An organization's registered and activated events, committed ``pause`` seconds
    after their ids were drawn: later ids commit before them."""
    org = Organization(
        name=slug, slug=slug, org_type="partner", parent_id=None, tags=[], domain=None
    )
    org.activate()
    rows = [
        (s.originator_id, s.originator_version, s.topic, s.state)
        for s in (store.mapper.to_stored_event(e) for e in org.collect_events())
    ]
    location = store.location
    with psycopg.connect(location.conninfo) as conn, conn.transaction():
        conn.cursor().executemany(
            f"INSERT INTO {location.qualified_events_table} "
            "(originator_id, originator_version, topic, state) VALUES (%s, %s, %s, %s)",
            rows,
        )
        time.sleep(pause)


@pytest.fixture
def lock_free_store(pg_schema: str) -> Iterator[tuple[dict[str, str], EventStore]]:
    env = postgres_env(pg_schema, A4C_TOKEN_SECRET=TOKEN_SECRET, POSTGRES_ENABLE_DB_FUNCTIONS="y")
    OnboardingApplication(env).close()  # the event store's tables, before the writers
    store = open_event_store(env)
    with connect(store.location) as db:
        ensure_schema(db)
    yield env, store


async def test_a_consumer_following_the_cursor_under_concurrent_writers_misses_nothing(
    lock_free_store: tuple[dict[str, str], EventStore],
) -> None:
    env, store = lock_free_store
    runner = Runner(store, RunnerOptions(batch_size=25, poll_interval=0.02, gap_grace=0.05))
    projector = threading.Thread(target=runner.run, name="events-test-projector")
    projector.start()
    key, grant = new_key("events-consumer", None)
    settings = load_settings(
        {
            "API_MODE": "development",
            "API_KEYS": grant.entry(),
            "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # reads need no workflows
        }
    )
    apps = [OnboardingApplication(env) for _ in range(WRITERS)]
    rng = random.Random(19)
    pauses = [[rng.random() * 0.2 for _ in range(SLOW_WRITES)] for _ in range(SLOW_WRITERS)]
    done = threading.Event()
    received: list[Event] = []
    during: list[int] = []  # how many the consumer had when the writers finished

    def write_fast(n: int) -> None:
        seed(apps[n], ORGS_PER_WRITER, prefix=f"fast{n}")

    def write_slow(n: int) -> None:
        for i, pause in enumerate(pauses[n]):
            _slow_insert(store, f"slow{n}-{i}", pause)

    async def consume(client: httpx.AsyncClient) -> None:
        cursor = None
        headers = {"Authorization": f"Bearer {key}"}
        caught_up_after_writes = False
        while True:
            finished = done.is_set() and runner.state.position >= head(store)
            response = await client.get(query(after=cursor, limit=17), headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            received.extend(page["data"])
            cursor = page["next"]
            if page["has_more"]:
                continue
            if caught_up_after_writes:
                return
            caught_up_after_writes = finished
            await asyncio.sleep(0.01)

    try:
        with serve_asgi(create_app(settings, store.location)) as served:
            async with httpx.AsyncClient(base_url=served.base_url, timeout=30) as client:
                consumer = asyncio.create_task(consume(client))
                writers = [asyncio.to_thread(write_fast, n) for n in range(WRITERS)]
                writers += [asyncio.to_thread(write_slow, n) for n in range(SLOW_WRITERS)]
                await asyncio.gather(*writers)
                during.append(len(received))
                done.set()
                await asyncio.wait_for(consumer, 60)
    finally:
        runner.stop()
        projector.join(10)
        for app in apps:
            app.close()
    reader = OnboardingApplication(env)
    try:
        expected = public_ids(reader)
    finally:
        reader.close()
    assert len(expected) == WRITERS * ORGS_PER_WRITER * 4 + SLOW_WRITERS * SLOW_WRITES * 2
    got = ids(received)
    assert len(set(got)) == len(got), "an event came twice"
    assert got == [i for _, i in expected], "an event was missed or came out of order"
    assert during[0] > 0, "the consumer followed while the writers ran, not only after"


def head(store: EventStore) -> int:
    with connect(store.location) as db:
        found = db.execute(
            f"SELECT max(notification_id) FROM {store.location.qualified_events_table}"
        )
    return int(found[0][0] or 0)
