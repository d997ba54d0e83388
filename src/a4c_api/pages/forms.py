"""The pages' forms: a handful of small fields, URL-encoded, read in memory, and the
CSRF token among them checked, by one dependency every POST route takes.

:func:`read_form` takes ``application/x-www-form-urlencoded`` only (any other type is
415 before the body is looked at: nothing is parsed or written to disk), at most
:data:`MAX_FORM_BYTES` (else 413) and :data:`MAX_FORM_FIELDS` fields of UTF-8 (else
400); each refusal is problem+json. :func:`csrf_checked` makes the dependency; a form
without this session's token is answered by the CSRF page (403).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import Depends
from starlette.requests import Request

from a4c_api.pages.notices import Answered, notice
from a4c_api.pages.rendering import CSRF_FIELD, csrf_valid
from a4c_api.problems import problem

FORM_TYPE = "application/x-www-form-urlencoded"
# The longest real form is the dev sign-in's: a 43-character CSRF token and an address
# of at most 320 characters, each percent-encoded (up to 3 bytes a character).
MAX_FORM_BYTES = 4096
MAX_FORM_FIELDS = 8


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's fields (the last of a repeated name wins)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise problem(415, f"a form is sent as {FORM_TYPE}", kind="unsupported-form")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise problem(413, f"a form is at most {MAX_FORM_BYTES} bytes", kind="form-too-large")
    try:
        fields = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            max_num_fields=MAX_FORM_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except UnicodeDecodeError:
        raise problem(400, "the form is not URL-encoded UTF-8", kind="invalid-form") from None
    except ValueError:  # parse_qsl: more fields than max_num_fields
        raise problem(
            400, f"a form has at most {MAX_FORM_FIELDS} fields", kind="invalid-form"
        ) from None
    return dict(fields)


def csrf_checked(
    on_refusal: Callable[[Request], None] | None = None,
) -> Callable[[Request], Awaitable[dict[str, str]]]:
    """The dependency of a POST route (for a :class:`~a4c_api.pages.notices.PageRoute`):
    the form, once its CSRF token is this session's; else the CSRF page answers, after
    ``on_refusal`` (a route that counts its outcomes counts this one)."""

    async def checked_form(request: Request) -> dict[str, str]:
        form = await read_form(request)
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            if on_refusal is not None:
                on_refusal(request)
            raise Answered(notice(request, "csrf"))
        return form

    return checked_form


# A POST route's form, its CSRF token checked (as a parameter: ``form: CheckedForm``; a
# route that reads no field lists ``Depends(checked_form)`` among its dependencies).
checked_form = csrf_checked()
CheckedForm = Annotated[dict[str, str], Depends(checked_form)]
