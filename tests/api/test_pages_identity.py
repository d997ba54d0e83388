"""Who is signed in, and how, over plain HTTP against the real stack (tests/api/conftest.py):
a session stays in the mode and the sign-in methods of the instance that made it; the
session cookie is encrypted; sign-in works with providers that behave as standard ones do
at their defaults (tests/servers/oidc.py ``serve_provider``: the address only in UserInfo,
only ``client_secret_basic``, a secret with ``+ / =``); a refused sign-in says why in the
log; signing out lets the person choose another account at the provider."""

from __future__ import annotations

import asyncio
import base64
import binascii
import html
import logging
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from joserfc import jwt
from playwright.async_api import Page, expect
from tests.api.conftest import Stack, unique_slug
from tests.servers.http import ServedApp
from tests.servers.oidc import OIDCProvider, serve_provider, sub_for
from tests.support import free_port

from a4c_api.app import SESSION_COOKIE
from a4c_api.pages.paths import (
    OIDC_CALLBACK_PATH,
    SIGN_IN_DEV_PATH,
    SIGN_IN_OIDC_PATH,
    SIGN_OUT_PATH,
)
from a4c_worker.config import ACCEPT_PATH

CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')
INVITATION_INPUT = re.compile(r'name="invitation_id" value="([^"]+)"')
HIDDEN_INPUT = re.compile(r'type="hidden" name="([^"]+)" value="([^"]*)"')
SIGNED_IN = "Signed in as"
# Characters form-encoding changes (RFC 6749 §2.3.1), as some providers' secrets hold.
AWKWARD_SECRET = "k+y/s=" + secrets.token_urlsafe(24) + "+/=="
PAGES_LOGGER = "a4c_api.pages"


# A production instance's public URL: only redirects are built on it.
PRODUCTION_URL = "https://onboard.example.com"


def payload_keys() -> str:
    """A ``TEMPORAL_PAYLOAD_KEYS`` value (production requires one)."""
    return f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def readable(cookie: str) -> str:
    """Whatever of ``cookie`` base64 decodes to, as text: what anyone holding it can read."""
    found = [cookie]
    for part in re.split(r"[.]", cookie):
        for decode in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                found.append(decode(part + "=" * (-len(part) % 4)).decode("latin-1"))
            except (binascii.Error, ValueError):
                continue
    return "\n".join(found)


def session_cookie(response: httpx.Response) -> str:
    """The session cookie the response (or a redirect before it) set."""
    for answer in (*response.history, response):
        for header in answer.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name == SESSION_COOKIE:
                return rest.split(";", 1)[0]
    raise AssertionError("no session cookie was set")


def set_cookie_header(response: httpx.Response) -> str:
    for answer in (*response.history, response):
        for header in answer.headers.get_list("set-cookie"):
            if header.startswith(SESSION_COOKIE + "="):
                return header
    raise AssertionError("no session cookie was set")


@contextmanager
def browser(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, follow_redirects=True, timeout=30) as client:
        yield client


def dev_sign_in(client: httpx.Client, link: str, email: str) -> httpx.Response:
    """Open ``link`` (on ``client``'s instance) and sign in there as ``email`` (dev)."""
    opened = client.get(link)
    assert opened.status_code == 200, opened.text
    signed_in = client.post(
        SIGN_IN_DEV_PATH, data={"csrf": CSRF_INPUT.findall(opened.text)[0], "email": email}
    )
    assert SIGNED_IN in signed_in.text
    return signed_in


async def invited(stack: Stack, prefix: str) -> tuple[str, str]:
    """A new organization (``prefix``-slug) with one pending invitation: slug and address."""
    slug = unique_slug(prefix)
    await stack.bootstrap(slug, invitees=1, domain=False)
    return slug, f"person0@{slug}.example.com"


def dev_session(
    stack: Stack, served: ServedApp, email: str
) -> tuple[httpx.Response, dict[str, str]]:
    """``email`` opens their invitation on ``served`` and signs in there (dev): the page
    signed in, and a ``Cookie`` header carrying the session it made."""
    link = stack.link(email).replace(stack.base_url, served.base_url)
    with browser(served.base_url) as client:
        signed_in = dev_sign_in(client, link, email)
        return signed_in, {"Cookie": f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"}


# --- item: sessions stay in their mode -------------------------------------------------


async def test_a_development_session_is_no_session_in_production(api_stack: Stack) -> None:
    slug, email = await invited(api_stack, "ident-mode")
    shared = secrets.token_urlsafe(32)
    with (
        api_stack.serve(API_SESSION_SECRET=shared) as development,
        api_stack.serve(
            API_MODE="production",
            API_SESSION_SECRET=shared,
            API_PUBLIC_URL=PRODUCTION_URL,
            TEMPORAL_PAYLOAD_KEYS=payload_keys(),
        ) as in_production,
    ):

        def run() -> tuple[httpx.Response, httpx.Response]:
            signed_in, cookie = dev_session(api_stack, development, email)
            form = {
                "csrf": CSRF_INPUT.findall(signed_in.text)[0],
                "invitation_id": INVITATION_INPUT.findall(signed_in.text)[0],
            }
            # The same cookie, carried to the production instance sharing the secret.
            shown = httpx.get(in_production.url(ACCEPT_PATH), headers=cookie)
            accepted = httpx.post(in_production.url(ACCEPT_PATH), data=form, headers=cookie)
            return shown, accepted

        shown, accepted = await asyncio.to_thread(run)
    assert SIGNED_IN not in shown.text
    assert "You joined" not in accepted.text
    assert api_stack.invitation(slug, email).status == "pending"


async def test_a_dev_identity_is_no_identity_where_dev_sign_in_is_off(api_stack: Stack) -> None:
    _, email = await invited(api_stack, "ident-off")
    shared = secrets.token_urlsafe(32)
    with (
        api_stack.serve(API_SESSION_SECRET=shared) as with_dev,
        api_stack.serve(API_SESSION_SECRET=shared, API_DEV_SIGN_IN="false") as without,
    ):

        def run() -> httpx.Response:
            _, cookie = dev_session(api_stack, with_dev, email)
            return httpx.get(without.url(ACCEPT_PATH), headers=cookie)

        shown = await asyncio.to_thread(run)
    assert shown.status_code == 200  # the session itself is good: it holds the invitation
    assert SIGNED_IN not in shown.text


# --- item: the session cookie -----------------------------------------------------------


async def test_the_session_cookie_does_not_show_the_invitation_token(api_stack: Stack) -> None:
    token = secrets.token_urlsafe(32)
    async with httpx.AsyncClient(base_url=api_stack.base_url) as client:
        opened = await client.get(ACCEPT_PATH, params={"token": token})
    assert opened.status_code == 303
    assert token not in readable(session_cookie(opened))


async def test_the_production_cookie_is_secure_http_only_and_same_site_lax(
    api_stack: Stack,
) -> None:
    with api_stack.serve(
        API_MODE="production",
        API_SESSION_SECRET=secrets.token_urlsafe(32),
        API_PUBLIC_URL=PRODUCTION_URL,
        TEMPORAL_PAYLOAD_KEYS=payload_keys(),
    ) as in_production:
        async with httpx.AsyncClient(base_url=in_production.base_url) as client:
            opened = await client.get(ACCEPT_PATH, params={"token": secrets.token_urlsafe(32)})
    flags = {f.strip().lower() for f in set_cookie_header(opened).split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= flags


# --- item: sign-in with a standard provider ---------------------------------------------


@contextmanager
def instance_for(
    stack: Stack, provider: OIDCProvider, *, client_secret: str | None = None
) -> Iterator[ServedApp]:
    """An API instance signing in with ``provider`` as a client of its own."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = provider.register_client(
        base + OIDC_CALLBACK_PATH,
        client_secret=client_secret,
        post_logout_redirect_uris=[base + ACCEPT_PATH],
    )
    with stack.serve(
        port=port,
        API_PUBLIC_URL=base,
        OIDC_ISSUER=provider.issuer,
        OIDC_CLIENT_ID=client.client_id,
        OIDC_CLIENT_SECRET=client.client_secret,
    ) as served:
        yield served


def oidc_sign_in(client: httpx.Client, provider: OIDCProvider, email: str) -> httpx.Response:
    """What a browser does: off to the provider, type the address, back to a4c."""
    form = client.get(SIGN_IN_OIDC_PATH)
    assert str(form.url).startswith(provider.issuer), form.text
    hidden = {name: html.unescape(value) for name, value in HIDDEN_INPUT.findall(form.text)}
    return client.post(provider.url("/authorize"), data={**hidden, "email": email})


def sign_in_once(served: ServedApp, provider: OIDCProvider, email: str) -> httpx.Response:
    """A fresh browser signs in at ``served`` through ``provider``: the page it ends on."""
    with browser(served.base_url) as client:
        return oidc_sign_in(client, provider, email)


def sign_out(client: httpx.Client, page: httpx.Response) -> httpx.Response:
    return client.post(SIGN_OUT_PATH, data={"csrf": CSRF_INPUT.findall(page.text)[0]})


async def test_the_address_is_read_from_userinfo_when_the_id_token_lacks_it(
    api_stack: Stack,
) -> None:
    email = f"ada-{secrets.token_hex(4)}@example.org"
    with (
        serve_provider(claims_in_id_token=False) as provider,
        instance_for(api_stack, provider) as served,
    ):
        back = await asyncio.to_thread(sign_in_once, served, provider, email)
    assert f"{SIGNED_IN} <strong>{email}</strong>" in back.text, back.text


async def test_userinfo_about_another_subject_is_refused_and_the_log_says_why(
    api_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=PAGES_LOGGER)
    email = f"eve-{secrets.token_hex(4)}@example.org"
    with (
        serve_provider(claims_in_id_token=False) as provider,
        instance_for(api_stack, provider) as served,
    ):
        provider.answer_userinfo_for_another(email)
        back = await asyncio.to_thread(sign_in_once, served, provider, email)
    assert back.status_code == 400 and SIGNED_IN not in back.text
    said = [r.getMessage() for r in caplog.records if r.name == PAGES_LOGGER]
    assert any("UserInfo" in line and "subject" in line for line in said), said
    assert not any(email in line for line in caplog.messages)


async def test_a_refused_sign_in_is_logged_with_its_reason(
    api_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=PAGES_LOGGER)
    email = f"unverified-{secrets.token_hex(4)}@example.org"
    api_stack.oidc.mark_unverified(email)
    with instance_for(api_stack, api_stack.oidc) as served:
        back = await asyncio.to_thread(sign_in_once, served, api_stack.oidc, email)
    assert back.status_code == 400
    said = [r.getMessage() for r in caplog.records if r.name == PAGES_LOGGER]
    assert any("refused" in line and "not verified" in line for line in said), said
    assert not any(email in line for line in caplog.messages)


@pytest.mark.parametrize(
    ("offered", "used"),
    [
        (("client_secret_post", "client_secret_basic"), "client_secret_post"),
        (("client_secret_basic",), "client_secret_basic"),
    ],
    ids=["post-offered", "basic-only"],
)
async def test_a_client_secret_with_plus_slash_and_equals_signs_in(
    api_stack: Stack, offered: tuple[str, ...], used: str
) -> None:
    email = f"secret-{secrets.token_hex(4)}@example.org"
    with (
        serve_provider(auth_methods=offered) as provider,
        instance_for(api_stack, provider, client_secret=AWKWARD_SECRET) as served,
    ):
        back = await asyncio.to_thread(sign_in_once, served, provider, email)
        assert f"{SIGNED_IN} <strong>{email}</strong>" in back.text, back.text
        assert provider.token_auth_methods == [used]


async def test_signing_out_ends_the_session_at_a_provider_that_offers_logout(
    api_stack: Stack,
) -> None:
    email = f"leaver-{secrets.token_hex(4)}@example.org"
    with (
        serve_provider(end_session=True) as provider,
        instance_for(api_stack, provider) as served,
    ):

        def run() -> tuple[httpx.Response, httpx.Response]:
            with browser(served.base_url) as client:
                signed_in = oidc_sign_in(client, provider, email)
                assert SIGNED_IN in signed_in.text
                signed_out = sign_out(client, signed_in)
                # The page moves on to the provider (a browser follows Refresh).
                delay, _, target = signed_out.headers["refresh"].partition("; url=")
                assert delay == "0" and target.startswith(provider.url("/logout"))
                return signed_out, client.get(target)

        signed_out, back = await asyncio.to_thread(run)
        logouts = provider.logouts
    assert signed_out.status_code == 200 and SIGNED_IN not in signed_out.text
    assert urlsplit(str(back.url)).path == ACCEPT_PATH and SIGNED_IN not in back.text
    assert len(logouts) == 1, logouts
    assert logouts[0]["post_logout_redirect_uri"] == served.url(ACCEPT_PATH)
    hint = jwt.decode(logouts[0]["id_token_hint"], provider.key)
    assert hint.claims["sub"] == sub_for(email)


async def test_signing_out_lets_them_choose_an_account_where_no_logout_is_offered(
    api_stack: Stack,
) -> None:
    email = f"chooser-{secrets.token_hex(4)}@example.org"
    with serve_provider() as provider, instance_for(api_stack, provider) as served:

        def run() -> None:
            with browser(served.base_url) as client:
                signed_in = oidc_sign_in(client, provider, email)
                signed_out = sign_out(client, signed_in)
                assert SIGNED_IN not in signed_out.text
                again = oidc_sign_in(client, provider, email)
                assert SIGNED_IN in again.text
                # Once only: the next sign-in after that one asks nothing special.
                oidc_sign_in(client, provider, email)

        await asyncio.to_thread(run)
        prompts = [params.get("prompt") for params in provider.authorizations]
    assert prompts == [None, "select_account", None]


async def test_in_a_browser_signing_out_passes_through_the_providers_logout(
    api_stack: Stack, page: Page
) -> None:
    email = f"browser-{secrets.token_hex(4)}@example.org"
    with (
        serve_provider(end_session=True) as provider,
        instance_for(api_stack, provider) as served,
    ):
        await page.goto(served.url(SIGN_IN_OIDC_PATH))
        await page.get_by_label("E-mail").fill(email)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(served.url(ACCEPT_PATH))
        await expect(page.locator("footer")).to_contain_text(f"{SIGNED_IN} {email}")

        await page.get_by_role("button", name="Sign out").click()
        await page.wait_for_url(served.url(ACCEPT_PATH))
        await expect(page.locator("footer")).to_have_count(0)
        assert len(provider.logouts) == 1
