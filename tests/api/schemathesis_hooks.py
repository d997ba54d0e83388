"""Schemathesis hooks (``SCHEMATHESIS_HOOKS``) for tests/api/test_v1_fuzz.py.

The rules JSON Schema cannot say are in the document's descriptions: an onboarding's
``parent_id`` names an existing organization, its invitees' addresses are distinct (in
lower case), and its reminder comes before the invitation expires. The tester is held to
them like any client: a parent id is that of the organization ``A4C_FUZZ_PARENT_ID``
names, and a body breaking the other two is not sent. A webhook URL or an SSO issuer the
document allows is replaced by one that answers (a URL is refused for where it points).
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Any

import schemathesis
from pydantic import TypeAdapter, ValidationError
from schemathesis import Case, HookContext

from a4c_api.v1.models import DEFAULT_REMINDER, DEFAULT_TTL
from a4c_domain.commands import Slug
from a4c_domain.fields import IssuerURL, WebhookURL

PARENT_VARIABLE = "A4C_FUZZ_PARENT_ID"
# A test OpenID provider served for the run: an organization's SSO configuration whose
# issuer the document allows points at it (any other is refused for where it points:
# it must answer as a provider, which no generated URL does).
SSO_ISSUER_VARIABLE = "A4C_FUZZ_SSO_ISSUER"
ONBOARDING = ("POST", "/v1/organizations")
WEBHOOK_URL = "https://93.184.215.14/fuzzed"


def _onboarding(case: Case[Any]) -> dict[str, Any] | None:
    if (case.method.upper(), case.operation.path) != ONBOARDING:
        return None
    return case.body if isinstance(case.body, dict) else None


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


def _distinct_invitees(body: dict[str, Any]) -> bool:
    invitees = body.get("invitees")
    if not isinstance(invitees, list):
        return True
    emails = [i["email"].lower() for i in invitees if isinstance(i, dict) and "email" in i]
    return all(isinstance(e, str) for e in emails) and len(set(emails)) == len(emails)


def _reminder_before_expiry(body: dict[str, Any]) -> bool:
    timing = body.get("timing")
    if not isinstance(timing, dict):
        return True
    reminder = timing.get("reminder_before_seconds", DEFAULT_REMINDER)
    ttl = timing.get("invitation_ttl_seconds", DEFAULT_TTL)
    reminder = DEFAULT_REMINDER if reminder is None else reminder
    ttl = DEFAULT_TTL if ttl is None else ttl
    numbers = all(isinstance(n, int | float) and not isinstance(n, bool) for n in (reminder, ttl))
    return not numbers or reminder < ttl


@schemathesis.hook
def filter_case(context: HookContext, case: Case[Any]) -> bool:
    body = _onboarding(case)
    return body is None or (_distinct_invitees(body) and _reminder_before_expiry(body))


_URL_SCHEMA = TypeAdapter(WebhookURL).json_schema()
_URL_PATTERN = re.compile(_URL_SCHEMA["pattern"])
_SLUG: TypeAdapter[str] = TypeAdapter(Slug)


def _documented_url(value: Any) -> bool:
    """A URL the document allows (its pattern and length): some it allows are refused
    for where they point, so the tester's are replaced by one that points somewhere."""
    return (
        isinstance(value, str)
        and len(value) <= _URL_SCHEMA["maxLength"]
        and _URL_PATTERN.search(value) is not None
    )


_ISSUER_SCHEMA = TypeAdapter(IssuerURL).json_schema()
_ISSUER_PATTERN = re.compile(_ISSUER_SCHEMA["pattern"])


def _documented_issuer(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= _ISSUER_SCHEMA["maxLength"]
        and _ISSUER_PATTERN.search(value) is not None
    )


def _sso_settings(case: Case[Any]) -> dict[str, Any] | None:
    """A PUT of an organization's SSO configuration."""
    if case.method.upper() != "PUT" or not case.operation.path.endswith("/sso"):
        return None
    return case.body if isinstance(case.body, dict) else None


def _is_slug(value: Any) -> bool:
    try:
        _SLUG.validate_python(value)
    except ValidationError:
        return False
    return True


def _webhook_settings(case: Case[Any]) -> dict[str, Any] | None:
    """A create's or change's body of a webhook endpoint."""
    path = case.operation.path
    if case.method.upper() not in ("POST", "PATCH") or not isinstance(case.body, dict):
        return None
    if path.endswith("/webhook-endpoints") or path.endswith("/webhook-endpoints/{name}"):
        return case.body
    return None


@schemathesis.hook
def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
    body = _onboarding(case)
    if body is not None and _is_uuid(body.get("parent_id")):
        body["parent_id"] = os.environ[PARENT_VARIABLE]
    hook = _webhook_settings(case)
    if hook is not None:
        # Only what the document allows: a refused value stays, to be refused.
        if _documented_url(hook.get("url")):
            hook["url"] = WEBHOOK_URL
        if _is_slug(hook.get("organization")):
            hook["organization"] = None
    sso = _sso_settings(case)
    if sso is not None and _documented_issuer(sso.get("issuer")):
        sso["issuer"] = os.environ[SSO_ISSUER_VARIABLE]
    return case
