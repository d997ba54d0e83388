"""The single sign-on test page in Chromium, on the API stack, a second test OpenID
provider as the organization's own: an organization's admin opens ``/sso/test/{slug}``,
signs in with the usual (dev) sign-in, is sent to the organization's provider, signs in
there and comes back to "Single sign-on is active"; the connection is then in force. A
plain member is told only admins may test; a sign-in the provider refuses shows why and
leaves the configuration waiting."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Page, expect
from tests.api.conftest import Stack, unique_slug
from tests.servers.browser import screenshot
from tests.servers.oidc import OIDCClient, OIDCProvider
from tests.support import wait_for_async

from a4c_api.pages.identity import dev_identity
from a4c_api.pages.paths import SSO_CALLBACK_PATH, SSO_TEST_PATH


async def organization_with_pending_sso(
    stack: Stack, provider: OIDCProvider
) -> tuple[str, str, str]:
    """A new organization whose admin (person0) and member (person1) signed up with the
    dev sign-in, its provider configured and waiting for the test: slug, admin, member."""
    slug = unique_slug("sso-page")
    await stack.bootstrap(slug, invitees=2, domain=False)
    admin, member = f"person0@{slug}.example.com", f"person1@{slug}.example.com"
    await stack.make_member(slug, admin, dev_identity(admin).sub)
    await stack.make_member(slug, member, dev_identity(member).sub)
    await configure_sso(stack, slug, provider)
    return slug, admin, member


async def configure_sso(stack: Stack, slug: str, provider: OIDCProvider) -> OIDCClient:
    """``provider`` configured for ``slug`` through /v1 (a client registered for the
    stack's callback), waiting for its test: the client."""
    relying = provider.register_client(stack.served.url(SSO_CALLBACK_PATH))
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        put = await http.put(
            f"/v1/organizations/{slug}/sso",
            json={
                "issuer": provider.issuer,
                "client_id": relying.client_id,
                "client_secret": relying.client_secret,
            },
            headers={"Authorization": f"Bearer {stack.operator_key}"},
        )
    assert put.status_code == 202, put.text
    assert put.json()["configuration"]["state"] == "waiting_for_test"
    return relying


async def test_an_admin_tests_the_providers_sign_in_and_it_becomes_active(
    api_stack: Stack, page: Page, own_provider: OIDCProvider
) -> None:
    slug, admin, member = await organization_with_pending_sso(api_stack, own_provider)
    await page.goto(api_stack.served.url(f"{SSO_TEST_PATH}/{slug}"))
    await expect(page.locator("#sso-test")).to_have_attribute("data-state", "sign_in")
    await page.get_by_label("Your e-mail address").fill(member)
    await page.locator("#sign-in-dev").click()
    # Back on the test page: a plain member may not test.
    await expect(page.locator("#sso-test")).to_have_attribute("data-state", "not_admin")
    await page.context.clear_cookies()  # a new session: the admin's

    await page.goto(api_stack.served.url(f"{SSO_TEST_PATH}/{slug}"))
    await page.get_by_label("Your e-mail address").fill(admin)
    await page.locator("#sign-in-dev").click()
    await expect(page.locator("#sso-test")).to_have_attribute("data-state", "ready")
    await screenshot(page, "pages/sso-test-ready")
    await page.locator("#continue").click()
    # At the organization's provider now: its own sign-in form.
    await expect(page.get_by_label("E-mail", exact=True)).to_be_visible()
    assert page.url.startswith(own_provider.url("/authorize"))
    await screenshot(page, "pages/sso-test-provider")
    await page.get_by_label("E-mail", exact=True).fill(f"it@{slug}.example.com")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sso-test")).to_have_attribute("data-state", "active")
    await expect(page.locator("main")).to_contain_text(own_provider.issuer)
    await screenshot(page, "pages/sso-test-active")
    assert "code=" not in page.url or SSO_CALLBACK_PATH in page.url

    async def active() -> bool:
        with api_stack.read_model() as rm:
            row = rm.sso_connection(api_stack.organization_id(slug))
        return row is not None and row.state == "active"

    await wait_for_async(active, what="the connection in force in the read model")

    async def admin_told() -> bool:
        return any(
            "Single sign-on is active" in text and admin in text
            for text in (p.read_text() for p in api_stack.mail_dir.glob("*.eml"))
        )

    await wait_for_async(admin_told, what="the sso_activated mail to the admin")


async def test_a_sign_in_the_provider_refuses_shows_why_and_the_test_still_waits(
    api_stack: Stack, page: Page, own_provider: OIDCProvider
) -> None:
    slug, admin, _ = await organization_with_pending_sso(api_stack, own_provider)
    unverified = f"unverified-{uuid.uuid4().hex[:6]}@{slug}.example.com"
    own_provider.mark_unverified(unverified)
    await page.goto(api_stack.served.url(f"{SSO_TEST_PATH}/{slug}"))
    await page.get_by_label("Your e-mail address").fill(admin)
    await page.locator("#sign-in-dev").click()
    await page.locator("#continue").click()
    await page.get_by_label("E-mail", exact=True).fill(unverified)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sso-test")).to_have_attribute("data-state", "failed")
    await expect(page.locator("#failure")).to_have_attribute("data-type", "EmailNotVerified")
    await screenshot(page, "pages/sso-test-failed")
    async with httpx.AsyncClient(base_url=api_stack.base_url, timeout=60) as http:
        got = await http.get(
            f"/v1/organizations/{slug}/sso",
            headers={"Authorization": f"Bearer {api_stack.operator_key}"},
        )
    assert got.json()["configuration"]["state"] == "waiting_for_test"
