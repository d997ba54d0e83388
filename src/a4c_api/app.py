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

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from a4c_api import docs, pages, problems, v1
from a4c_api.bodylimit import BodyLimit
from a4c_api.gateway import Gateway
from a4c_api.observability import ApiMetrics, metrics_middleware, redact_access_log
from a4c_api.sessions import SealedSessionMiddleware
from a4c_api.settings import ApiSettings
from a4c_projector.queries import Location
from a4c_service.cli import DISTRIBUTION

# The session cookie: encrypted (a4c_api.sessions), HTTP-only, SameSite=Lax, so a form
# posted from another site carries no session; Secure whenever the service is reached over
# https (always in production: the settings require an https API_PUBLIC_URL there).
SESSION_COOKIE = "a4c_session"
SESSION_MAX_AGE = 60 * 60  # seconds: long enough to sign in and accept


def create_app(settings: ApiSettings, location: Location) -> FastAPI:
    gateway = Gateway(
        location,
        temporal=settings.temporal_connection(),
        task_queue=settings.temporal_task_queue,
        consistency_timeout=settings.api_consistency_timeout,
        max_waits_per_principal=settings.api_max_waits_per_principal,
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
        docs_url=None,  # a4c_api.docs serves /docs without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.metrics = metrics
    session_secret = (
        settings.api_session_secret.get_secret_value().encode()
        if settings.api_session_secret is not None
        else secrets.token_bytes(32)  # development: sessions end with the process
    )
    app.add_middleware(
        SealedSessionMiddleware,
        secret=session_secret,
        mode=settings.api_mode,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.api_public_url.startswith("https://"),
    )
    app.middleware("http")(metrics_middleware(metrics))
    # Added last, so outermost: an oversized body is refused before anything reads it.
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.api_max_body_bytes,
        timeout_seconds=settings.api_body_timeout_seconds,
    )
    problems.install(app)
    _add_probes(app, gateway)
    app.include_router(pages.router)
    app.include_router(v1.router)
    app.openapi = docs.contract(app, settings.dns_zone)  # type: ignore[method-assign]
    docs.install(app)
    return app


def _add_probes(app: FastAPI, gateway: Gateway) -> None:
    # /metrics is not among them: `a4c-api run` serves it on API_METRICS_PORT.
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
