"""The HTTP and browser test servers work: uvicorn serves an app and captures its
access log; Chromium opens the page, clicks, and takes a screenshot; a relying party
signs in through the test OpenID provider in Chromium."""

from __future__ import annotations

import logging

import httpx
from authlib.integrations.starlette_client import OAuth
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.servers.browser import screenshot
from tests.servers.http import serve_asgi
from tests.servers.oidc import OIDCProvider, sub_for
from tests.support import free_port

PAGE = """<!doctype html><html><head><title>Test page</title></head><body>
<p id="status">waiting</p>
<button id="go" onclick="document.getElementById('status').textContent='clicked'">Go</button>
</body></html>"""


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse(PAGE)


async def echo(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.query_params.get("say", ""))


APP = Starlette(routes=[Route("/", home), Route("/echo", echo)])


async def test_uvicorn_serves_the_app_and_captures_its_access_log() -> None:
    with serve_asgi(APP) as served:
        async with httpx.AsyncClient() as client:
            response = await client.get(served.url("/echo"), params={"say": "hello"})
            missing = await client.get(served.url("/nowhere"))
    assert response.status_code == 200 and response.text == "hello"
    assert missing.status_code == 404
    assert any('"GET /echo?say=hello HTTP/1.1" 200' in line for line in served.access_log)
    assert any('"GET /nowhere HTTP/1.1" 404' in line for line in served.access_log)


async def test_an_app_is_served_on_the_port_chosen_for_it() -> None:
    port = free_port()
    with serve_asgi(APP, port=port) as served:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/echo", params={"say": "here"})
    assert served.base_url == f"http://127.0.0.1:{port}"
    assert response.text == "here"


async def test_each_server_sees_only_its_own_access_lines() -> None:
    with serve_asgi(APP) as first, serve_asgi(APP) as second:
        async with httpx.AsyncClient() as client:
            await client.get(first.url("/echo"), params={"say": "one"})
            await client.get(second.url("/echo"), params={"say": "two"})
    assert [("say=one" in line) for line in first.access_log] == [True]
    assert [("say=two" in line) for line in second.access_log] == [True]


class _HideQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        assert isinstance(record.args, tuple)
        record.args = (*record.args[:2], str(record.args[2]).split("?")[0], *record.args[3:])
        return True


async def test_the_captured_lines_are_what_the_access_loggers_filters_let_through() -> None:
    """A service that rewrites its access lines with a logger filter (the API drops the
    query string) is judged on the rewritten lines, as its log handlers see them."""
    hide = _HideQuery()
    logging.getLogger("uvicorn.access").addFilter(hide)
    try:
        with serve_asgi(APP) as served:
            async with httpx.AsyncClient() as client:
                await client.get(served.url("/echo"), params={"say": "secret-ish"})
    finally:
        logging.getLogger("uvicorn.access").removeFilter(hide)
    assert len(served.access_log) == 1
    assert '"GET /echo HTTP/1.1" 200' in served.access_log[0]


async def test_no_access_log_when_turned_off() -> None:
    with serve_asgi(APP, access_log=False) as served:
        async with httpx.AsyncClient() as client:
            response = await client.get(served.url("/echo"), params={"say": "quiet"})
    assert response.text == "quiet"
    assert served.access_log == []


async def test_chromium_opens_the_page_clicks_and_takes_a_screenshot(page: Page) -> None:
    with serve_asgi(APP) as served:
        await page.goto(served.url("/"))
        assert await page.title() == "Test page"
        await page.get_by_role("button", name="Go").click()
        assert await page.locator("#status").text_content() == "clicked"
        path = await screenshot(page, "servers/http browser smoke")
    assert path.name == "servers-http-browser-smoke.png"
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert path.stat().st_size > 1000
    assert any('"GET / HTTP/1.1" 200' in line for line in served.access_log)


async def test_a_relying_party_signs_in_through_the_oidc_provider_in_chromium(
    page: Page, oidc_provider: OIDCProvider
) -> None:
    """The path the accept page takes: Authlib's Starlette client (code flow, PKCE,
    nonce) against the test provider, the e-mail typed into its sign-in form."""
    oauth = OAuth()
    app = Starlette(middleware=[Middleware(SessionMiddleware, secret_key="test-session-key")])
    with serve_asgi(app) as served:
        client = oidc_provider.register_client(served.url("/callback"))
        oauth.register(
            "test",
            client_id=client.client_id,
            client_secret=client.client_secret,
            server_metadata_url=oidc_provider.url("/.well-known/openid-configuration"),
            client_kwargs={"scope": "openid email", "code_challenge_method": "S256"},
        )
        remote = oauth.create_client("test")

        async def login(request: Request) -> Response:
            response: Response = await remote.authorize_redirect(request, served.url("/callback"))
            return response

        async def callback(request: Request) -> HTMLResponse:
            token = await remote.authorize_access_token(request)
            user = token["userinfo"]
            return HTMLResponse(f'<p id="who">{user["email"]} {user["sub"]}</p>')

        app.router.routes.extend([Route("/login", login), Route("/callback", callback)])
        await page.goto(served.url("/login"))
        await page.get_by_label("E-mail").fill("ada@example.org")
        await page.get_by_role("button", name="Sign in").click()
        who = await page.locator("#who").text_content()
        await screenshot(page, "servers/oidc signed in")
    assert who == f"ada@example.org {sub_for('ada@example.org')}"
