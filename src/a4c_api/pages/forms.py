"""The pages' forms: a handful of small fields, URL-encoded, read in memory.

The pages' own forms post a CSRF token and one or two short values as
``application/x-www-form-urlencoded`` (what a browser sends for a form without files).
:func:`read_form` takes nothing else: any other type is 415 before the body is looked
at, so a multipart upload is never parsed, and nothing is ever written to disk; a body
past :data:`MAX_FORM_BYTES` is 413 once that much is read, more fields than
:data:`MAX_FORM_FIELDS` or text that is not UTF-8 is 400. Each refusal is problem+json.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

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
