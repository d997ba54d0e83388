"""The invitee pages' routes and the checks every one of them makes before its own work,
over plain HTTP against the real stack (tests/api/conftest.py): the routes served; a
sign-in this instance does not offer is 404 before anything of its form is read; every
POST route answers a form without the session's CSRF token with the CSRF page (403),
counted as an accept outcome only where it was an accept."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from fastapi.routing import iter_route_contexts
from tests.api.conftest import Stack
from tests.api.test_pages_journey import HEADINGS, accept_count

from a4c_api import pages
from a4c_api.pages.paths import (
    OIDC_CALLBACK_PATH,
    SIGN_IN_DEV_PATH,
    SIGN_IN_OIDC_PATH,
    SIGN_IN_SSO_PATH,
    SIGN_OUT_PATH,
    SSO_CALLBACK_PATH,
    SSO_TEST_PATH,
    STYLESHEET_PATH,
)
from a4c_worker.config import ACCEPT_PATH

NOT_FOUND_PAGE = "<h1>"  # a page of the notice template, as opposed to problem+json


def test_the_pages_serve_their_routes_and_no_others() -> None:
    served = {
        (method, route.path)
        for route in iter_route_contexts(pages.router.routes)
        for method in route.methods or ()
    }
    assert served == {
        ("GET", ACCEPT_PATH),
        ("POST", ACCEPT_PATH),
        ("POST", SIGN_IN_DEV_PATH),
        ("GET", SIGN_IN_OIDC_PATH),
        ("GET", SIGN_IN_SSO_PATH),
        ("GET", SSO_TEST_PATH + "/{slug}"),
        ("GET", SSO_CALLBACK_PATH),
        ("GET", OIDC_CALLBACK_PATH),
        ("POST", SIGN_OUT_PATH),
        ("GET", STYLESHEET_PATH),
    }


async def test_a_sign_in_not_offered_is_404_before_its_form_is_read(api_stack: Stack) -> None:
    with api_stack.serve(API_DEV_SIGN_IN="false") as served:

        def run() -> list[httpx.Response]:
            return [
                # Not a form at all: were it read, it would be 415 (problem+json).
                httpx.post(served.url(SIGN_IN_DEV_PATH), json={"email": "a@example.com"}),
                httpx.post(served.url(SIGN_IN_DEV_PATH), data={"email": "a@example.com"}),
            ]

        answers = await asyncio.to_thread(run)
    for answer in answers:
        assert answer.status_code == 404, answer.text[:300]
        assert answer.headers["content-type"].startswith("text/html")
        assert NOT_FOUND_PAGE in answer.text


async def test_every_post_answers_a_missing_or_forged_csrf_token_with_its_page(
    api_stack: Stack,
) -> None:
    def run() -> list[httpx.Response]:
        answers = []
        for path in (ACCEPT_PATH, SIGN_IN_DEV_PATH, SIGN_OUT_PATH):
            for form in ({"email": "a@example.com"}, {"csrf": secrets.token_urlsafe(32)}):
                with httpx.Client(base_url=api_stack.base_url) as client:
                    client.get(ACCEPT_PATH)  # a session with a CSRF token of its own
                    answers.append(client.post(path, data=form))
        return answers

    before = accept_count(api_stack, "csrf_failed")
    answers = await asyncio.to_thread(run)
    for answer in answers:
        assert answer.status_code == 403, answer.text[:300]
        assert HEADINGS["csrf"] in answer.text
        assert answer.headers["cache-control"] == "no-store"
    assert accept_count(api_stack, "csrf_failed") == before + 2  # the two accepts only
