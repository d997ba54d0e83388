"""An invitee whose organization's single sign-on covers their address, in Chromium on
the API stack, a second test OpenID provider as the organization's own: the
organization verified its e-mail domain (the TXT challenge) and activated its provider
(a real test sign-in), so the invitation page offers only that provider; the invitee
signs in there and has joined, as the provider's subject (issuer and subject in the
members read model). The dev sign-in is refused for such an invitee server-side, even
when posted by hand; someone else's sign-in at the provider is told it is the wrong
person, and the invitation still waits."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.async_api import Page, expect
from tests.api.conftest import Stack, unique_slug
from tests.api.test_pages_journey import CSRF_INPUT, HEADINGS, accept_count
from tests.api.test_pages_sso_test import configure_sso
from tests.servers.browser import screenshot
from tests.servers.oidc import OIDCProvider, sub_for
from tests.servers.test_oidc import Authorization, sign_in
from tests.support import wait_for_async
from tests.worker.flows import provider_sign_in

from a4c_api.pages.identity import dev_identity
from a4c_api.pages.paths import (
    SIGN_IN_DEV_PATH,
    SIGN_IN_SSO_PATH,
    SSO_CALLBACK_PATH,
    SSO_TEST_PATH,
)
from a4c_domain.identity import sso_user_id
from a4c_worker.config import ACCEPT_PATH
from a4c_worker.sso_client import report_sso_test


async def organization_with_sso(stack: Stack, provider: OIDCProvider) -> str:
    """A new organization (invitees person0..2@{slug}.example.com, person0 its admin and
    a member already) that verified its e-mail domain and activated ``provider``."""
    slug = unique_slug("sso-accept")
    await stack.bootstrap(slug, invitees=3, domain=False)
    admin = f"person0@{slug}.example.com"
    await stack.make_member(slug, admin, dev_identity(admin).sub)
    domain = f"{slug}.example.com"
    operator = {"Authorization": f"Bearer {stack.operator_key}"}
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, headers=operator) as http:
        domains = f"/v1/organizations/{slug}/email-domains"
        asked = await http.post(domains, json={"domain": domain})
        assert asked.status_code == 202, asked.text
        record = asked.json()["record"]
        stack.txt.records[record["name"]] = [record["value"]]
        assert (await http.post(f"{domains}/{domain}/verify")).status_code == 202
    relying = await configure_sso(stack, slug, provider)
    # The admin's test sign-in, as the test page sends it (tests/api/test_pages_sso_test.py
    # drives that page in the browser).
    test = await provider_sign_in(provider, relying, f"it@{domain}")
    test = test.model_copy(update={"redirect_uri": stack.served.url(SSO_CALLBACK_PATH)})
    org_id = stack.organization_id(slug)

    async def verified() -> bool:
        with stack.read_model() as rm:
            row = rm.email_domain(org_id, domain)
        return row is not None and row.status == "verified"

    async def covered() -> bool:
        with stack.read_model() as rm:
            return rm.invitee_sso(org_id, domain) is not None

    await wait_for_async(verified, what="the e-mail domain verified")
    progress = await report_sso_test(stack.client, org_id, test)
    assert progress.state == "active"
    await wait_for_async(covered, what="the provider in force, projected")
    await stack.settle()
    return slug


async def test_an_invitee_covered_by_sso_joins_through_the_organizations_provider(
    api_stack: Stack, page: Page, own_provider: OIDCProvider
) -> None:
    slug = await organization_with_sso(api_stack, own_provider)
    invitee = f"person1@{slug}.example.com"
    await page.goto(api_stack.link(invitee))
    await expect(page.locator("#sso-required")).to_be_visible()
    await expect(page.locator("#sign-in-dev")).to_have_count(0)
    await expect(page.locator("#sign-in-oidc")).to_have_count(0)
    await expect(page.locator("#accept")).to_have_count(0)
    await screenshot(page, "pages/sso-accept-invitation")

    # Someone else of the domain signs in at the provider: the wrong person; still waits.
    await page.locator("#sign-in-sso").click()
    await page.get_by_label("E-mail", exact=True).fill(f"colleague@{slug}.example.com")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("h1")).to_have_text(HEADINGS["wrong_person"])
    assert api_stack.invitation(slug, invitee).status == "pending"

    await page.goto(api_stack.served.url(ACCEPT_PATH))
    await page.locator("#sign-in-sso").click()
    assert page.url.startswith(own_provider.url("/authorize"))
    await page.get_by_label("E-mail", exact=True).fill(invitee)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("h1")).to_have_text(re.compile("You joined"))
    await screenshot(page, "pages/sso-accept-joined")
    assert "code=" not in page.url or SSO_CALLBACK_PATH in page.url

    user = sso_user_id(own_provider.issuer, sub_for(invitee))
    org_id = api_stack.organization_id(slug)

    async def member() -> bool:
        with api_stack.read_model() as rm:
            row = rm.member(org_id, user)
        return row is not None and (row.issuer, row.subject, row.email) == (
            own_provider.issuer,
            sub_for(invitee),
            invitee,
        )

    await wait_for_async(member, what="the member with the provider's issuer and subject")


async def test_the_dev_sign_in_cannot_accept_for_an_invitee_covered_by_sso(
    api_stack: Stack, own_provider: OIDCProvider
) -> None:
    slug = await organization_with_sso(api_stack, own_provider)
    invitee = f"person2@{slug}.example.com"
    before = accept_count(api_stack, "sso_required")
    async with httpx.AsyncClient(base_url=api_stack.base_url, timeout=60) as browser:
        # A page with a form gives the session's CSRF token (the invitation's has none).
        form_page = await browser.get(f"{SSO_TEST_PATH}/{slug}")
        csrf = CSRF_INPUT.search(form_page.text)
        assert csrf is not None
        signed = await browser.post(SIGN_IN_DEV_PATH, data={"csrf": csrf[1], "email": invitee})
        assert signed.status_code == 303
        shown = await browser.get(api_stack.link(invitee), follow_redirects=True)
        assert 'id="sso-required"' in shown.text and 'id="accept"' not in shown.text
        csrf = CSRF_INPUT.search(shown.text)
        assert csrf is not None  # the sign-out form's
        invitation = api_stack.invitation(slug, invitee)
        posted = await browser.post(
            ACCEPT_PATH, data={"csrf": csrf[1], "invitation_id": str(invitation.id)}
        )
    assert 'id="sso-required"' in posted.text
    assert accept_count(api_stack, "sso_required") == before + 1
    await api_stack.settle()
    assert api_stack.invitation(slug, invitee).status == "pending"


async def provider_round_trip(
    browser: httpx.AsyncClient, provider: OIDCProvider, email: str, before_sign_in: Any = None
) -> httpx.Response:
    """From the session's invitation page to the provider (signed in there as ``email``)
    and back to a4c's callback, as a browser does it; ``before_sign_in`` is awaited
    while the person is at the provider."""
    started = await browser.get(SIGN_IN_SSO_PATH)
    assert started.status_code in (302, 303), started.text
    authorize = started.headers["location"]
    assert authorize.startswith(provider.url("/authorize"))
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize).query).items()}
    if before_sign_in is not None:
        await before_sign_in()
    async with httpx.AsyncClient(timeout=60) as at_provider:
        signed = await sign_in(at_provider, provider, Authorization(params, ""), email)
    back = urlsplit(signed.headers["location"])
    return await browser.get(f"{back.path}?{back.query}")


async def test_sso_ended_while_the_invitee_was_at_the_provider_opens_the_other_sign_ins(
    api_stack: Stack, own_provider: OIDCProvider
) -> None:
    slug = await organization_with_sso(api_stack, own_provider)
    invitee = f"person1@{slug}.example.com"
    before = accept_count(api_stack, "stale_form")

    async def end_sso() -> None:
        ended = await browser.delete(
            f"/v1/organizations/{slug}/sso",
            headers={"Authorization": f"Bearer {api_stack.operator_key}"},
        )
        assert ended.status_code == 200, ended.text

    async with httpx.AsyncClient(base_url=api_stack.base_url, timeout=60) as browser:
        await browser.get(api_stack.link(invitee))
        back = await provider_round_trip(browser, own_provider, invitee, end_sso)
        assert back.status_code == 303 and back.headers["location"] == ACCEPT_PATH
        page = await browser.get(ACCEPT_PATH)
    assert accept_count(api_stack, "stale_form") == before + 1
    assert 'id="sign-in-dev"' in page.text and 'id="sign-in-sso"' not in page.text
    assert api_stack.invitation(slug, invitee).status == "pending"


async def test_sign_ins_through_the_provider_count_against_the_accept_limits(
    api_stack: Stack, own_provider: OIDCProvider
) -> None:
    slug = await organization_with_sso(api_stack, own_provider)
    invitee = f"person1@{slug}.example.com"
    # The callback the provider knows stays the stack's (the flight carries it).
    public = api_stack.settings.api_public_url
    # Only the invitation's limit under test: the module's other tests accepted from this
    # client address within the minute, so its limit is set out of the way.
    with api_stack.serve(
        API_ACCEPT_RATE_PER_INVITATION="1/minute",
        API_ACCEPT_RATE_PER_CLIENT="999/minute",
        API_PUBLIC_URL=public,
    ) as served:
        async with httpx.AsyncClient(base_url=served.base_url, timeout=60) as browser:
            await browser.get(api_stack.link(invitee).replace(api_stack.base_url, served.base_url))
            colleague = f"colleague@{slug}.example.com"
            answers = [await provider_round_trip(browser, own_provider, colleague) for _ in "12"]
    assert [a.status_code for a in answers] == [403, 429]
    assert HEADINGS["rate_limited"] in answers[1].text
    assert api_stack.invitation(slug, invitee).status == "pending"
