"""Errors as ``application/problem+json`` (RFC 9457), mapped from the ``A4CError`` tree.

One table (:data:`STATUS`) says which HTTP status each branch of the tree answers with;
a refusal that comes back from a workflow (an ``ApplicationError`` whose ``type`` is the
domain error's class name) is mapped by the same table. The body names what is wrong in
the caller's terms: ``errors`` lists ``{"field", "message"}`` for bad input, ``retry_after``
says how long to wait. Nothing else: never the input (it may hold a token), never another
tenant's values (a ``Conflict`` names the differing fields, not their values), never a
stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount

from a4c_domain import errors
from a4c_domain.commands import worded
from a4c_sso.errors import ProviderRefused

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)
# What a 503 asks the client to wait before trying again (seconds): every answer during
# a fault (Temporal, the read models' database, a write that lost a race) says this.
RETRY_AFTER_SECONDS = 1

# The most specific class wins (looked up along the exception's MRO).
STATUS: dict[type[errors.A4CError], int] = {
    errors.A4CError: 500,
    errors.InvalidCommand: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.RuleViolation: 409,
    errors.InvalidToken: 403,
    errors.ConcurrencyError: 503,
    errors.StoreUnavailable: 503,
    errors.TooManyAttempts: 429,
    # An organization's identity provider a4c cannot use: the type names why.
    ProviderRefused: 422,
}


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; ``type`` is ``urn:a4c:problem:<kind>``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
    fields: list[str] | None = Field(default=None, description="what differs (a conflict)")
    retry_after: float | None = None


class ProblemError(Exception):
    """Raise from a route to answer with ``problem`` (and ``headers``)."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail or problem.title)
        self.problem = problem
        self.headers = dict(headers or {})


def problem(status: int, detail: str | None = None, *, kind: str | None = None) -> ProblemError:
    """A plain HTTP refusal: ``raise problem(404, "organization 'acme' not found")``."""
    title = HTTPStatus(status).phrase
    kind_uri = f"urn:a4c:problem:{kind}" if kind else "about:blank"
    return ProblemError(Problem(type=kind_uri, title=title, status=status, detail=detail))


def unavailable(detail: str) -> ProblemError:
    """503 ``urn:a4c:problem:unavailable`` with ``Retry-After``: a part the request needs
    did not answer in time. The only 5xx a fault may give (``detail`` names the part,
    never its error text)."""
    found = problem(503, detail, kind="unavailable")
    found.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return found


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def status_of(error_type: type[errors.A4CError]) -> int:
    for cls in error_type.__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _domain_errors() -> dict[str, type[errors.A4CError]]:
    found: dict[str, type[errors.A4CError]] = {}
    pending: list[type[errors.A4CError]] = [errors.A4CError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


ERROR_TYPES = _domain_errors()


def from_domain(exc: errors.A4CError) -> ProblemError:
    status = status_of(type(exc))
    body = Problem(
        type=f"urn:a4c:problem:{_kebab(type(exc).__name__)}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=str(exc) if status < 500 else None,
    )
    headers: dict[str, str] = {}
    if isinstance(exc, errors.InvalidCommand):
        body.errors = [FieldError.model_validate(e) for e in exc.errors]
    if isinstance(exc, errors.Conflict):
        body.fields = sorted(exc.differences) or None
    if isinstance(exc, errors.ConcurrencyError | errors.StoreUnavailable):
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    found = ProblemError(body, headers)
    if isinstance(exc, errors.TooManyAttempts):
        _wait_for(found, exc.retry_after)
    return found


def from_workflow_refusal(
    error_type: str | None, message: str, details: Sequence[Any] = ()
) -> ProblemError:
    """A refusal a workflow or activity reported as ``ApplicationError(type=...)``.

    Its message is the domain's (tokens never reach workflow errors); an unknown type is
    a server-side failure and its text is kept out of the answer. A limit
    (``TooManyAttempts`` and its kind) carries the seconds to wait as its first detail.
    """
    cls = ERROR_TYPES.get(error_type or "")
    if cls is None:
        log.error("workflow failed with %s: %s", error_type, message)
        return problem(502, "the workflow failed; see the service's logs", kind="workflow-failed")
    status = status_of(cls)
    found = ProblemError(
        Problem(
            type=f"urn:a4c:problem:{_kebab(cls.__name__)}",
            title=HTTPStatus(status).phrase,
            status=status,
            detail=message if status < 500 else None,
        )
    )
    if issubclass(cls, errors.TooManyAttempts):
        wait = details[0] if details and isinstance(details[0], int | float) else 60
        _wait_for(found, float(wait))
    return found


def _wait_for(found: ProblemError, seconds: float) -> None:
    """Say how long to wait: ``retry_after`` and ``Retry-After``, whole seconds, at least 1."""
    found.problem.retry_after = max(1.0, round(seconds))
    found.headers["Retry-After"] = str(int(found.problem.retry_after))


def request_errors(raw: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """FastAPI's validation errors in the domain's wording; a body field is named as is,
    a query or path parameter as ``query.status`` / ``path.slug``."""
    relocated = []
    for err in raw:
        loc = tuple(err.get("loc", ()))
        if loc[:1] == ("body",):
            loc = loc[1:]
        relocated.append({**err, "loc": loc})
    return [FieldError.model_validate(e) for e in worded(relocated)]


# What an Allow header may list (the methods the app's routes are declared with).
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app takes at the request's path. (Starlette's 405
    names only the first matching route's, though another route takes POST there.)"""
    return [
        method
        for method in METHODS
        if any(
            not isinstance(route, Mount)  # a mount's app answers its own 405
            and route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def document(openapi: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as the service answers: problems are ``application/problem+json``.

    FastAPI puts a response's model under ``application/json``; a response documented as a
    problem (:data:`PROBLEM_JSON` in its content) gets that schema under its own type, and
    no ``application/json``."""
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if PROBLEM_JSON in content and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return openapi


def answer(problem: ProblemError) -> JSONResponse:
    return JSONResponse(
        problem.problem.model_dump(exclude_none=True),
        status_code=problem.problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return answer(exc)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.A4CError)
        return answer(from_domain(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        found = problem(422, "the request is not valid", kind="invalid-request")
        found.problem.errors = request_errors(exc.errors())
        return answer(found)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        # Starlette's default detail is the status phrase: said once, as the title.
        said = exc.detail if exc.detail != HTTPStatus(exc.status_code).phrase else None
        found = problem(exc.status_code, said if exc.status_code < 500 else None)
        found.headers = dict(exc.headers or {})
        if exc.status_code == 405:
            found.headers["Allow"] = ", ".join(allowed_methods(request))
        return answer(found)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return answer(problem(500, None))

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(errors.A4CError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
