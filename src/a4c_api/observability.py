"""Request metrics and access logs that never carry a token.

Metrics are labelled by the route's template (``/v1/organizations/{slug}``), never the
requested path or its query. The access log (uvicorn's ``uvicorn.access`` logger) is
rewritten before any handler sees it: the query string is dropped, since the accept
link carries the invitation token there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from a4c_projector.metrics import register_process_collectors

ACCESS_LOGGER = "uvicorn.access"


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        register_process_collectors(self.registry)
        self.requests = Counter(
            "a4c_api_requests",
            "HTTP requests answered, by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "a4c_api_request_seconds",
            "Time to answer HTTP requests, by route template.",
            ["route"],
            registry=self.registry,
        )
        self.accepts = Counter(
            "a4c_api_invitation_accepts",
            "Accept attempts on the invitee page, by outcome.",
            ["outcome"],
            registry=self.registry,
        )


def route_template(request: Request) -> str:
    """The matched route's path template; ``(unmatched)`` for a 404 (never the raw path)."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "(unmatched)"))
    return "(unmatched)"


def metrics_middleware(
    metrics: ApiMetrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = route_template(request)
            metrics.requests.labels(route, request.method, str(status)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)

    return measure


class DropQueryString(logging.Filter):
    """Rewrites uvicorn's access-log record so its path has no query string.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with the full path (query included) as the
    third argument; only that argument is changed, so any formatter still works.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], *args[3:])
        return True


def redact_access_log() -> None:
    """Install :class:`DropQueryString` on the access logger (idempotent)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())
