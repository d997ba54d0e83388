"""The API's reads and the accept page while PostgreSQL fails: backends ended with
``pg_terminate_backend`` (requests in flight), the database cut off (connections reset,
new ones refused) and a database that stops answering (connections open, nothing comes
back). Each answer is the read's, or a 503 with ``Retry-After`` within the bound; once
the fault is gone, the same process answers again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment
from tests.api.conftest import unique_slug
from tests.api.fault_support import (
    Proxy,
    assert_no_other_5xx,
    assert_unavailable,
    end_read_connections,
    one_organization_api,
    timed,
)
from tests.servers.postgres import PG_HOST, PG_PORT, postgres_env
from tests.support import TOKEN_SECRET, wait_for_async

from a4c_projector.eventlog.store import EventStore
from a4c_worker.config import ACCEPT_PATH


@dataclass
class Served:
    http: httpx.AsyncClient
    store: EventStore
    admin: psycopg.Connection[tuple[object, ...]]
    proxy: Proxy
    schema: str
    slug: str
    headers: dict[str, str]

    def end_read_connections(self) -> int:
        return end_read_connections(self.admin, self.store)

    def reads(self) -> list[Callable[[], Awaitable[httpx.Response]]]:
        """/v1 reads, and the accept page (the link's token looked up in the read models)."""
        base = f"/v1/organizations/{self.slug}"
        return [
            lambda: self.http.get(base, headers=self.headers),
            lambda: self.http.get(f"{base}/invitations", headers=self.headers),
            lambda: self.http.get("/v1/organizations", headers=self.headers),
            # A well-formed token (a malformed one is refused unread).
            lambda: self.http.get(f"{ACCEPT_PATH}?token={secrets.token_urlsafe(32)}"),
        ]

    async def read_all(self, rounds: int = 3) -> list[httpx.Response]:
        return [await timed(read()) for _ in range(rounds) for read in self.reads()]


@pytest.fixture
async def served(
    pg_schema: str, pg_server: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Served]:
    proxy = Proxy(PG_HOST, int(PG_PORT))
    env = postgres_env(pg_schema, POSTGRES_PORT=str(proxy.port), A4C_TOKEN_SECRET=TOKEN_SECRET)
    try:
        with (
            one_organization_api(env, temporal_env, unique_slug("pg")) as api,
            psycopg.connect(pg_server, autocommit=True) as admin,
        ):
            async with httpx.AsyncClient(
                base_url=api.base_url, timeout=60, follow_redirects=True
            ) as http:
                yield Served(http, api.store, admin, proxy, pg_schema, api.slug, api.headers)
    finally:
        proxy.close()


def statuses(responses: list[httpx.Response]) -> set[int]:
    """200 for the reads, 404 for the accept page (an unknown link: looked up, not found)."""
    return {r.status_code for r in responses}


ANSWERED = {200, 404}


async def test_backends_ended_while_reads_and_accept_pages_are_in_flight(served: Served) -> None:
    assert statuses(await served.read_all()) == ANSWERED

    async def end_meanwhile() -> None:
        await asyncio.sleep(0.02)
        await asyncio.to_thread(served.end_read_connections)

    many = [timed(read()) for _ in range(6) for read in served.reads()]
    answers, _ = await asyncio.gather(asyncio.gather(*many), end_meanwhile())
    assert_no_other_5xx(list(answers))
    assert served.end_read_connections() >= 1
    assert statuses(await served.read_all()) == ANSWERED


async def test_a_database_cut_off_is_503s_with_retry_after_and_recovers_when_back(
    served: Served,
) -> None:
    assert statuses(await served.read_all()) == ANSWERED
    served.proxy.cut()
    for response in await served.read_all():
        assert_unavailable(response, page=not response.request.url.path.startswith("/v1"))
    assert (await served.http.get("/ready")).status_code == 503
    served.proxy.restore()
    assert statuses(await served.read_all()) == ANSWERED
    assert (await served.http.get("/ready")).status_code == 200


async def test_a_read_in_flight_when_the_database_is_cut_off_is_a_503(served: Served) -> None:
    """The read waits on a lock when the connection goes: tried again on a new one,
    which is refused: 503, not 500."""
    assert statuses(await served.read_all(1)) == ANSWERED
    served.admin.execute("BEGIN")
    served.admin.execute(f'LOCK TABLE "{served.schema}".organizations IN ACCESS EXCLUSIVE MODE')
    try:
        pending = [asyncio.ensure_future(timed(read())) for read in served.reads()[:3]]
        await wait_for_async(
            lambda: asyncio.to_thread(waiting_on_lock, served), 10, "the reads to wait"
        )
        served.proxy.cut()
        for response in await asyncio.gather(*pending):
            assert_unavailable(response)
    finally:
        served.admin.execute("ROLLBACK")
    served.proxy.restore()
    assert statuses(await served.read_all(1)) == ANSWERED


def waiting_on_lock(served: Served) -> bool:
    with psycopg.connect(
        f"host={PG_HOST} port={PG_PORT} user=postgres dbname=test", autocommit=True
    ) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND wait_event_type = 'Lock'",
            (served.store.location.application_name("read"),),
        ).fetchone()
    return row is not None and int(str(row[0])) >= 1


async def test_a_database_that_stops_answering_is_503s_within_the_bound(served: Served) -> None:
    """Connections stay open but nothing comes back: each read is given up on in time."""
    assert statuses(await served.read_all(1)) == ANSWERED
    served.proxy.stall()
    try:
        stalled = [timed(read()) for _ in range(3) for read in served.reads()]
        for response in await asyncio.gather(*stalled):
            assert_unavailable(response, page=not response.request.url.path.startswith("/v1"))
    finally:
        served.proxy.restore()
    await wait_for_async(lambda: all_answered(served), 15, "reads answered again after the stall")


async def all_answered(served: Served) -> bool:
    return statuses(await served.read_all(1)) == ANSWERED
