"""The ASGI application: one factory, everything it needs passed in.

``create_app(settings, location)`` builds the FastAPI app the console script serves
with uvicorn and the tests serve on a free port. It connects to nothing until it
starts (its lifespan), and then to Temporal in the background, so it comes up, and
says it is not ready, while Temporal is down.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.sessions import SessionMiddleware

from a4c_api import pages, problems, v1
from a4c_api.gateway import Gateway
from a4c_api.observability import ApiMetrics, metrics_middleware, redact_access_log
from a4c_api.settings import ApiSettings
from a4c_projector.queries import Location
from a4c_service.cli import DISTRIBUTION

# The session cookie: signed (itsdangerous), HTTP-only, SameSite=Lax, so a form posted
# from another site carries no session; Secure whenever the service is reached over https.
SESSION_COOKIE = "a4c_session"
SESSION_MAX_AGE = 60 * 60  # seconds: long enough to sign in and accept


def create_app(settings: ApiSettings, location: Location) -> FastAPI:
    gateway = Gateway(
        location,
        temporal=settings.temporal_connection(),
        task_queue=settings.temporal_task_queue,
        consistency_timeout=settings.api_consistency_timeout,
    )
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()  # whoever serves the app: its access log never holds a token
        gateway.start()
        try:
            yield
        finally:
            gateway.close()

    app = FastAPI(
        title="a4c",
        version=version(DISTRIBUTION),
        summary="Organization onboarding: organizations, invitations and members.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.metrics = metrics
    session_secret = (
        settings.api_session_secret.get_secret_value()
        if settings.api_session_secret is not None
        else secrets.token_urlsafe(32)  # development: sessions end with the process
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.api_public_url.startswith("https://"),
    )
    app.middleware("http")(metrics_middleware(metrics))
    problems.install(app)
    _add_probes(app, gateway, metrics)
    app.include_router(pages.router)
    app.include_router(v1.router)
    return app


def _add_probes(app: FastAPI, gateway: Gateway, metrics: ApiMetrics) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, Any]:
        """The process answers (its event loop runs)."""
        return {"ok": True}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        """Temporal is connected and the read models can be read."""
        ok = await gateway.ready()
        reasons = [] if ok else ["Temporal not connected or read models not readable"]
        return JSONResponse({"ok": ok, "reasons": reasons}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> PlainTextResponse:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
