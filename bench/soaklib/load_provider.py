"""Signing in at the soak's organizations' provider (``tests.servers.oidc``) as a browser
would: its sign-in form posted as an address, then back to a4c's ``/sso/callback``.

Shared by an admin's test sign-in (:mod:`soaklib.load_sso`) and an invitee's acceptance
through their organization's provider (:mod:`soaklib.load_ops`). The provider's answer
is not followed by the client that posted the form: its redirect names a4c's callback,
which the person's own browser (cookies: the sign-in's session) then opens.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import httpx

from soaklib.load_http import Http, Reply

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')


async def sign_in_at_provider(
    http: Http,
    browser: httpx.AsyncClient,
    form: Reply,
    authorize: str,
    address: str,
    *,
    kind: str,
    attempt: int,
) -> Reply:
    """``form``: the provider's sign-in page for the authorization request ``authorize``.
    Post it as ``address`` and open where the provider sends the browser back: the last
    page reached. Requests are counted as ``{kind}_provider_sign_in`` and
    ``{kind}_callback``."""
    fields = {html.unescape(k): html.unescape(v) for k, v in _HIDDEN.findall(form.text)}
    async with httpx.AsyncClient(timeout=http.timeout, follow_redirects=False) as provider:
        signed = await http.send(
            provider,
            f"{kind}_provider_sign_in",
            "POST",
            urljoin(authorize, "/authorize"),
            attempt=attempt,
            data={**fields, "email": address},
        )
    back = signed.headers.get("location")
    if signed.status != 302 or back is None:
        return signed
    return await http.send(browser, f"{kind}_callback", "GET", back, attempt=attempt)
