"""The soak's load: operations at a fixed rate through the public surfaces, and a settle.

``Load.run`` draws one operation every ``1/rate`` seconds, whatever the answers (an open
loop: a slow or dead API does not slow the arrivals), spread over every API:
onboardings with 0-3 invitees (some with a domain below ``dns_zone``, some planned to be
cancelled while their bootstrap waits for DNS), the next step of an invitee whose mail
came (accept through the pages, revoke, re-send), invites through the API, cancels,
offboardings of completed organizations (some cancelled in their grace period:
:mod:`soaklib.load_offboard`), single sign-on through the organization's own provider
for a few completed ones (:mod:`soaklib.load_sso`, when given an ``sso`` setup), and
about 10% deliberately bad requests
(:mod:`soaklib.load_bad`). How each is sent, retried
and judged: :mod:`soaklib.load_ops`, :mod:`soaklib.load_http`.

Bounded: at most ``max_in_flight`` requests at once, at most ``max_pending`` operations
alive (in flight or waiting to try again); an arrival past that is shed and counted
(``requests["load"]["shed"]``), so an API that is down grows nothing.

``Load.settle`` (after the faults stop) finishes every invitee's plan (accepting the
invitations whose mails came late, re-sending one whose mail never came), asks again what
gave up, cancels what was planned, offboards every completed organization planned to be
offboarded, takes every single sign-on's remaining steps and waits for every bootstrap
and offboarding to end, within its timeout;
what it could not finish is listed in ``Ledger.unfinished``.

Requests are counted by kind: ``onboard``, ``get_organization``, ``list_invitations``,
``get_invitation``, ``invite``, ``revoke``, ``resend``, ``cancel``, ``offboard``,
``get_offboarding``, ``cancel_offboarding``, the accept pages' ``accept_page`` (the
link), ``sign_in`` (dev) and ``accept`` (the button), ``bad:<case>`` and ``bad_lookup``
(the "nothing stored" look); single sign-on's ``put_sso``, ``get_sso``,
``post_email_domain``, ``verify_email_domain``, ``list_email_domains``, the test
sign-in's ``sso_test_page``, ``sso_sign_in``, ``sso_provider_form``,
``sso_provider_sign_in``, ``sso_callback``, and ``delete_sso``; ``publish_txt`` (the
challenges published at BIND); ``load`` counts arrivals shed or never started.

The APIs should run with ``API_RESEND_COOLDOWN_SECONDS=0`` (the load re-sends once the
first mail came; with the 60 s default a re-send waits out its 429s) and must share
``DNS_ZONE`` with the worker (``dns_zone``). Each invitee's browser uses a loopback
address of its own (127.0.x.y) when the APIs are on 127.0.0.1, so the per-client accept
limit counts people apart.

Deterministic given the generator's seed (which operation, which names, which fate),
modulo timing: what can be done when a draw happens depends on what has arrived.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine
from email.message import EmailMessage
from typing import Any, Protocol, TypeVar

from soaklib import load_offboard, load_sso
from soaklib.facts import Ledger, Onboarding
from soaklib.load_bad import Existing, draw
from soaklib.load_http import Http
from soaklib.load_ops import FINAL, Ops
from soaklib.load_plan import Invitee, Mailbox, Org, fate, person

# Shares of the operations drawn (a kind with nothing to act on falls back to onboarding).
WEIGHTS = {"onboard": 0.28, "step": 0.42, "invite": 0.08, "cancel": 0.12, "bad": 0.10,
           "offboard": 0.05, "sso": 0.05}  # fmt: skip
CANCEL_SHARE = 0.5  # of onboardings with a domain: planned to be cancelled
DOMAIN_SHARE = 0.6  # of onboardings: with a DNS name below the zone
# A bootstrap's timing: no propagation wait, verified as soon as BIND answers.
TIMING = {"propagation_wait_seconds": 0, "dns_verify_attempts": 20,
          "dns_verify_initial_interval_seconds": 0.5}  # fmt: skip
# The DNS wait of a bootstrap planned to be cancelled: time for the cancel to arrive.
CANCEL_WAIT = 30.0
HOUSEKEEPING_INTERVAL = 0.2
MAX_RESCUES = 2  # re-sends the settle makes for an invitee whose mail never came
T = TypeVar("T")


class MailSource(Protocol):
    def messages(self) -> list[EmailMessage]:
        """What the SMTP sink has received so far, in order (the list only grows)."""
        ...


class Load:
    def __init__(
        self,
        api_urls: list[str],
        api_key: str,
        mails: MailSource,
        rng: random.Random,
        rate: float,
        ledger: Ledger,
        *,
        dns_zone: str,
        request_timeout: float = 15.0,
        max_in_flight: int = 32,
        max_pending: int = 256,
        max_body_bytes: int = 1 << 20,
        mail_grace: float = 10.0,
        prefix: str = "soak",
        sso: load_sso.SSOSetup | None = None,
    ) -> None:
        """``dns_zone``: the worker's DNS_ZONE; ``max_body_bytes``: the APIs'
        API_MAX_BODY_BYTES; ``mail_grace``: how long the settle waits for a mail before
        re-sending the invitation; ``prefix``: of every slug; ``sso``: the provider
        organizations are given (None: no single sign-on is drawn)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.ledger = ledger
        self.zone = dns_zone.rstrip(".")
        self.mail_grace = mail_grace
        self.prefix = prefix
        self.max_pending = max_pending
        self._rng = rng
        self._sso = sso
        self._weights = (
            WEIGHTS if sso is not None else {k: v for k, v in WEIGHTS.items() if k != "sso"}
        )
        self._mails = mails
        self._mailbox = Mailbox()
        self._http = Http(api_urls, api_key, ledger, request_timeout)
        self._ops = Ops(self._http, ledger, self._mailbox, max_in_flight, max_body_bytes)
        self._max_checks = max(2, max_in_flight // 4)
        self._orgs: list[Org] = []
        self._invitees: list[Invitee] = []
        self._tasks: set[asyncio.Task[None]] = set()
        # Drawn operations not started yet (nothing to act on yet): kind, pick, own rng.
        self._owed: list[tuple[str, float, random.Random]] = []
        self._closed = False

    # --- the two phases --------------------------------------------------------------

    async def run(self, duration: float, until: asyncio.Event | None = None) -> None:
        """Draw an operation every ``1/rate`` s for ``duration`` s, and on until ``until``
        is set if given (the soak's last fault has recovered: recovery is measured on
        events written after a fault). Operations still running go on; :meth:`settle`
        waits for them."""
        loop = asyncio.get_running_loop()
        keeper = asyncio.create_task(self._keep_house())
        start = loop.time()
        try:
            n = 0
            while n < duration * self.rate or (until is not None and not until.is_set()):
                due = start + n / self.rate
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                self._arrive()
                n += 1
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def settle(self, timeout: float) -> None:  # noqa: ASYNC109 - the soak's API
        """Finish what is pending, within ``timeout`` s; then stop every request."""
        loop = asyncio.get_running_loop()
        self._ops.deadline = loop.time() + timeout
        try:
            while loop.time() < self._ops.deadline:
                self._housekeeping()
                self._finish_plans()
                if not self._tasks and self._all_done():
                    break
                await asyncio.sleep(HOUSEKEEPING_INTERVAL)
            self._note_unfinished()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop every operation and close the connections (settle does it)."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    # --- drawing ---------------------------------------------------------------------

    def _arrive(self) -> None:
        """One arrival: what it is, drawn now (so a seed draws the same sequence whatever
        the timing); started now, or as soon as there is something to do it on."""
        kinds, shares = zip(*self._weights.items(), strict=True)
        kind = self._rng.choices(kinds, shares)[0]
        pick = self._rng.random()  # which candidate, among those there are then
        own = random.Random(self._rng.getrandbits(64))  # its names, fates, bad case
        self._owed.append((kind, pick, own))
        while len(self._owed) > self.max_pending:
            self.ledger.count("load", f"shed:{self._owed.pop(0)[0]}")
        self._start_owed()

    def _start_owed(self) -> None:
        """Start every drawn operation that has something to act on, in drawing order."""
        waiting = []
        blocked: set[str] = set()  # kinds with nothing to act on in this pass
        for kind, pick, own in self._owed:
            if kind in blocked or not self._start(kind, pick, own):
                blocked.add(kind)
                waiting.append((kind, pick, own))
        self._owed = waiting

    def _start(self, kind: str, pick: float, own: random.Random) -> bool:
        def one(candidates: list[T]) -> T:
            return candidates[int(pick * len(candidates))]

        if kind == "step":
            if not (ready := self._ready()):
                return False
            invitee = one(ready)
            self._spawn(self._step(invitee), invitee)
        elif kind == "invite":
            if not (orgs := self._live()):
                return False
            invitee = self._new_invitee(one(orgs), ["invite", *fate(own)], own)
            self._spawn(self._ops.invite(invitee), invitee)
        elif kind == "cancel":
            if not (planned := [o for o in self._orgs_in("started") if o.cancel]):
                return False
            org = one(planned)
            self._spawn(self._ops.cancel(org), org)
        elif kind == "offboard":
            if not (planned := self._to_offboard()):
                return False
            org = one(planned)
            self._spawn(load_offboard.offboard(self._ops, org), org)
        elif kind == "sso":
            if self._sso is None or not (chosen := load_sso.candidates(self._orgs)):
                return False
            org = one(chosen)
            org.sso = load_sso.plan(own, org, self._sso)
            self.ledger.sso.append(org.sso.record)
            self._spawn(load_sso.advance(self._ops, self._sso, org), org)
        elif kind == "bad":
            done = self._live()
            target = one(done) if done else None
            existing = Existing(target.slug, target.name, target.request()) if target else None
            bad = draw(own, self.zone, existing, self._ops.max_body_bytes)
            name = target.name if target is not None and bad.case == "slug_conflict" else None
            self._spawn(self._ops.bad(bad, name), None)
        else:
            org = self._new_org(own)
            self._spawn(self._ops.onboard(org), org)
        return True

    def _new_org(self, rng: random.Random) -> Org:
        number = len(self._orgs) + 1
        slug = f"{self.prefix}-{number:05d}-{rng.getrandbits(24):06x}"
        with_domain = rng.random() < DOMAIN_SHARE
        cancel = with_domain and rng.random() < CANCEL_SHARE
        timing = {**TIMING, "propagation_wait_seconds": CANCEL_WAIT} if cancel else dict(TIMING)
        domain = f"{slug}.{self.zone}" if with_domain else None
        org = Org(
            number=number,
            slug=slug,
            name=f"Soak Org {number}",
            domain=domain,
            timing=timing,
            cancel=cancel,
            record=Onboarding(slug=slug, domain=domain, invitees=[], status=0),
        )
        for _ in range(rng.randint(0, 3)):
            self._new_invitee(org, fate(rng), rng)
        org.record.invitees = [i.email for i in org.invitees]
        org.offboard = load_offboard.plan(rng, slug)
        self._orgs.append(org)
        self.ledger.onboardings.append(org.record)
        if org.offboard is not None:
            self.ledger.offboardings.append(org.offboard)
        return org

    def _new_invitee(self, org: Org, steps: list[str], rng: random.Random) -> Invitee:
        invitee = person(rng, len(self._invitees) + 1, org, steps)
        org.invitees.append(invitee)
        self._invitees.append(invitee)
        return invitee

    def _orgs_in(self, state: str) -> list[Org]:
        return [o for o in self._orgs if o.state == state and not o.busy]

    def _live(self) -> list[Org]:
        """Organizations to invite people to: completed (or kept after a cancelled
        offboarding), and not being offboarded."""
        return [o for o in self._orgs if o.live and not (o.busy or o.ending)]

    def _to_offboard(self) -> list[Org]:
        return [o for o in self._orgs_in("completed") if o.offboard is not None]

    def _ready(self) -> list[Invitee]:
        """Invitees whose next step can be taken now (its mail came, for an accept or a
        re-send; its bootstrap has completed and its invitation's id is known)."""
        return [
            i
            for i in self._invitees
            if not (i.busy or i.finished or i.invitation_id is None)
            and i.org.live
            and not i.org.ending
            and i.steps[0] != "invite"
            and (i.steps[0] == "revoke" or self._mailbox.count(i.email) >= i.mails_needed)
        ]

    # --- running operations ----------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], subject: Org | Invitee | None) -> None:
        if self._closed or len(self._tasks) >= self.max_pending:
            work.close()
            self.ledger.count("load", "shed")
            return
        if subject is not None:
            subject.busy = True
        task = asyncio.create_task(self._guarded(work, subject))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(
        self, work: Coroutine[Any, Any, None], subject: Org | Invitee | None
    ) -> None:
        try:
            await work
        except Exception as exc:  # a fault of the load itself: said, never hidden
            # The type only: an HTTP error's text may hold a URL with a token.
            self.ledger.unexpected.append(f"load error: {type(exc).__name__}")
        finally:
            if subject is not None:
                subject.busy = False

    async def _step(self, invitee: Invitee) -> None:
        step = invitee.steps[0]
        if step == "accept":
            await self._ops.accept(invitee)
        elif step == "revoke":
            await self._ops.revoke(invitee)
        else:
            await self._ops.resend(invitee)

    async def _keep_house(self) -> None:
        while True:
            self._housekeeping()
            await asyncio.sleep(HOUSEKEEPING_INTERVAL)

    def _housekeeping(self) -> None:
        """Read the new mails; start the drawn operations that can start now; look at
        the bootstraps due for a look (a few at a time)."""
        self._mailbox.absorb(self._mails.messages())
        self._start_owed()
        now = asyncio.get_running_loop().time()
        checking = sum(1 for o in self._orgs if o.busy and o.state == "started")
        for org in self._orgs_in("started"):
            if checking >= self._max_checks:
                break
            # One planned to be cancelled is looked at once the cancel was tried.
            if org.next_check <= now and not org.cancel:
                self._spawn(self._ops.check(org), org)
                checking += 1
        for org in self._orgs_in("offboarding"):
            if org.next_check <= now:
                self._spawn(load_offboard.follow(self._ops, org), org)
        self._advance_sso(now)

    def _advance_sso(self, now: float) -> None:
        """Take again the single sign-on steps that gave up for a while."""
        if self._sso is None:
            return
        for org in self._orgs:
            if load_sso.due(org, now):
                self._spawn(load_sso.advance(self._ops, self._sso, org), org)

    def _finish_plans(self) -> None:
        """The settle's share: every step that can be taken now, every onboarding or
        invite that gave up, every planned cancel; a re-send for a mail that never came."""
        now = asyncio.get_running_loop().time()
        for org in self._orgs:
            if not org.busy and org.state == "new":
                self._spawn(self._ops.onboard(org), org)
            elif not org.busy and org.state == "started" and org.cancel:
                self._spawn(self._ops.cancel(org), org)
        for org in self._to_offboard():
            self._spawn(load_offboard.offboard(self._ops, org), org)
        self._advance_sso(now)
        for invitee in self._ready():
            self._spawn(self._step(invitee), invitee)
        for invitee in self._invitees:
            if invitee.busy or invitee.finished or not invitee.org.live or invitee.org.ending:
                continue
            if invitee.steps[0] == "invite":
                self._spawn(self._ops.invite(invitee), invitee)
            elif (
                invitee.invitation_id is not None
                and self._mailbox.count(invitee.email) < invitee.mails_needed
                and now - invitee.waiting_since > self.mail_grace
                and invitee.rescues < MAX_RESCUES
            ):
                self._spawn(self._ops.resend(invitee, rescue=True), invitee)

    def _all_done(self) -> bool:
        """Every bootstrap and offboarding ended, every plan done, every drawn invite
        made (steps and cancels drawn but never started are moot: the plans cover them)."""
        invites_owed = any(kind == "invite" for kind, _, _ in self._owed)
        return (
            all(o.state in FINAL or o.state == "refused" for o in self._orgs)
            and not any(o.offboard is not None for o in self._orgs_in("completed"))
            and all(i.finished for i in self._invitees)
            and not any(load_sso.unfinished(o) for o in self._orgs)
            and not (invites_owed and self._live())
        )

    def _note_unfinished(self) -> None:
        for kind, _, _ in self._owed:
            self.ledger.count("load", f"never-started:{kind}")
        for org in self._orgs:
            if org.state not in FINAL and org.state != "refused":
                self.ledger.unfinished.append(f"onboarding {org.slug}: {org.state}")
            elif org.state == "completed" and org.offboard is not None:
                self.ledger.unfinished.append(f"offboarding {org.slug}: never started")
            if (left := load_sso.unfinished(org)) is not None:
                self.ledger.unfinished.append(left)
        for i in self._invitees:
            if not i.finished:
                self.ledger.unfinished.append(
                    f"invitee {i.number} of {i.org.slug} ({i.org.state}): "
                    f"{', '.join(i.steps)} not done "
                    f"({self._mailbox.count(i.email)} of {i.mails_needed} mails)"
                )
