"""The invitee's journey on the real stack (tests/api/conftest.py): the link from the real
``.eml`` file opened in Debian's Chromium, signed in (dev sign-in, and the OpenID
Connect flow against the test provider), accepted, confirmed; every other state of a
link; and over plain HTTP (no JavaScript, no browser) the refusals: CSRF, rate limits,
the wrong person, the dev sign-in in production. Each browser page is saved as a
screenshot under the test artefacts."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from playwright.async_api import Page, expect
from tests.api.conftest import Stack, unique_slug
from tests.servers.browser import screenshot
from tests.servers.http import ServedApp
from tests.servers.oidc import sub_for
from tests.support import wait_for_async

from a4c_api.pages.identity import dev_identity
from a4c_api.pages.paths import OIDC_CALLBACK_PATH, SIGN_IN_DEV_PATH, STYLESHEET_PATH
from a4c_worker.client import resend_invitation, revoke_invitation
from a4c_worker.config import ACCEPT_PATH

HEADINGS = {
    "unknown": "This invitation link does not work",
    "accepted": "This invitation was already accepted",
    "revoked": "This invitation was withdrawn",
    "expired": "This invitation has expired",
    "superseded": "A newer invitation was sent",
    "wrong_person": "This invitation is for someone else",
    "csrf": "This form is no longer valid",
    "rate_limited": "Too many attempts",
    "sign_in_failed": "Sign-in did not work",
}
CSRF_INPUT = re.compile(r'name="csrf" value="([^"]+)"')
INVITATION_INPUT = re.compile(r'name="invitation_id" value="([^"]+)"')


async def onboard(stack: Stack, slug: str, **extra: Any) -> None:
    """Bootstrap ``slug`` without a domain: the invitee pages need no DNS (and the stack's
    zone differs from the one bootstrap_input names domains in)."""
    await stack.bootstrap(slug, domain=False, **extra)


def invitee(slug: str, i: int = 0) -> str:
    return f"person{i}@{slug}.example.com"


def assert_no_token_logged(served: ServedApp, *tokens: str) -> None:
    """The access log saw the accept path (capture works) and never a token."""
    lines = "\n".join(served.access_log)
    assert ACCEPT_PATH in lines
    for token in tokens:
        assert token not in lines


def assert_page_headers(headers: httpx.Headers | dict[str, str]) -> None:
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    policy = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert "script-src" not in policy  # no script at all: default-src 'none'


async def member_ids(stack: Stack, slug: str) -> list[str]:
    await stack.settle()
    with stack.read_model() as rm:
        return [m.user_id for m in rm.members(stack.organization_id(slug))]


# --- in the browser -------------------------------------------------------------------


async def test_dev_sign_in_accepts_and_a_second_visit_says_already_accepted(
    api_stack: Stack, page: Page
) -> None:
    slug = unique_slug("pages-dev")
    await onboard(api_stack, slug)
    email = invitee(slug)
    link = api_stack.link(email)

    response = await page.goto(link)
    assert response is not None and response.status == 200
    assert_page_headers(await response.all_headers())
    assert page.url == api_stack.served.url(ACCEPT_PATH)  # the token left the address bar
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Join Org {slug}")
    await expect(page.locator("dl")).to_contain_text(f"p***@{slug}.example.com")
    await expect(page.locator("dl")).to_contain_text("admin")
    await expect(page.locator("dl")).to_contain_text("UTC")
    await screenshot(page, "pages/pending-signed-out")
    await page.set_viewport_size({"width": 360, "height": 740})  # a small phone
    await screenshot(page, "pages/pending-signed-out-phone")
    await page.set_viewport_size({"width": 1280, "height": 720})

    await page.get_by_label("Your e-mail address").fill(email.upper())
    await page.locator("#sign-in-dev").click()
    await expect(page.locator("footer")).to_contain_text(f"Signed in as {email}")
    await screenshot(page, "pages/pending-signed-in")

    await page.get_by_role("button", name="Accept the invitation").click()
    await expect(page.get_by_role("status")).to_have_text(f"You joined Org {slug} as admin.")
    await screenshot(page, "pages/joined")
    assert await member_ids(api_stack, slug) == [dev_identity(email).sub]

    response = await page.goto(link)
    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS["accepted"])
    await screenshot(page, "pages/already-accepted")
    assert_no_token_logged(api_stack.served, api_stack.token_of(link))


async def test_oidc_sign_in_as_the_invited_address_accepts(api_stack: Stack, page: Page) -> None:
    slug = unique_slug("pages-oidc")
    await onboard(api_stack, slug)
    email = invitee(slug, 1)

    await page.goto(api_stack.link(email))
    await page.locator("#sign-in-oidc").click()
    assert page.url.startswith(api_stack.oidc.issuer)  # at the provider
    await screenshot(page, "pages/oidc-provider")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_role("button", name="Sign in").click()

    await page.wait_for_url(api_stack.served.url(ACCEPT_PATH))
    await expect(page.locator("footer")).to_contain_text(f"Signed in as {email}")
    await page.get_by_role("button", name="Accept the invitation").click()
    await expect(page.get_by_role("status")).to_have_text(f"You joined Org {slug} as member.")
    await screenshot(page, "pages/oidc-joined")
    assert await member_ids(api_stack, slug) == [sub_for(email)]  # the subject is the id
    assert OIDC_CALLBACK_PATH in "\n".join(api_stack.served.access_log)
    assert_no_token_logged(api_stack.served, api_stack.token_of(api_stack.link(email)))


async def oidc_sign_in(stack: Stack, page: Page, link: str, as_email: str) -> None:
    await page.goto(link)
    await page.locator("#sign-in-oidc").click()
    await page.get_by_label("E-mail").fill(as_email)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(stack.served.url("/**"))


async def test_oidc_sign_in_as_another_address_is_refused(api_stack: Stack, page: Page) -> None:
    slug = unique_slug("pages-other")
    await onboard(api_stack, slug)
    email = invitee(slug)
    intruder = f"someone@{slug}.example.org"

    await oidc_sign_in(api_stack, page, api_stack.link(email), intruder)
    alert = page.get_by_role("alert")
    await expect(alert).to_contain_text(f"signed in as {intruder}")
    await expect(alert).to_contain_text(f"this invitation is for p***@{slug}.example.com")
    await expect(page.get_by_role("button", name="Accept the invitation")).to_have_count(0)
    await screenshot(page, "pages/signed-in-as-someone-else")

    # The form posted anyway (crafted: the page offers no Accept button) is refused too.
    html = await page.content()
    answer = await page.context.request.post(
        api_stack.served.url(ACCEPT_PATH),
        form={
            "csrf": CSRF_INPUT.findall(html)[0],
            "invitation_id": str(api_stack.invitation(slug, email).id),
        },
    )
    assert answer.status == 403
    assert HEADINGS["wrong_person"] in await answer.text()
    assert api_stack.invitation(slug, email).status == "pending"
    assert await member_ids(api_stack, slug) == []

    # Signing out offers the sign-in again, for the right address this time.
    await page.goto(api_stack.served.url(ACCEPT_PATH))
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("footer")).to_have_count(0)
    await expect(page.locator("#sign-in-oidc")).to_be_visible()


async def test_oidc_sign_in_without_a_verified_address_is_refused(
    api_stack: Stack, page: Page
) -> None:
    slug = unique_slug("pages-unverified")
    await onboard(api_stack, slug, invitees=1)
    email = invitee(slug)
    api_stack.oidc.mark_unverified(email)

    await oidc_sign_in(api_stack, page, api_stack.link(email), email)
    await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS["sign_in_failed"])
    await expect(page.locator("#notice")).to_contain_text("not verified your e-mail address")
    await screenshot(page, "pages/sign-in-unverified")
    assert api_stack.invitation(slug, email).status == "pending"


async def test_revoked_and_resent_links_show_their_pages(api_stack: Stack, page: Page) -> None:
    slug = unique_slug("pages-states")
    await onboard(api_stack, slug)
    revoked, resent = invitee(slug, 0), invitee(slug, 1)
    await revoke_invitation(
        api_stack.client, api_stack.invitation(slug, revoked).id, "left the company"
    )
    old_link = api_stack.link(resent)
    await resend_invitation(api_stack.client, api_stack.invitation(slug, resent).id)
    await api_stack.wait_for_mail(3, slug)
    await api_stack.settle()
    new_link = api_stack.link(resent)
    assert new_link != old_link

    for link, state, status in [
        (api_stack.link(revoked), "revoked", 410),
        (old_link, "superseded", 410),
    ]:
        response = await page.goto(link)
        assert response is not None and response.status == status
        assert_page_headers(await response.all_headers())
        await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS[state])
        await expect(page.locator("#notice")).to_contain_text(f"Org {slug}")
        await screenshot(page, f"pages/{state}")

    response = await page.goto(new_link)  # the newest e-mail's link still works
    assert response is not None and response.status == 200
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Join Org {slug}")
    assert_no_token_logged(
        api_stack.served, *(api_stack.token_of(link) for link in api_stack.links(resent))
    )


async def test_an_expired_link_shows_the_expired_page(api_stack: Stack, page: Page) -> None:
    slug = unique_slug("pages-expired")
    # Valid for two seconds: long enough to be issued and mailed, then it lapses.
    await onboard(api_stack, slug, invitees=1, invitation_ttl_seconds=2, reminder_before_seconds=1)
    email = invitee(slug)

    async def expired() -> bool:  # the workflow's timer
        return api_stack.invitation(slug, email).status == "expired"

    await wait_for_async(expired, what="the invitation to expire")

    response = await page.goto(api_stack.link(email))
    assert response is not None and response.status == 410
    await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS["expired"])
    await screenshot(page, "pages/expired")


async def test_unknown_and_malformed_links_look_the_same(api_stack: Stack, page: Page) -> None:
    url = api_stack.served.url(ACCEPT_PATH)
    answers = []
    for query in (
        f"?token={secrets.token_urlsafe(32)}",  # well-formed, never issued
        "?token=not-a-token",
        "?token=" + "x" * 500,
        "?token=",
        "",  # the bare page in a fresh session
    ):
        async with httpx.AsyncClient(follow_redirects=True) as client:
            got = await client.get(url + query)
        answers.append((got.status_code, got.text))
        assert_page_headers(got.headers)
    assert answers[0][0] == 404 and HEADINGS["unknown"] in answers[0][1]
    assert all(answer == answers[0] for answer in answers)

    await page.goto(url + f"?token={secrets.token_urlsafe(32)}")
    await expect(page.get_by_role("heading", level=1)).to_have_text(HEADINGS["unknown"])
    await screenshot(page, "pages/unknown")


# --- over plain HTTP (no JavaScript) ----------------------------------------------------


@contextmanager
def session(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, follow_redirects=True, timeout=30) as client:
        yield client


def open_link(client: httpx.Client, link: str) -> httpx.Response:
    """Open the e-mail's link; the answer is the bare page the redirect leads to."""
    opened = client.get(link)
    assert [r.status_code for r in opened.history] == [303]
    assert_page_headers(opened.history[0].headers)
    assert "token" not in str(opened.url)
    return opened


def accept_count(stack: Stack, outcome: str) -> float:
    """``a4c_api_invitation_accepts_total{outcome=...}`` from the served API's metrics."""
    found = stack.metrics.registry.get_sample_value(
        "a4c_api_invitation_accepts_total", {"outcome": outcome}
    )
    return found or 0.0


def dev_sign_in(client: httpx.Client, page_html: str, email: str) -> httpx.Response:
    csrf = CSRF_INPUT.findall(page_html)[0]
    return client.post(SIGN_IN_DEV_PATH, data={"csrf": csrf, "email": email})


async def test_accept_needs_the_sessions_csrf_token(api_stack: Stack) -> None:
    slug = unique_slug("pages-csrf")
    await onboard(api_stack, slug, invitees=1)
    email = invitee(slug)
    link = api_stack.link(email)

    def run() -> None:
        with session(api_stack.base_url) as client:
            refused_before = accept_count(api_stack, "csrf_failed")
            signed_in = dev_sign_in(client, open_link(client, link).text, email)
            form = {"invitation_id": INVITATION_INPUT.findall(signed_in.text)[0]}
            for csrf in (None, "", "forged-" + secrets.token_urlsafe(32)):
                data = form if csrf is None else {**form, "csrf": csrf}
                refused = client.post(ACCEPT_PATH, data=data)
                assert refused.status_code == 403
                assert HEADINGS["csrf"] in refused.text
                assert_page_headers(refused.headers)
            # Another browser's valid token is no good here either.
            with session(api_stack.base_url) as other:
                foreign = CSRF_INPUT.findall(open_link(other, link).text)[0]
            assert client.post(ACCEPT_PATH, data={**form, "csrf": foreign}).status_code == 403
            assert api_stack.invitation(slug, email).status == "pending"
            assert accept_count(api_stack, "csrf_failed") == refused_before + 4
            # The page's own form, posted as a browser without JavaScript would.
            csrf = CSRF_INPUT.findall(signed_in.text)[0]
            joined = client.post(ACCEPT_PATH, data={**form, "csrf": csrf})
            assert joined.status_code == 200 and "You joined" in joined.text

    await asyncio.to_thread(run)
    assert await member_ids(api_stack, slug) == [dev_identity(email).sub]


async def test_accept_attempts_are_rate_limited_per_invitation(api_stack: Stack) -> None:
    slug = unique_slug("pages-rate")
    await onboard(api_stack, slug, invitees=1)
    email = invitee(slug)
    link = api_stack.link(email)

    with api_stack.serve(API_ACCEPT_RATE_PER_INVITATION="2/minute") as served:

        def run() -> list[httpx.Response]:
            with session(served.base_url) as client:
                page = open_link(client, link.replace(api_stack.base_url, served.base_url))
                signed_in = dev_sign_in(client, page.text, "someone-else@example.org")
                form = {
                    "csrf": CSRF_INPUT.findall(signed_in.text)[0],
                    "invitation_id": str(api_stack.invitation(slug, email).id),
                }
                return [client.post(ACCEPT_PATH, data=form) for _ in range(3)]

        answers = await asyncio.to_thread(run)
    assert [a.status_code for a in answers] == [403, 403, 429]
    assert HEADINGS["rate_limited"] in answers[2].text
    assert 1 <= int(answers[2].headers["retry-after"]) <= 60
    assert_page_headers(answers[2].headers)
    assert api_stack.invitation(slug, email).status == "pending"


async def test_accept_attempts_are_rate_limited_per_client(api_stack: Stack) -> None:
    slug = unique_slug("pages-client")
    await onboard(api_stack, slug, invitees=2)

    with api_stack.serve(API_ACCEPT_RATE_PER_CLIENT="2/minute") as served:

        def attempt(client: httpx.Client, email: str) -> httpx.Response:
            link = api_stack.link(email).replace(api_stack.base_url, served.base_url)
            signed_in = dev_sign_in(client, open_link(client, link).text, "x@example.org")
            form = {
                "csrf": CSRF_INPUT.findall(signed_in.text)[0],
                "invitation_id": str(api_stack.invitation(slug, email).id),
            }
            return client.post(ACCEPT_PATH, data=form)

        def run() -> list[int]:
            # Two invitations, three fresh sessions, one address: the third is refused.
            statuses = []
            for email in (invitee(slug, 0), invitee(slug, 1), invitee(slug, 0)):
                with session(served.base_url) as client:
                    statuses.append(attempt(client, email).status_code)
            return statuses

        assert await asyncio.to_thread(run) == [403, 403, 429]


async def test_dev_sign_in_is_refused_in_production(api_stack: Stack) -> None:
    slug = unique_slug("pages-prod")
    await onboard(api_stack, slug, invitees=1)
    email = invitee(slug)
    with api_stack.serve(
        API_MODE="production",
        API_SESSION_SECRET=secrets.token_urlsafe(32),
        API_PUBLIC_URL="https://127.0.0.1:9",  # only the sign-in redirect is built on it
        TEMPORAL_PAYLOAD_KEYS=f"k1:{base64.b64encode(secrets.token_bytes(32)).decode()}",
    ) as served:

        def run() -> tuple[httpx.Response, httpx.Response]:
            # Production's cookie is Secure: carried by hand over the test's plain http.
            link = api_stack.link(email).replace(api_stack.base_url, served.base_url)
            cookies = dict(httpx.get(link).cookies)
            opened = httpx.get(served.url(ACCEPT_PATH), cookies=cookies)
            cookies |= dict(opened.cookies)
            csrf = CSRF_INPUT.findall(opened.text)
            tried = httpx.post(
                served.url(SIGN_IN_DEV_PATH),
                data={"csrf": csrf[0] if csrf else "", "email": email},
                cookies=cookies,
            )
            return opened, tried

        opened, tried = await asyncio.to_thread(run)
    assert opened.status_code == 200
    assert 'id="sign-in-oidc"' in opened.text and SIGN_IN_DEV_PATH not in opened.text
    assert tried.status_code == 404
    assert "Signed in as" not in tried.text


async def test_every_page_carries_the_security_headers(api_stack: Stack) -> None:
    link = api_stack.served.url(ACCEPT_PATH) + f"?token={secrets.token_urlsafe(32)}"
    async with httpx.AsyncClient(base_url=api_stack.base_url) as client:
        answers = [
            await client.get(link),  # the redirect that takes the token out of the address
            await client.get(ACCEPT_PATH),  # a page
            await client.post(SIGN_IN_DEV_PATH, data={"email": "a@example.com"}),  # refused
        ]
        css = await client.get(STYLESHEET_PATH)
    assert [a.status_code for a in answers] == [303, 404, 403]
    for answer in answers:
        assert_page_headers(answer.headers)
    for answer in answers[1:]:
        assert '<meta name="viewport"' in answer.text
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["x-content-type-options"] == "nosniff"
