"""The OpenAPI document tells the truth, and ``/docs`` shows it without the internet.

What the document says is checked here directly (problem+json errors, the bodies of
200 answers, the field rules, ``Allow``, an unreadable body); Schemathesis checks every
answer against it (tests/api/test_v1_fuzz.py). ``/docs`` is opened in Chromium with every
request off this origin refused: its routes are listed, and nothing breaks its content
security policy.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import ConsoleMessage, Page, Route
from tests.api.v1_support import V1_ROUTES, Caller, World
from tests.worker.flows import ZONE

from a4c_api.problems import PROBLEM_JSON


@pytest.fixture(scope="module")
async def document(world: World) -> dict[str, Any]:
    async with world.client() as client:
        found: dict[str, Any] = (await client.get("/openapi.json")).json()
    return found


def _responses(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (method, path, status, response)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
    ]


def test_errors_are_documented_as_problems(document: dict[str, Any]) -> None:
    errors = [r for r in _responses(document) if int(r[2]) >= 400]
    assert errors
    for method, path, status, response in errors:
        assert set(response["content"]) == {PROBLEM_JSON}, (method, path, status)
        schema = response["content"][PROBLEM_JSON]["schema"]
        assert schema == {"$ref": "#/components/schemas/Problem"}, (method, path, status)


def test_every_answer_with_a_body_documents_it(document: dict[str, Any]) -> None:
    onboard = document["paths"]["/v1/organizations"]["post"]["responses"]
    invite = document["paths"]["/v1/organizations/{slug}/invitations"]["post"]["responses"]
    assert onboard["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OrganizationView"
    }
    assert invite["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Invitation"
    }
    for method, path, status, response in _responses(document):
        if int(status) < 300:
            assert "content" in response, (method, path, status)


def test_the_field_rules_are_in_the_schema(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    onboarding = schemas["OnboardRequest"]["properties"]
    assert onboarding["slug"]["pattern"] and "admin" in str(onboarding["slug"]["not"])
    assert onboarding["tags"]["items"]["pattern"]
    [domain, _] = onboarding["domain"]["anyOf"]
    assert re.fullmatch(domain["pattern"], f"acme.{ZONE}")
    assert not re.fullmatch(domain["pattern"], "acme.orgs.example.com")
    # What an organization's name is made of (no control character, no markup, no link).
    assert "[\\p{L}\\p{M}\\p{Nd} '.\\u2019&,-]" in onboarding["name"]["pattern"]
    invitee = schemas["NewInvitee"]["properties"]
    assert invitee["email"]["format"] == "email"
    assert invitee["first_name"]["pattern"]
    timing = schemas["BootstrapTiming"]["properties"]["reminder_before_seconds"]
    assert "invitation_ttl_seconds" in timing["description"]
    assert schemas["RevokeBody"]["properties"]["reason"]["pattern"]


async def test_a_method_not_allowed_lists_every_allowed_one(world: World) -> None:
    async with world.client() as client:
        answer = await client.delete("/v1/organizations", headers=world.headers(Caller.OPERATOR))
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith(PROBLEM_JSON)
    assert answer.headers["allow"] == "GET, POST"


async def test_a_body_that_is_not_utf8_is_a_documented_problem(
    world: World, document: dict[str, Any]
) -> None:
    async with world.client() as client:
        answer = await client.post(
            "/v1/organizations",
            content=b'{"name": "\xff\xfe"}',
            headers={**world.headers(Caller.OPERATOR), "Content-Type": "application/json"},
        )
    assert answer.headers["content-type"].startswith(PROBLEM_JSON), answer.text
    documented = document["paths"]["/v1/organizations"]["post"]["responses"]
    assert str(answer.status_code) in documented


# --- /docs ------------------------------------------------------------------------------


async def test_the_docs_page_lists_the_routes_offline(world: World, page: Page) -> None:
    """Every request that leaves the service is refused, as it would fail offline; the
    page still lists every route, and its content security policy holds."""
    outside: list[str] = []
    complaints: list[str] = []

    async def only_here(route: Route) -> None:
        if route.request.url.startswith(world.base_url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    await page.route("**/*", only_here)
    page.on("console", on_console)
    answer = await page.goto(world.base_url + "/docs")
    assert answer is not None and answer.status == 200
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy
    await page.locator(".opblock").first.wait_for()
    listed = {
        (
            (await block.locator(".opblock-summary-method").inner_text()).lower(),
            (await block.locator(".opblock-summary-path").inner_text()).replace("\u200b", ""),
        )
        for block in await page.locator(".opblock").all()
    }
    assert listed == V1_ROUTES
    assert outside == []
    assert complaints == []


async def test_the_docs_assets_come_from_the_service(world: World) -> None:
    async with httpx.AsyncClient(base_url=world.base_url) as client:
        html = (await client.get("/docs")).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/docs/assets/") for s in sources), sources
        for source in sources:
            asset = await client.get(source)
            assert asset.status_code == 200, source
