"""How the pages answer: templates (autoescaped), the same security headers on every
answer (no caching, no referrer, no script, no framing: :data:`SECURITY_HEADERS`), and
the session's CSRF token, compared in constant time and renewed when who is signed in
changes. Why each: docs/design/pages.md."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

CSRF_SESSION_KEY = "csrf"
CSRF_FIELD = "csrf"
SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


@functools.cache
def templates() -> Environment:
    """The pages' templates (package data), autoescaped; loaded on first use."""
    return Environment(
        loader=PackageLoader("a4c_api.pages", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def page(
    request: Request,
    template: str,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """``template`` rendered with ``context`` (and the CSRF token), securely headed."""
    body = templates().get_template(template).render(csrf=csrf_token(request), **context)
    response = HTMLResponse(body, status_code=status_code, headers=dict(headers or {}))
    secured(response)
    return response


def redirect(location: str) -> Response:
    """See Other: after a POST, or to take the token out of the address bar."""
    return secured(RedirectResponse(location, status_code=303))


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made on first use."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def csrf_valid(request: Request, presented: object) -> bool:
    expected = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not expected or not isinstance(presented, str):
        return False
    return secrets.compare_digest(presented.encode(), expected.encode())


def renew_csrf(request: Request) -> None:
    """A new token when who is signed in changes (a token seen before sign-in is spent)."""
    request.session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
