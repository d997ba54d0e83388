"""The invitee pages' pure logic: which page a token's invitation gets, masking, who is
signed in, CSRF, the accept throttle and the templates' escaping. The pages themselves,
served, are tested in a browser and over HTTP in test_pages_journey.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from a4c_api.app import SESSION_COOKIE
from a4c_api.pages.accept import classify
from a4c_api.pages.identity import (
    DEV_PREFIX,
    OIDC_NAME,
    Identity,
    IdentityError,
    ProviderError,
    current,
    dev_identity,
    logout_url,
    normalised_email,
    oidc_identity,
    sign_in,
    token_endpoint_auth_method,
    with_userinfo,
)
from a4c_api.pages.notices import NOTICE_STATUS
from a4c_api.pages.rendering import (
    csrf_token,
    csrf_valid,
    renew_csrf,
    templates,
)
from a4c_api.pages.throttle import AcceptThrottle
from a4c_api.privacy import mask_email
from a4c_api.sessions import SealedSessionMiddleware, session_key
from a4c_api.settings import load_settings
from a4c_projector.queries import InvitationRecord, OrganizationRecord, TokenMatch

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _organization(status: str = "active") -> OrganizationRecord:
    # Only the fields the page choice reads (model_construct: no others needed).
    fields: dict[str, Any] = {"id": uuid.uuid4(), "name": "Acme", "status": status}
    return OrganizationRecord.model_construct(**fields)


def _match(status: str = "pending", *, current: bool = True, expires_in: float = 3600) -> Any:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": "alice@example.com",
        "role": "admin",
        "status": status,
        "expires_at": NOW + timedelta(seconds=expires_in),
    }
    invitation = InvitationRecord.model_construct(**fields)
    return TokenMatch.model_construct(invitation=invitation, current=current)


@pytest.mark.parametrize(
    ("match", "organization", "expected"),
    [
        (None, None, "unknown"),
        (_match(), None, "unknown"),  # not projected yet: nothing to show
        (_match(), _organization(), "pending"),
        (_match(), _organization("registered"), "pending"),
        (_match(), _organization("deactivated"), "inactive"),
        (_match(), _organization("offboarded"), "inactive"),
        (_match("accepted"), _organization(), "accepted"),
        (_match("accepted", current=False, expires_in=-1), _organization(), "accepted"),
        (_match("revoked"), _organization(), "revoked"),
        (_match("expired"), _organization(), "expired"),
        (_match(expires_in=0), _organization(), "expired"),  # due, not recorded yet
        (_match(current=False, expires_in=-5), _organization(), "expired"),
        (_match(current=False), _organization(), "superseded"),
    ],
)
def test_each_invitation_state_gets_its_page(
    match: Any, organization: OrganizationRecord | None, expected: str
) -> None:
    assert classify(match, organization, NOW) == expected


def test_a_naive_expiry_is_read_as_utc() -> None:
    match = _match()
    naive = match.invitation.model_copy(update={"expires_at": datetime(2026, 11, 30, 11, 59)})
    assert classify(match.model_copy(update={"invitation": naive}), _organization(), NOW) == (
        "expired"
    )


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("alice@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("first.last+tag@sub.example.org", "f***@sub.example.org"),
        ("nonsense", "***"),
    ],
)
def test_masking_keeps_the_first_letter_and_the_domain(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def test_dev_identity_is_stable_and_normalised() -> None:
    first = dev_identity(" Alice@Example.COM ")
    assert first == dev_identity("alice@example.com")
    assert first.sub.startswith(DEV_PREFIX) and first.email == "alice@example.com"
    assert first.sub != dev_identity("bob@example.com").sub
    assert first.is_invited("ALICE@example.com") and not first.is_invited("bob@example.com")
    with pytest.raises(IdentityError, match=r"e-mail address"):
        dev_identity("not an address")


def test_oidc_identity_requires_a_subject_and_a_verified_address() -> None:
    person = oidc_identity({"sub": "s-1", "email": "Alice@Example.com", "email_verified": True})
    assert person == Identity(sub="s-1", email="alice@example.com", method="oidc")
    for claims, problem in [
        ({"email": "a@example.com", "email_verified": True}, "who you are"),
        ({"sub": "s-1", "email_verified": True}, "e-mail address"),
        ({"sub": "s-1", "email": "a@example.com"}, "not verified"),
        ({"sub": "s-1", "email": "a@example.com", "email_verified": "true"}, "not verified"),
        ("claims", "who you are"),
    ]:
        with pytest.raises(IdentityError, match=problem):
            oidc_identity(claims)


def test_a_session_identity_is_read_back_only_when_whole() -> None:
    person = Identity(sub="s", email="a@example.com", method="dev")
    assert Identity.from_session(person.to_session()) == person
    assert Identity.from_session({"sub": "s", "email": "a@example.com"}) is None
    assert Identity.from_session({**person.to_session(), "method": "password"}) is None
    assert Identity.from_session("s") is None


def _signed_in(person: Identity, **env: str) -> Request:
    """A request whose session holds ``person``, to an instance configured by ``env``."""
    state = SimpleNamespace(settings=load_settings({"API_MODE": "development", **env}))
    scope = {"type": "http", "session": {"identity": person.to_session()}}
    return Request({**scope, "app": SimpleNamespace(state=state)})


def test_an_identity_counts_only_where_its_method_is_allowed() -> None:
    dev = Identity(sub="dev:1", email="a@example.com", method="dev")
    oidc = Identity(sub="s-1", email="a@example.com", method="oidc")
    provider = {
        "OIDC_ISSUER": "https://id.example.com",
        "OIDC_CLIENT_ID": "a4c",
        "OIDC_CLIENT_SECRET": "s" * 20,
    }
    assert current(_signed_in(dev)) == dev
    assert current(_signed_in(dev, API_DEV_SIGN_IN="false")) is None
    assert current(_signed_in(oidc)) is None  # no provider configured
    assert current(_signed_in(oidc, **provider)) == oidc


def test_the_session_key_is_the_modes_own() -> None:
    secret = b"s" * 32
    assert session_key(secret, "development") != session_key(secret, "production")
    assert session_key(secret, "production") == session_key(secret, "production")
    assert len(session_key(secret, "production")) == 32


def test_userinfo_completes_the_id_token_only_about_the_same_subject() -> None:
    id_claims = {"sub": "s-1", "iss": "https://id.example.com"}
    userinfo = {"sub": "s-1", "email": "A@example.com", "email_verified": True}
    merged = with_userinfo(id_claims, userinfo)
    assert oidc_identity(merged) == Identity(sub="s-1", email="a@example.com", method="oidc")
    with pytest.raises(IdentityError, match="who you are") as refused:
        with_userinfo(id_claims, {**userinfo, "sub": "s-2"})
    assert refused.value.reason == "UserInfo names another subject than the ID token"


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["client_secret_basic", "client_secret_post"], "client_secret_post"),
        (["client_secret_basic"], "client_secret_basic"),
        (None, "client_secret_basic"),  # unlisted: Discovery's default
    ],
)
def test_the_token_endpoint_authentication_follows_discovery(
    offered: list[str] | None, chosen: str
) -> None:
    metadata = {} if offered is None else {"token_endpoint_auth_methods_supported": offered}
    assert token_endpoint_auth_method(metadata) == chosen


# What a browser keeps of one cookie (RFC 6265 §6.1: name and value, at least 4096 bytes).
BROWSER_COOKIE_LIMIT = 4096


async def _sign_in_cookie(person: Identity, id_token: str, leftover: dict[str, str]) -> str:
    """The session cookie (``name=value``) a sign-in of ``person`` with ``id_token`` sets,
    ``leftover`` (such as Authlib's state of another sign-in) already in the session."""

    async def signed_in(request: Request) -> Response:
        request.session.update(leftover)
        sign_in(request, person, id_token)
        return Response("signed in")

    app = SealedSessionMiddleware(
        Starlette(routes=[Route("/", signed_in)]),
        secret=b"s" * 32, mode="production", session_cookie=SESSION_COOKIE,
    )  # fmt: skip
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://a4c.test") as client:
        header = (await client.get("/")).headers["set-cookie"]
    return header.split(";", 1)[0]


async def test_the_id_token_stays_in_the_session_only_while_the_cookie_fits() -> None:
    short = Identity(sub="s-1", email="a@example.com", method="oidc")
    long = Identity(sub="s" * 255, email="a" * 64 + "@" + "b" * 180 + ".example", method="oidc")
    leftover = {f"_state_{OIDC_NAME}_{'x' * 43}": "y" * 400}
    kept = await _sign_in_cookie(short, "t" * 1000, {})
    assert len(kept) > 1000  # the hint is kept where it fits
    for person in (short, long):
        for extra in ({}, leftover):
            cookie = await _sign_in_cookie(person, "t" * 2048, extra)
            size = len(cookie.encode())
            assert size <= BROWSER_COOKIE_LIMIT, (size, len(person.sub), len(extra))


async def test_a_logout_without_the_id_token_names_the_client_alone() -> None:
    async def metadata() -> dict[str, str]:
        return {"end_session_endpoint": "https://id.example.com/logout"}

    client = SimpleNamespace(client_id="a4c", load_server_metadata=metadata)
    url = await logout_url(client, None, "https://onboard.example.com/accept")
    assert url is not None
    query = parse_qs(urlsplit(url).query)
    assert query == {
        "client_id": ["a4c"],
        "post_logout_redirect_uri": ["https://onboard.example.com/accept"],
    }
    hinted = await logout_url(client, "t.o.k", "https://onboard.example.com/accept")
    assert hinted is not None
    assert parse_qs(urlsplit(hinted).query)["id_token_hint"] == ["t.o.k"]


def test_userinfo_may_say_verified_as_the_string_true() -> None:
    """Only UserInfo: the ID token's claim must be the boolean (see the test above)."""
    userinfo = {"sub": "s-1", "email": "a@example.com"}
    for said in (True, "true", "TRUE", "True"):
        merged = with_userinfo({"sub": "s-1"}, {**userinfo, "email_verified": said})
        assert oidc_identity(merged).email == "a@example.com"
    for not_said in (False, "false", "yes", "1", 1, " true", None):
        merged = with_userinfo({"sub": "s-1"}, {**userinfo, "email_verified": not_said})
        with pytest.raises(IdentityError, match="not verified"):
            oidc_identity(merged)


def test_a_provider_offering_no_secret_method_is_named() -> None:
    with pytest.raises(ProviderError, match="private_key_jwt"):
        token_endpoint_auth_method({"token_endpoint_auth_methods_supported": ["private_key_jwt"]})


def test_normalised_email_is_the_domains() -> None:
    assert normalised_email("Bob@EXAMPLE.com") == "bob@example.com"
    assert normalised_email("bob") is None


def _request(session: dict[str, Any]) -> Request:
    return Request({"type": "http", "session": session})


def test_csrf_token_is_per_session_and_compared_exactly() -> None:
    session: dict[str, Any] = {}
    request = _request(session)
    token = csrf_token(request)
    assert csrf_token(request) == token and len(token) >= 40
    assert csrf_valid(request, token)
    assert not csrf_valid(request, token[:-1])
    assert not csrf_valid(request, None)
    assert not csrf_valid(_request({}), token)  # another session (none): refused
    renew_csrf(request)
    assert not csrf_valid(request, token)


async def test_throttle_counts_per_invitation_and_per_client_apart() -> None:
    throttle = AcceptThrottle("2/minute", "3/minute")
    invitation, other = uuid.uuid4(), uuid.uuid4()
    assert await throttle.invitation(invitation) is None
    assert await throttle.invitation(invitation) is None
    refused = await throttle.invitation(invitation)
    assert refused is not None and 1 <= refused.retry_after <= 60
    assert await throttle.invitation(other) is None
    for _ in range(3):
        assert await throttle.client("192.0.2.1") is None
    assert await throttle.client("192.0.2.1") is not None
    assert await throttle.client("192.0.2.2") is None


PATHS = {"accept": "/a", "sign_in_dev": "/d", "sign_in_oidc": "/o", "sign_out": "/s", "css": "/c"}


def test_every_notice_has_its_own_heading_and_escapes_what_it_shows() -> None:
    headings = set()
    for state in NOTICE_STATUS:
        html = (
            templates()
            .get_template("notice.html")
            .render(
                state=state,
                paths=PATHS,
                csrf="c",
                organization_name="<script>alert(1)</script>",
                invited="a***@example.com",
                signed_in=Identity(sub="s", email="x<b>@example.com", method="dev"),
                retry_after=7,
                reason="Because.",
            )
        )
        assert "<script>" not in html and "x<b>" not in html
        assert '<meta name="viewport"' in html
        heading = html.split("<h1>", 1)[1].split("</h1>", 1)[0]
        headings.add(heading)
    assert len(headings) == len(NOTICE_STATUS)
