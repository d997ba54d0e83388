"""Which answers of the workflow service a write meets are "try again" (503 with
Retry-After) rather than a 500: the service unavailable, overloaded or too slow, and the
connection lost mid-call (the SDK's ``transport error``, status UNKNOWN: seen in the
soak when the dev server was killed while an invite was being started). Any other
answer stays what it is."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from temporalio.service import RPCError, RPCStatusCode

from a4c_api.problems import ProblemError
from a4c_api.v1.common import temporal_errors


async def answer_of(exc: BaseException) -> BaseException:
    """What the dependency lets out when the route under it raises ``exc``."""
    try:
        async with asynccontextmanager(temporal_errors)():
            raise exc
    except BaseException as raised:
        return raised
    raise AssertionError("the dependency swallowed the error")


@pytest.mark.parametrize(
    "exc",
    [
        RPCError("transport error", RPCStatusCode.UNKNOWN, b""),
        RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        RPCError("busy", RPCStatusCode.RESOURCE_EXHAUSTED, b""),
    ],
)
async def test_a_lost_or_busy_workflow_service_is_a_503(exc: RPCError) -> None:
    raised = await answer_of(exc)
    assert isinstance(raised, ProblemError) and raised.problem.status == 503


@pytest.mark.parametrize(
    "exc",
    [
        RPCError("no such namespace", RPCStatusCode.NOT_FOUND, b""),
        RPCError("something the server did not expect", RPCStatusCode.UNKNOWN, b""),
        RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b""),
    ],
)
async def test_any_other_answer_is_left_as_it_is(exc: RPCError) -> None:
    assert await answer_of(exc) is exc
