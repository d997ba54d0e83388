"""The API over PostgreSQL when the database drops its connections: never a 500.

An operator (or a failover) ends the API's read-model backends with
``pg_terminate_backend``: the next requests are answered, each read that met a dead
connection having been tried again on a new one. While the database refuses new
connections too, reads answer 503 problem+json with ``Retry-After``; once it is back,
200 again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from temporalio.testing import WorkflowEnvironment
from tests.api.fault_support import end_read_connections, one_organization_api
from tests.api.v1_support import assert_problem
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET

from a4c_projector.eventlog.store import EventStore

# More requests than the API has read threads: every thread's connection is met.
REQUESTS = 12


@dataclass
class Served:
    client: httpx.AsyncClient
    store: EventStore
    role: str
    admin: psycopg.Connection[tuple[object, ...]]
    slug: str
    headers: dict[str, str]

    def end_read_connections(self) -> int:
        return end_read_connections(self.admin, self.store)

    def refuse_logins(self, refused: bool) -> None:
        self.admin.execute(f'ALTER ROLE "{self.role}" {"NOLOGIN" if refused else "LOGIN"}')

    async def read(self) -> list[httpx.Response]:
        """``REQUESTS`` reads, one after another (each a fresh look at the database)."""
        found = []
        for n in range(REQUESTS):
            path = f"/v1/organizations/{self.slug}" + ("/invitations" if n % 2 else "")
            found.append(await self.client.get(path, headers=self.headers))
        return found


@pytest.fixture
async def served(
    pg_schema: str, pg_server: str, own_role: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Served]:
    env = postgres_env(pg_schema, POSTGRES_USER=own_role, A4C_TOKEN_SECRET=TOKEN_SECRET)
    with (
        one_organization_api(env, temporal_env, f"pg-{uuid.uuid4().hex[:8]}") as api,
        psycopg.connect(pg_server, autocommit=True) as admin,
    ):
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30.0) as client:
            yield Served(client, api.store, own_role, admin, api.slug, api.headers)


async def test_reads_after_the_database_ended_their_connections_are_answered(
    served: Served,
) -> None:
    assert [r.status_code for r in await served.read()] == [200] * REQUESTS
    assert served.end_read_connections() >= 1
    after = await served.read()
    assert [r.status_code for r in after] == [200] * REQUESTS, after[0].text
    assert after[0].json()["slug"] == served.slug


async def test_a_database_that_stays_down_is_a_503_with_retry_after_until_it_is_back(
    served: Served,
) -> None:
    assert [r.status_code for r in await served.read()] == [200] * REQUESTS
    served.refuse_logins(True)
    assert served.end_read_connections() >= 1
    for answer in await served.read():
        body = assert_problem(answer, 503)
        assert answer.headers["Retry-After"] == "1"
        assert body["type"] == "urn:a4c:problem:unavailable"
        assert served.role not in answer.text, "the database's error stays in the log"
    assert (await served.client.get("/ready")).status_code == 503
    served.refuse_logins(False)
    assert [r.status_code for r in await served.read()] == [200] * REQUESTS
