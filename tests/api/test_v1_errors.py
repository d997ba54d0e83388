"""Errors of the /v1 routers that no domain refusal covers: Temporal not answering."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from temporalio.service import RPCError, RPCStatusCode
from tests.api.v1_support import assert_problem
from tests.servers.http import serve_asgi

from a4c_api import problems
from a4c_api.v1.common import temporal_errors


@pytest.mark.parametrize(
    ("raised", "status"),
    [
        (RPCError("down", RPCStatusCode.UNAVAILABLE, b""), 503),
        (RPCError("slow", RPCStatusCode.DEADLINE_EXCEEDED, b""), 503),
        (RPCError("denied", RPCStatusCode.PERMISSION_DENIED, b""), 500),
        (ValueError("a defect"), 500),
    ],
)
async def test_temporal_not_answering_mid_request_is_503(raised: Exception, status: int) -> None:
    """The /v1 routers' dependency: transient Temporal errors are 503 with Retry-After;
    anything else stays a (logged) 500 without details."""
    app = FastAPI()
    problems.install(app)
    router = APIRouter(dependencies=[Depends(temporal_errors)])

    @router.get("/fails")
    async def fails() -> None:
        raise raised

    app.include_router(router)
    with serve_asgi(app) as served:
        async with httpx.AsyncClient(base_url=served.base_url) as client:
            response = await client.get("/fails")
    body = assert_problem(response, status)
    assert "detail" not in body or "defect" not in body["detail"]
    if status == 503:
        assert response.headers["Retry-After"] == "1"
