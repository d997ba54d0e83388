"""The HTTP and browser test servers work: uvicorn serves an app and captures its
access log; Chromium opens the page, clicks, and takes a screenshot."""

from __future__ import annotations

import httpx
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route

from tests.servers.browser import screenshot
from tests.servers.http import serve_asgi

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


async def test_each_server_sees_only_its_own_access_lines() -> None:
    with serve_asgi(APP) as first, serve_asgi(APP) as second:
        async with httpx.AsyncClient() as client:
            await client.get(first.url("/echo"), params={"say": "one"})
            await client.get(second.url("/echo"), params={"say": "two"})
    assert [("say=one" in line) for line in first.access_log] == [True]
    assert [("say=two" in line) for line in second.access_log] == [True]


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
