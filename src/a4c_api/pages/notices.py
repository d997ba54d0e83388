"""What every page route shares: the notice pages (a state, its status, its wording in
templates/notice.html), the pages' logger, and :class:`PageRoute`, whose dependencies
may answer for the route by raising :class:`Answered`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from a4c_api.pages import identity
from a4c_api.pages.paths import PATHS
from a4c_api.pages.rendering import page
from a4c_api.pages.throttle import Throttled
from a4c_api.problems import RETRY_AFTER_SECONDS

# One logger for all the pages, under the package's name (what log set-ups filter on).
log = logging.getLogger("a4c_api.pages")

# What each notice answers with; its wording is in templates/notice.html, by state.
NOTICE_STATUS: dict[str, int] = {
    "unknown": 404,  # unknown and malformed tokens alike
    "inactive": 410,
    "accepted": 410,
    "revoked": 410,
    "expired": 410,
    "superseded": 410,
    "wrong_person": 403,
    "csrf": 403,
    "rate_limited": 429,
    "sign_in_failed": 400,
    "not_found": 404,
    "unavailable": 503,
}


def notice(
    request: Request, state: str, headers: dict[str, str] | None = None, **context: Any
) -> Response:
    """The notice page of ``state`` (a key of :data:`NOTICE_STATUS`), with its status."""
    return page(
        request,
        "notice.html",
        NOTICE_STATUS[state],
        headers=headers,
        state=state,
        paths=PATHS,
        signed_in=identity.current(request),
        **context,
    )


def unavailable(request: Request) -> Response:
    """503: something the page needs (the read models, Temporal, the provider) failed."""
    return notice(request, "unavailable", headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def throttled(request: Request, refusal: Throttled) -> Response:
    """429, saying when to try again."""
    return notice(
        request,
        "rate_limited",
        headers={"Retry-After": str(refusal.retry_after)},
        retry_after=refusal.retry_after,
    )


class Answered(Exception):
    """Raised by a page route's dependency: ``response`` answers the request, the route
    itself does not run."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"answered {response.status_code} before the route")
        self.response = response


class PageRoute(APIRoute):
    """A page route whose dependencies may answer for it (by raising :class:`Answered`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def answered(request: Request) -> Response:
            try:
                return await handle(request)
            except Answered as answer:
                return answer.response

        return answered


def page_router() -> APIRouter:
    """A router for page routes: out of the OpenAPI document, dependencies may answer."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)
