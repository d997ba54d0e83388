"""The pages' stylesheet: public and cacheable, the one answer of the pages that carries
nothing personal."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.responses import Response

from a4c_api.pages.notices import page_router
from a4c_api.pages.paths import STYLESHEET_PATH

router = page_router()


@cache
def _stylesheet() -> bytes:
    return resources.files("a4c_api.pages").joinpath("static", "a4c.css").read_bytes()


@router.get(STYLESHEET_PATH)
async def stylesheet() -> Response:
    return Response(
        _stylesheet(),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
