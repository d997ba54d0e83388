"""The load's operations, each through a public surface: the ``/v1`` API as the operator,
the invitee pages as a browser would (the link from the mail, the dev sign-in, Accept).

An operation is tried until it gets an answer that is not "try later" (see
:mod:`soaklib.load_http`), with the same request each time, so a retry never makes a
second of anything: onboarding is idempotent by slug, an invite by address and
generation, an accept or a revoke that already happened says so (410 accepted, 409
invitation-revoked). A re-send is not idempotent (the API takes no idempotency key), so
after an attempt whose outcome is unknown the invitation's token generation is read
first: a re-send that already went through is not sent twice.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from a4c_api.pages.paths import SIGN_IN_DEV_PATH, SIGN_IN_SSO_PATH
from a4c_worker.config import ACCEPT_PATH
from soaklib.facts import InvitationAction, Ledger
from soaklib.load_bad import Bad, refused_as_documented
from soaklib.load_http import Http, Reply, backoff
from soaklib.load_plan import Invitee, Mailbox, Org
from soaklib.load_provider import sign_in_at_provider

MAX_ATTEMPTS = 40
# What the invitation page shows when only the organization's provider may accept.
SSO_ONLY = 'id="sign-in-sso"'
# How often an accept link the pages do not know is tried again before giving up.
UNKNOWN_LINK_TRIES = 5
BAD_CLIENT = 0  # the browser number of bad page requests (invitees count from 1)
ORGS = "/v1/organizations"
# A bootstrap's end; offboarded and kept (its offboarding cancelled) end the plan too.
FINAL = frozenset({"completed", "cancelled", "failed", "offboarded", "kept"})
# Before the first look at a bootstrap, and the most between two looks (seconds).
FIRST_CHECK = 1.0
MAX_CHECK_INTERVAL = 3.0
_FIELD = {name: re.compile(rf'name="{name}" value="([^"]+)"') for name in ("csrf", "invitation_id")}


def form_field(reply: Reply, name: str) -> str | None:
    """The value of the page's form field ``name`` (``csrf``, ``invitation_id``)."""
    found = _FIELD[name].search(reply.text)
    return found.group(1) if found else None


class Ops:
    def __init__(
        self, http: Http, ledger: Ledger, mailbox: Mailbox, in_flight: int, max_body_bytes: int
    ) -> None:
        self.http = http
        self.ledger = ledger
        self.mailbox = mailbox
        self.max_body_bytes = max_body_bytes
        self._in_flight = asyncio.Semaphore(in_flight)
        self.deadline = float("inf")  # loop time past which nothing is tried again

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def unexpected(self, what: str, reply: Reply) -> None:
        said = reply.problem_type() or reply.page_state() or ""
        self.ledger.unexpected.append(f"{what}: {reply.outcome} {said}".rstrip())

    async def answered(
        self,
        send: Callable[[int], Awaitable[Reply]],
        again: Callable[[Reply], bool] = lambda _: False,
    ) -> tuple[Reply | None, bool]:
        """``send(attempt)`` until an answer that is not "try later" (None: given up, at
        :data:`MAX_ATTEMPTS` or the deadline), and whether an earlier attempt may have
        taken effect (it was tried before)."""
        attempt = 0
        while True:
            async with self._in_flight:
                reply = await send(attempt)
            wait = reply.wait
            if wait is None and again(reply):
                wait = backoff(attempt)
            if wait is None:
                return reply, attempt > 0
            attempt += 1
            if attempt >= MAX_ATTEMPTS or self.now() + wait > self.deadline:
                return None, True
            await asyncio.sleep(wait)

    def _act(self, kind: str, invitee: Invitee, reply: Reply | None, done: bool) -> None:
        status = (reply.status or 0) if reply is not None else 0
        self.ledger.actions.append(
            InvitationAction(kind, invitee.org.slug, invitee.email, status, done=done)
        )

    # --- organizations -------------------------------------------------------------------

    async def onboard(self, org: Org) -> None:
        body = org.request()
        reply, _ = await self.answered(
            lambda n: self.http.v1("onboard", "POST", ORGS, attempt=n, json_body=body)
        )
        if reply is None:
            return  # still "new": the settle asks again
        org.record.status = reply.status or 0
        if reply.status in (200, 202):
            org.state = "started"
            org.next_check = self.now() + FIRST_CHECK
            return
        self.unexpected(f"onboard {org.slug}", reply)
        org.state = "refused"
        for invitee in org.invitees:
            invitee.dead = True

    async def check(self, org: Org) -> None:
        """Look at the bootstrap; once completed, learn its invitations' ids."""
        org.checks += 1
        org.next_check = self.now() + min(MAX_CHECK_INTERVAL, FIRST_CHECK * org.checks)
        reply, _ = await self.answered(
            lambda n: self.http.v1("get_organization", "GET", f"{ORGS}/{org.slug}", attempt=n)
        )
        if reply is None or reply.status != 200:
            if reply is not None and reply.status != 404:  # 404: not shown yet
                self.unexpected(f"get_organization {org.slug}", reply)
            return
        view = reply.body()
        progress = view.get("progress") if isinstance(view, dict) else None
        state = progress.get("state") if isinstance(progress, dict) else None
        if state in ("cancelled", "failed"):
            org.state = state
            org.record.cancelled = state == "cancelled"
            for invitee in org.invitees:
                invitee.dead = True
        elif state == "completed" and await self._learn_ids(org):
            org.state = "completed"
            for invitee in org.invitees:
                invitee.waiting_since = self.now()

    async def _learn_ids(self, org: Org) -> bool:
        """The invitations' ids by address (the latest generation); whether all are known."""
        if all(i.invitation_id is not None or i.invited for i in org.invitees):
            return True
        path = f"{ORGS}/{org.slug}/invitations"
        reply, _ = await self.answered(
            lambda n: self.http.v1("list_invitations", "GET", path, attempt=n)
        )
        body = reply.body() if reply is not None and reply.status == 200 else None
        if not isinstance(body, dict):
            return False
        latest: dict[str, tuple[int, UUID, int]] = {}  # address: generation, id, token's
        for found in body.get("invitations", []):
            generation = int(found["generation"])
            if generation > latest.get(found["email"], (0,))[0]:
                latest[found["email"]] = (
                    generation,
                    UUID(found["id"]),
                    int(found["token_generation"]),
                )
        for invitee in org.invitees:
            if invitee.email in latest and invitee.invitation_id is None:
                _, invitee.invitation_id, invitee.token_generation = latest[invitee.email]
        return all(i.invitation_id is not None or i.invited for i in org.invitees)

    async def cancel(self, org: Org) -> None:
        path = f"{ORGS}/{org.slug}/cancel"
        body = {"reason": "soak: cancelled"}
        reply, _ = await self.answered(
            lambda n: self.http.v1("cancel", "POST", path, attempt=n, json_body=body)
        )
        if reply is None:
            return  # still planned: the settle asks again
        org.cancel = False
        org.next_check = self.now()
        if reply.status == 200:
            org.state = "cancelled"
            org.record.cancelled = True
            for invitee in org.invitees:
                invitee.dead = True
        elif reply.problem_type() != "urn:a4c:problem:cancel-refused":
            self.unexpected(f"cancel {org.slug}", reply)
        # Refused: too late (the bootstrap went on), or an earlier attempt cancelled it
        # already; the next look at the bootstrap says which.

    # --- invitations ---------------------------------------------------------------------

    async def invite(self, invitee: Invitee) -> None:
        path = f"{ORGS}/{invitee.org.slug}/invitations"
        body = invitee.request()
        reply, _ = await self.answered(
            lambda n: self.http.v1("invite", "POST", path, attempt=n, json_body=body)
        )
        found = reply.body() if reply is not None and reply.status in (200, 201) else None
        self._act("invite", invitee, reply, done=isinstance(found, dict))
        if reply is None:
            return  # the settle tries again
        if not isinstance(found, dict):
            if not invitee.org.ending:  # refused for an organization being offboarded
                self.unexpected(f"invite at {invitee.org.slug}", reply)
            invitee.dead = True
            return
        invitee.invitation_id = UUID(str(found["id"]))
        invitee.token_generation = int(found["token_generation"])
        invitee.waiting_since = self.now()
        invitee.steps.pop(0)

    def _invitation_path(self, invitee: Invitee, action: str = "") -> str:
        path = f"{ORGS}/{invitee.org.slug}/invitations/{invitee.invitation_id}"
        return f"{path}/{action}" if action else path

    async def revoke(self, invitee: Invitee) -> None:
        path = self._invitation_path(invitee, "revoke")
        body = {"reason": "soak: revoked"}
        reply, retried = await self.answered(
            lambda n: self.http.v1("revoke", "POST", path, attempt=n, json_body=body)
        )
        if reply is None:
            self._act("revoke", invitee, reply, done=False)
            return
        done = reply.status == 200 or (
            retried and reply.problem_type() == "urn:a4c:problem:invitation-revoked"
        )
        self._act("revoke", invitee, reply, done=done)
        if not done and not invitee.org.ending:
            self.unexpected(f"revoke at {invitee.org.slug}", reply)
        invitee.steps.clear()  # revoked, or cannot be: nothing more to do either way

    async def resend(self, invitee: Invitee, *, rescue: bool = False) -> None:
        """A re-send (``rescue``: one the settle makes for a mail that never came)."""
        mails_before = self.mailbox.count(invitee.email)

        async def once(attempt: int) -> Reply:
            if attempt > 0 and await self._resent_already(invitee):
                return Reply("resend", 200, "200", None, text="{}")
            path = self._invitation_path(invitee, "resend")
            return await self.http.v1("resend", "POST", path, attempt=attempt)

        reply, _ = await self.answered(once)
        self._act("resend", invitee, reply, done=reply is not None and reply.ok)
        if reply is None:
            return
        if not reply.ok:
            if not invitee.org.ending:
                self.unexpected(f"resend at {invitee.org.slug}", reply)
            invitee.steps.clear()
            return
        found = reply.body()
        if isinstance(found, dict) and "token_generation" in found:
            invitee.token_generation = int(found["token_generation"])
        invitee.mails_needed = mails_before + 1
        invitee.waiting_since = self.now()
        if rescue:
            invitee.rescues += 1
        elif invitee.steps[:1] == ["resend"]:
            invitee.steps.pop(0)

    async def _resent_already(self, invitee: Invitee) -> bool:
        reply = await self.http.v1("get_invitation", "GET", self._invitation_path(invitee))
        found = reply.body() if reply.status == 200 else None
        return (
            isinstance(found, dict) and found.get("token_generation", 0) > invitee.token_generation
        )

    async def accept(self, invitee: Invitee) -> None:
        link = self.mailbox.newest(invitee.email)
        assert link is not None
        split = urlsplit(link)
        where = f"{split.path}?{split.query}"
        unknown = 0

        def lagging(reply: Reply) -> bool:
            """An unknown link, a few times: the read models may not show it yet (a
            projector that was killed is catching up)."""
            nonlocal unknown
            unknown += reply.page_state() == "unknown"
            return reply.page_state() == "unknown" and unknown <= UNKNOWN_LINK_TRIES

        reply, retried = await self.answered(
            lambda n: self._accept_flow(invitee, where, n), again=lagging
        )
        if reply is None:
            self._act("accept", invitee, reply, done=False)
            return
        state = reply.page_state()
        done = (reply.status == 200 and "You joined" in reply.text) or (
            retried and state == "accepted"
        )
        self._act("accept", invitee, reply, done=done)
        if done:
            invitee.accepted = True
            invitee.steps.clear()
        elif state == "superseded":  # a newer link is on its way: wait for it
            invitee.mails_needed = self.mailbox.count(invitee.email) + 1
            invitee.waiting_since = self.now()
        else:
            # "inactive" (the organization is no longer active) is expected once its
            # offboarding was asked for: the link was opened as it ended.
            if not (invitee.org.ending and state in ("inactive", "revoked")):
                self.unexpected(f"accept at {invitee.org.slug}", reply)
            invitee.steps.clear()

    async def _accept_flow(self, invitee: Invitee, where: str, attempt: int) -> Reply:
        """Open the link, sign in (dev), press Accept: the last page reached. Where the
        organization's single sign-on covers the invitee (the page offers only its
        provider, or says so once single sign-on went active meanwhile), sign in there
        instead, which accepts."""
        async with self.http.browser(self.http.next_api(), invitee.number) as browser:
            send = self.http.send
            page = await send(browser, "accept_page", "GET", where, attempt=attempt)
            if SSO_ONLY in page.text:
                return await self._accept_through_provider(browser, invitee, attempt)
            csrf = form_field(page, "csrf")
            if page.status != 200 or csrf is None:
                return page
            form = {"csrf": csrf, "email": invitee.email}
            page = await send(
                browser, "sign_in", "POST", SIGN_IN_DEV_PATH, attempt=attempt, data=form
            )
            csrf, invitation = form_field(page, "csrf"), form_field(page, "invitation_id")
            if page.status != 200 or csrf is None or invitation is None:
                return page
            form = {"csrf": csrf, "invitation_id": invitation}
            page = await send(browser, "accept", "POST", ACCEPT_PATH, attempt=attempt, data=form)
            if SSO_ONLY in page.text:
                return await self._accept_through_provider(browser, invitee, attempt)
            return page

    async def _accept_through_provider(
        self, browser: httpx.AsyncClient, invitee: Invitee, attempt: int
    ) -> Reply:
        """Off to the organization's provider (the browser follows a4c's redirect to its
        sign-in form), signed in there as the invitee: the page it came back to."""
        form = await self.http.send(
            browser, "sso_accept_start", "GET", SIGN_IN_SSO_PATH, attempt=attempt
        )
        if form.status != 200 or urlsplit(form.url).path != "/authorize":
            return form  # a4c's own page: the invitation is no longer pending, say
        reply = await sign_in_at_provider(
            self.http, browser, form, form.url, invitee.email, kind="sso_accept", attempt=attempt
        )
        if reply.status == 200 and "You joined" in reply.text:
            trial = next((t for t in self.ledger.sso if t.slug == invitee.org.slug), None)
            if trial is not None and invitee.email not in trial.accepted_through:
                trial.accepted_through.append(invitee.email)
        return reply

    # --- bad requests --------------------------------------------------------------------

    async def bad(self, bad: Bad, expected_name: str | None) -> None:
        kind = f"bad:{bad.case}"

        async def once(attempt: int) -> Reply:
            if not bad.page:
                return await self.http.v1(
                    kind, bad.method, bad.path, attempt=attempt, json_body=bad.json_body,
                    content=bad.content, headers=bad.headers, key=bad.key,
                )  # fmt: skip
            async with self.http.browser(self.http.next_api(), BAD_CLIENT) as browser:
                return await self.http.send(
                    browser, kind, bad.method, bad.path, attempt=attempt, data=bad.form
                )

        reply, _ = await self.answered(once)
        if reply is None:
            return
        if reply.ok:
            self.ledger.violations.append(f"{kind}: a bad request answered {reply.status}")
        elif not refused_as_documented(bad, reply.status, reply.problem_type(), reply.page_state()):
            said = reply.problem_type() or reply.page_state() or "no type"
            self.ledger.violations.append(
                f"{kind}: answered {reply.status} {said}, not {bad.status} {bad.kind}"
            )
        if bad.absent_slug is not None:
            await self._nothing_stored(kind, bad.absent_slug)
        elif expected_name is not None:
            await self._unchanged(kind, bad, expected_name)

    async def _nothing_stored(self, kind: str, slug: str) -> None:
        reply, _ = await self.answered(
            lambda n: self.http.v1("bad_lookup", "GET", f"{ORGS}/{slug}", attempt=n)
        )
        if reply is not None and reply.status != 404:
            self.ledger.violations.append(f"{kind}: refused, but GET found {reply.status}")

    async def _unchanged(self, kind: str, bad: Bad, name: str) -> None:
        slug = bad.json_body["slug"]
        reply, _ = await self.answered(
            lambda n: self.http.v1("bad_lookup", "GET", f"{ORGS}/{slug}", attempt=n)
        )
        found = reply.body() if reply is not None and reply.status == 200 else None
        org = found.get("organization") if isinstance(found, dict) else None
        if isinstance(org, dict) and org.get("name") != name:
            self.ledger.violations.append(f"{kind}: refused, but the organization changed")
