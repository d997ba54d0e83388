"""What every ``/v1`` route shares: the read-your-writes header, refusals from workflows,
and the standard error answers documented in OpenAPI."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from a4c_api import context as api_app
from a4c_api.auth import Principal
from a4c_api.problems import (
    PROBLEM_JSON,
    Problem,
    ProblemError,
    from_domain,
    from_workflow_refusal,
    unavailable,
)
from a4c_domain.commands import field_errors
from a4c_domain.errors import InvalidCommand

# Answered on every write: "true" when the read models already show it (a GET right
# after sees it), "false" when the projection had not caught up within
# API_CONSISTENCY_TIMEOUT (the write happened; it shows up shortly).
CONSISTENT_HEADER = "A4C-Consistent"
# Temporal answers that mean "not now" rather than "no": the caller may try again.
TRANSIENT = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)
# How the SDK reports a connection lost mid-call (the server killed, a proxy cut): status
# UNKNOWN with this message. Writes are idempotent, so trying again is safe.
LOST_CONNECTION = "transport error"


def transient(exc: RPCError) -> bool:
    """Whether this answer of the workflow service means "try again"."""
    lost = exc.status == RPCStatusCode.UNKNOWN and exc.message.startswith(LOST_CONNECTION)
    return exc.status in TRANSIENT or lost


log = logging.getLogger(__name__)


async def temporal_errors() -> AsyncIterator[None]:
    """A router dependency: Temporal being unreachable or overloaded in the middle of a
    request is a 503 (with Retry-After), not a 500. Anything else propagates."""
    try:
        yield
    except (RPCError, RPCTimeoutOrCancelledError) as exc:
        if isinstance(exc, RPCError) and not transient(exc):
            raise
        log.warning("the workflow service did not answer: %s", exc)
        raise unavailable("the workflow service did not answer; try again") from None


async def caught_up(
    request: Request, response: Response, caller: Principal, *, wrote: bool = True
) -> bool:
    """Wait (bounded, and at most ``API_MAX_WAITS_PER_PRINCIPAL`` of ``caller``'s at
    once) until the read models show every write so far; say so in the answer.
    ``wrote=False``, an answer that changed nothing: no wait, one look."""
    gateway = api_app.gateway_of(request)
    if wrote:
        consistent = await gateway.catch_up(caller.subject)
    else:
        consistent = await gateway.shows_everything()
    response.headers[CONSISTENT_HEADER] = "true" if consistent else "false"
    return consistent


def shown(response: Response) -> None:
    """An answer that changed nothing and was read from the read models: they show it."""
    response.headers[CONSISTENT_HEADER] = "true"


def invalid(command: str, exc: ValidationError) -> ProblemError:
    """A model built from a valid request still refused (a rule across fields): 422."""
    return from_domain(InvalidCommand(command, field_errors(exc)))


def refusal(exc: WorkflowUpdateFailedError) -> ProblemError:
    """A workflow's refusal of an update, as the problem its domain error type maps to."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        return from_workflow_refusal(cause.type, cause.message, cause.details)
    return from_workflow_refusal(None, str(cause))


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_JSON: {}}}


# OpenAPI: the errors any /v1 route may answer with (each a problem+json body).
Responses = dict[int | str, dict[str, Any]]
COMMON_ERRORS: Responses = {
    401: _problem("No credential, or not a valid one (WWW-Authenticate: Bearer)"),
    422: _problem("The request is not valid: `errors` names each field"),
    503: _problem(
        "The workflow service, the read models' database or the identity provider is not "
        "reachable (Retry-After says when to try again)"
    ),
}
_CONSISTENT_DOC = {
    "description": "true: the read models already show this write (a GET now sees it); "
    "false: not yet, within API_CONSISTENCY_TIMEOUT (it shows up shortly)",
    "schema": {"type": "string", "enum": ["true", "false"]},
}


def written(
    status: int,
    description: str,
    *,
    location: bool = False,
    model: type[BaseModel] | None = None,
) -> Responses:
    """OpenAPI for a write's success answer: its ``A4C-Consistent`` (and ``Location``);
    ``model``, its body, for a status other than the route's own (whose body FastAPI
    documents from ``response_model``)."""
    headers: dict[str, Any] = {CONSISTENT_HEADER: _CONSISTENT_DOC}
    if location:
        headers["Location"] = {
            "description": "where to GET what was written",
            "schema": {"type": "string"},
        }
    found: dict[str, Any] = {"description": description, "headers": headers}
    if model is not None:
        found["model"] = model
    return {status: found}


NOT_FOUND: Responses = {
    404: _problem("No such organization, or not one the caller may see (the same answer)")
}
FORBIDDEN: Responses = {403: _problem("In the caller's organization, but not theirs to do")}
CONFLICT: Responses = {409: _problem("Conflicts with what exists (`fields` names what differs)")}
# A route that takes a body: one whose bytes are not UTF-8 is refused before it is parsed.
UNREADABLE_BODY: Responses = {400: _problem("The body is not text in UTF-8 (JSON must be)")}
LIMITED: Responses = {
    429: _problem("Past a limit on the platform's mail: `Retry-After` says when to try again")
}
