"""The load's deliberately bad requests, and the refusal each must get.

Each case is a request a careless or hostile client sends, with the typed refusal the
API documents for it: a ``/v1`` problem (status and ``type``) or an invitee page's
notice (status and ``data-state``). A bad onboarding names a valid slug of its own, which
must not exist afterwards (looked up once refused): "nothing stored".
"""

from __future__ import annotations

import json
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from a4c_api.pages.paths import SIGN_IN_DEV_PATH
from a4c_worker.config import ACCEPT_PATH

PROBLEM = "urn:a4c:problem:"
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
CASES = (
    "bad_slug",
    "bad_email",
    "bad_role",
    "bad_name",
    "unknown_field",
    "domain_outside_zone",
    "not_json",
    "huge_body",
    "no_key",
    "wrong_key",
    "unknown_organization",
    "unknown_invitation",
    "slug_conflict",
    "forged_token",
    "accept_without_csrf",
    "sign_in_without_csrf",
)


@dataclass(frozen=True)
class Bad:
    """One bad request. ``page``: sent as a browser (no credential, cookies, redirects
    followed) and refused with a notice page; else a ``/v1`` request."""

    case: str
    method: str
    path: str
    status: int
    kind: str  # the problem type's last part, or the notice's data-state
    page: bool = False
    json_body: Any = None
    content: bytes | None = None
    form: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    key: str | None = None  # None: the operator's; "": none; else this credential
    absent_slug: str | None = None  # must not exist once refused


@dataclass(frozen=True)
class Existing:
    """An organization the load onboarded (for cases that need one)."""

    slug: str
    name: str
    body: dict[str, Any]  # its onboarding request


def _slug(rng: random.Random) -> str:
    return f"bad-{rng.getrandbits(40):010x}"


def _onboarding(slug: str, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Bad Request Ltd",
        "slug": slug,
        "org_type": "provider",
        "invitees": [
            {"email": f"someone@{slug}.example.com", "role": "member",
             "first_name": "Some", "last_name": "One"},
        ],
    }  # fmt: skip
    body.update(changes)
    return body


def _invitee(slug: str, /, **changes: str) -> list[dict[str, str]]:
    return [{**_onboarding(slug)["invitees"][0], **changes}]


def draw(
    rng: random.Random,
    zone: str,
    existing: Existing | None,
    max_body_bytes: int,
    case: str | None = None,
) -> Bad:
    """A bad request, its case drawn from :data:`CASES` (or ``case``)."""
    case = rng.choice(CASES) if case is None else case
    slug = _slug(rng)
    orgs = "/v1/organizations"

    def onboarding(status: int, kind: str, **changes: Any) -> Bad:
        body = _onboarding(slug, **changes)
        return Bad(case, "POST", orgs, status, kind, json_body=body, absent_slug=slug)

    if case == "bad_slug":
        return onboarding(422, "invalid-request", slug=f"Bad_Slug!{rng.getrandbits(16)}")
    if case == "bad_email":
        return onboarding(422, "invalid-request", invitees=_invitee(slug, email="not-an-address"))
    if case == "bad_role":
        return onboarding(422, "invalid-request", invitees=_invitee(slug, role="emperor"))
    if case == "bad_name":  # a host name in a greeting: a link could ride in the mail
        return onboarding(422, "invalid-request", invitees=_invitee(slug, first_name="x.example"))
    if case == "unknown_field":
        return onboarding(422, "invalid-request", owner="someone")
    if case == "domain_outside_zone":  # names the zone, but is not below it
        return onboarding(422, "invalid-command", domain=f"{slug}.{zone}.elsewhere.example")
    if case == "not_json":
        return Bad(
            case, "POST", orgs, 422, "invalid-request",
            content=b'{"slug": "' + slug.encode() + b'", oops',
            headers={"Content-Type": "application/json"}, absent_slug=slug,
        )  # fmt: skip
    if case == "huge_body":
        body = _onboarding(slug, name="x" * (max_body_bytes + 1024))
        return Bad(
            case, "POST", orgs, 413, "body-too-large",
            content=json.dumps(body).encode(), headers={"Content-Type": "application/json"},
            absent_slug=slug,
        )  # fmt: skip
    if case == "no_key":
        return Bad(case, "POST", orgs, 401, "unauthenticated", json_body=_onboarding(slug),
                   key="", absent_slug=slug)  # fmt: skip
    if case == "wrong_key":
        forged = "a4c_" + "".join(rng.choice(TOKEN_ALPHABET) for _ in range(43))
        return Bad(case, "POST", orgs, 401, "unauthenticated", json_body=_onboarding(slug),
                   key=forged, absent_slug=slug)  # fmt: skip
    if case == "unknown_organization" or existing is None:
        return Bad("unknown_organization", "GET", f"{orgs}/{slug}", 404, "organization-not-found")
    if case == "unknown_invitation":
        invitation = uuid.UUID(int=rng.getrandbits(128), version=4)
        return Bad(
            case, "POST", f"{orgs}/{existing.slug}/invitations/{invitation}/revoke", 404,
            "invitation-not-found", json_body={"reason": "not mine"},
        )  # fmt: skip
    if case == "slug_conflict":  # the same slug, another name: 409, nothing changed
        body = {**existing.body, "name": existing.name + " Renamed"}
        return Bad(case, "POST", orgs, 409, "organization-conflict", json_body=body)
    if case == "forged_token":
        token = "".join(rng.choice(TOKEN_ALPHABET) for _ in range(43))
        return Bad(case, "GET", f"{ACCEPT_PATH}?token={token}", 404, "unknown", page=True)
    if case == "accept_without_csrf":
        form = {"invitation_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        return Bad(case, "POST", ACCEPT_PATH, 403, "csrf", page=True, form=form)
    assert case == "sign_in_without_csrf"
    form = {"email": f"someone@{slug}.example.com"}
    return Bad(case, "POST", SIGN_IN_DEV_PATH, 403, "csrf", page=True, form=form)


def refused_as_documented(
    bad: Bad, status: int | None, problem: str | None, page: str | None
) -> bool:
    """Whether the answer is the typed refusal ``bad`` must get."""
    if status != bad.status:
        return False
    return (page if bad.page else problem) == (bad.kind if bad.page else PROBLEM + bad.kind)
