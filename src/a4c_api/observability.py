"""Request metrics and access logs that never carry a token.

Every label comes from a fixed set, never from what a client sent, so no request can
add a series: the route is its template (``/v1/organizations/{slug}``) or
``(unmatched)``, never the requested path or its query; the method is one of
:data:`KNOWN_METHODS` or ``other`` (h11 takes any token as a method). ``/metrics`` is
not on the front door: :func:`serve_metrics` serves it on a listener of its own (the
daemons' probe server). The access log (uvicorn's ``uvicorn.access`` logger) is
rewritten before any handler sees it: the query string is dropped, since the accept
link carries the invitation token there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from fastapi.routing import RouteContext, iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from a4c_service.metrics import register_process_collectors
from a4c_service.probes import ProbeServer, start_probe_server

ACCESS_LOGGER = "uvicorn.access"
METRICS_PATH = "/metrics"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNKNOWN_METHOD = "other"
UNMATCHED = "(unmatched)"


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


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else UNKNOWN_METHOD


def route_template(scope: Scope, routes: Sequence[RouteContext]) -> str:
    """The template of the route the path belongs to (a 405 still names it: the path is
    the route's, the method is not); ``(unmatched)`` for a 404 (never the raw path)."""
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route.path_format or UNMATCHED
        if match == Match.PARTIAL and partial is None:
            partial = route.path_format
    return partial or UNMATCHED


def metrics_middleware(
    metrics: ApiMetrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    # Every route of the app, an included router's with its prefix (the app's ``routes``
    # hold an included router as one entry): found on the first request, when the app
    # has all its routes.
    routes: list[RouteContext] = []

    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not routes:
            routes.extend(iter_route_contexts(request.app.router.routes))
        route = route_template(request.scope, routes)  # before routing changes the scope
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.requests.labels(route, method_label(request.method), str(status)).inc()
            metrics.request_seconds.labels(route).observe(time.perf_counter() - started)

    return measure


def serve_metrics(metrics: ApiMetrics, host: str, port: int) -> ProbeServer:
    """Serve ``metrics`` as Prometheus text on ``/metrics`` at ``host``:``port``
    (``0``: any free port) from a daemon thread; ``shutdown()`` then ``server_close()``
    stop it. Raises ``OSError`` when the port cannot be bound."""
    routes = {METRICS_PATH: lambda: (200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))}
    return start_probe_server(
        routes,
        host,
        port,
        name="a4c-api-metrics",
        variables=("API_METRICS_HOST", "API_METRICS_PORT"),
    )


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
