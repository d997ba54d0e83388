"""The API's description: the OpenAPI document as the contract, and ``/docs`` to read it.

The document says what the service answers: problems as ``application/problem+json``
(:func:`a4c_api.problems.document`), an onboarding's ``domain`` below this deployment's
DNS zone (:func:`a4c_api.v1.models.in_zone`). ``/docs`` is Swagger UI from a kept
package's files (fastapi-offline ships them), served here, so it works without internet
and under a content security policy of its own: scripts, styles and images from this
origin only, plus the page's one inline script by its hash.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from a4c_api import problems
from a4c_api.pages.rendering import SECURITY_HEADERS
from a4c_api.v1.models import in_zone

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
ASSETS = Path(fastapi_offline.__file__).parent / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def contract(app: FastAPI, zone: str) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` for ``app``: FastAPI's document, told the truth (made once)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = in_zone(problems.document(generate()), zone)
        return app.openapi_schema

    return openapi


def _policy(page: str) -> str:
    digests = (hashlib.sha256(script.encode()).digest() for script in _INLINE_SCRIPT.findall(page))
    hashes = " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'none'"
    )


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets (the app is made with ``docs_url=None``)."""
    assert app.openapi_url is not None
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="docs-assets")
    page = bytes(
        get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=None,
        ).body
    ).decode()
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": _policy(page)}

    @app.get(DOCS_PATH, include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)
