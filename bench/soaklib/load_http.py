"""The load's requests: one HTTP request, bounded in time, judged and counted.

Every request is counted in ``Ledger.requests`` under its kind and outcome (the status,
or ``timeout`` / ``connect_error`` / ``disconnected`` when no answer came). What a fault
excuses is told apart from what it does not (issue 18: "no request may answer 5xx other
than 503 with Retry-After during a fault"): a 503 with ``Retry-After``, a timeout or a
lost connection is tried again later; any other 5xx, or a 503 without ``Retry-After``, is
a violation (kind and status only: never a URL, which may hold a token) and is tried
again too, so the run's state still converges. A 429 that passes with time (a re-send's
cooldown, the accept throttle) and a 408 (the body came too slowly) are tried again too.
An oversized body may meet a cut connection rather than its 413 (the API answers and
closes before reading it): ``disconnected``, tried again like any other.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from soaklib.facts import Ledger

PROBLEM_JSON = "application/problem+json"
# The longest a Retry-After is honoured (seconds): the load keeps moving past it.
MAX_WAIT = 10.0
# The pause before trying again when the answer said nothing (doubling from the first).
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 5.0
# How long an API that refused a connection is passed over (seconds).
DOWN_FOR = 2.0
_STATE = re.compile(r'data-state="([a-z_]+)"')


def backoff(attempt: int) -> float:
    """The pause before attempt ``attempt + 1`` when no ``Retry-After`` said how long."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2.0**attempt)


@dataclass(frozen=True)
class Reply:
    """What one request got. ``wait`` is not None when it should be tried again, after
    that many seconds; ``status`` is None when no answer came."""

    kind: str
    status: int | None
    outcome: str
    wait: float | None
    text: str = ""
    content_type: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    url: str = ""  # where the answer came from (after the redirects followed)

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def body(self) -> Any:
        """The JSON body (None if it is none)."""
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    def problem_type(self) -> str | None:
        """The problem's ``type`` when the answer is ``application/problem+json``."""
        if self.content_type.split(";")[0].strip() != PROBLEM_JSON:
            return None
        found = self.body()
        kind = found.get("type") if isinstance(found, dict) else None
        return kind if isinstance(kind, str) else None

    def page_state(self) -> str | None:
        """The state a notice page names (``data-state``), for the invitee pages."""
        found = _STATE.search(self.text)
        return found.group(1) if found else None


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return min(MAX_WAIT, max(0.0, float(value)))
    except ValueError:
        return MAX_WAIT  # an HTTP date: honoured as the longest wait


def _passing(answer: httpx.Response) -> bool:
    """A 429 that passes with time (a cooldown, the accept throttle), not a limit the
    load should stop at (too many re-sends, invitations or pending invitations)."""
    if not answer.headers.get("content-type", "").startswith(PROBLEM_JSON):
        return True  # a page's notice: the accept throttle
    try:
        found = answer.json()
    except ValueError:
        return False
    return isinstance(found, dict) and found.get("type") == "urn:a4c:problem:resend-too-soon"


class Http:
    """Sends the load's requests to the APIs in turn, each bounded by ``timeout``."""

    def __init__(self, api_urls: list[str], api_key: str, ledger: Ledger, timeout: float) -> None:
        if not api_urls:
            raise ValueError("the load needs at least one API URL")
        self.api_urls = [url.rstrip("/") for url in api_urls]
        self.api_key = api_key
        self.ledger = ledger
        self.timeout = timeout
        self._turn = 0
        self._down_until: dict[str, float] = {}  # API: when to try it again
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_keepalive_connections=16),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def next_api(self) -> str:
        """The API for the next request: each in turn (so both share every kind), but
        not one that just refused a connection while another may answer (as a load
        balancer does; a request that met it tries again, on the other)."""
        now = time.monotonic()
        for _ in self.api_urls:
            url = self.api_urls[self._turn % len(self.api_urls)]
            self._turn += 1
            if self._down_until.get(url, 0.0) <= now:
                return url
        return url  # every one is down: in turn anyway

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key if key is None else key}"}

    async def v1(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        attempt: int = 0,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        key: str | None = None,
    ) -> Reply:
        """A ``/v1`` request as the operator (``key``: another credential; ``""``: none)."""
        sent = dict(headers or {})
        if key != "":
            sent.update(self.auth(key))
        return await self.send(
            self._client,
            kind,
            method,
            self.next_api() + path,
            attempt=attempt,
            json_body=json_body,
            content=content,
            headers=sent,
        )

    async def send(
        self,
        client: httpx.AsyncClient,
        kind: str,
        method: str,
        url: str,
        *,
        attempt: int = 0,
        json_body: Any = None,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request (redirects as ``client`` follows them), judged and counted."""
        try:
            async with asyncio.timeout(self.timeout):
                answer = await client.request(
                    method, url, json=json_body, content=content, data=data, headers=headers
                )
        except (TimeoutError, httpx.TimeoutException):
            return self._unanswered(kind, "timeout", attempt)
        except httpx.ConnectError as exc:
            self._went_down(str(exc.request.url))
            return self._unanswered(kind, "connect_error", attempt)
        except httpx.TransportError:  # the server went away mid-request
            return self._unanswered(kind, "disconnected", attempt)
        return self._judged(kind, answer, attempt)

    def _went_down(self, url: str) -> None:
        for api in self.api_urls:
            if url.startswith(api):
                self._down_until[api] = time.monotonic() + DOWN_FOR

    def _unanswered(self, kind: str, outcome: str, attempt: int) -> Reply:
        self.ledger.count(kind, outcome)
        return Reply(kind, None, outcome, backoff(attempt))

    def _judged(self, kind: str, answer: httpx.Response, attempt: int) -> Reply:
        status = answer.status_code
        outcome = str(status)
        wait: float | None = None
        if status == 503:
            wait = _retry_after(answer.headers)
            if wait is None:
                outcome = "503-without-retry-after"
                self.ledger.violations.append(f"{kind}: 503 without Retry-After")
                wait = backoff(attempt)
        elif status >= 500:
            self.ledger.violations.append(f"{kind}: answered {status}")
            wait = backoff(attempt)
        elif status == 429 and _passing(answer):
            wait = _retry_after(answer.headers) or backoff(attempt)
        elif status == 408:  # the body did not arrive in time (a stalled process): again
            wait = backoff(attempt)
        self.ledger.count(kind, outcome)
        return Reply(
            kind,
            status,
            outcome,
            wait,
            text=answer.text,
            content_type=answer.headers.get("content-type", ""),
            headers=dict(answer.headers),
            url=str(answer.url),
        )

    def browser(self, api: str, client_number: int) -> httpx.AsyncClient:
        """A browser of its own for one person: cookies, redirects followed, and (on a
        loopback API) a loopback address of its own, so the API's per-client accept
        limit counts each person apart as it would real browsers."""
        transport: httpx.AsyncHTTPTransport | None = None
        host = urlsplit(api).hostname or ""
        if host.startswith("127."):
            local = f"127.0.{1 + client_number // 250 % 250}.{2 + client_number % 250}"
            transport = httpx.AsyncHTTPTransport(local_address=local)
        return httpx.AsyncClient(
            base_url=api, timeout=self.timeout, follow_redirects=True, transport=transport
        )
