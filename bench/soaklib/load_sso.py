"""The load's single sign-on: an organization's own OpenID provider, end to end.

A completed organization (not planned to be offboarded) with an owner or admin who
accepted through the pages is given the soak's second test provider (:func:`plan`), in
steps (:data:`soaklib.load_plan.SSOStep`), each of which may give up under the faults
and be taken again later (the run's housekeeping and the settle call :func:`advance`):

``configure``
    ``PUT /v1/organizations/{slug}/sso`` as the operator, then ``GET …/sso`` until the
    configuration waits for its test (a refused or abandoned one is asked for again).
``domain``
    ``POST …/email-domains`` for the invitees' domain, its TXT challenge published at
    the soak's BIND (a TSIG-signed update, as the domain's owner would), ``POST
    …/verify``, then ``GET …/email-domains`` until it is verified.
``test``
    The admin's test sign-in as a browser would, over plain HTTP: the dev sign-in on
    ``/sso/test/{slug}``, the provider's authorize link from the "ready" page, the
    provider's form posted with an address in the domain, and back to
    ``/sso/callback``: "active". Some first sign in as an address the provider does not
    vouch for (``mark_unverified``): "failed" (``EmailNotVerified``), then again.
``deactivate``
    Some: ``DELETE …/sso`` once active; single sign-on is then no longer in force.

Every request goes through :meth:`Ops.answered` (retried with the same request while
the answer is "try later"); each step is idempotent when asked again (the same PUT is
``sso-configuration-running`` or a no-op, the same domain the same challenge, a sign-in
whose answer was lost shows as active). Another step (an invitee accepting through the
organization's provider once it is active and its domain verified) goes after ``test``
in :data:`STEPS` and :func:`advance`.
"""

from __future__ import annotations

import asyncio
import html
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import dns.asyncquery
import dns.exception
import dns.name
import dns.rcode
import dns.tsigkeyring
import dns.update
import httpx

from a4c_api.pages.paths import SIGN_IN_DEV_PATH, SSO_TEST_PATH
from soaklib.facts import SSOTrial
from soaklib.load_http import Reply, backoff
from soaklib.load_ops import ORGS, Ops, form_field
from soaklib.load_plan import Org, SSOPlan, SSOStep, mail_domain
from soaklib.load_provider import sign_in_at_provider

FAIL_FIRST_SHARE = 0.4  # of the organizations: a first test sign-in that must fail
DEACTIVATE_SHARE = 0.4  # of them: single sign-on ended once active
ADMIN_ROLES = ("owner", "admin")
STEPS: tuple[SSOStep, ...] = ("configure", "domain", "test", "deactivate")
LOOK_INTERVAL = 1.0  # seconds between two looks at a configuration or a domain
MAX_LOOKS = 30  # looks in one go before the step gives up until its next turn
RETRY_LATER = 3.0  # seconds before a step that gave up is taken again
MAX_CONFIGURES = 4  # PUTs answered for one organization (a refused one is asked again)
MAX_SIGN_INS = 8  # test sign-ins tried for one organization
DNS_TIMEOUT = 5.0
NOT_VERIFIED = "EmailNotVerified"
_AUTHORIZE = re.compile(r'id="continue" href="([^"]+)"')
_FAILURE = re.compile(r'id="failure" data-type="([^"]*)"')


class Provider(Protocol):
    """The organizations' provider as the load needs it (``tests.servers.oidc``'s)."""

    @property
    def issuer(self) -> str: ...

    def mark_unverified(self, email: str) -> None:
        """From now on ``email``'s sign-ins say its address is not verified."""
        ...


@dataclass(frozen=True)
class TxtPublisher:
    """Publishes TXT records in a zone of the soak's BIND, as the domain's owner would."""

    host: str
    port: int
    zone: str
    key_name: str
    secret: str = field(repr=False)
    algorithm: str

    async def publish(self, name: str, value: str) -> None:
        """Add ``value`` at ``name`` (again: nothing changes); raises when BIND did not
        take it (down, or refused)."""
        keyring = dns.tsigkeyring.from_text({self.key_name: self.secret})
        update = dns.update.UpdateMessage(
            self.zone, keyring=keyring, keyalgorithm=dns.name.from_text(self.algorithm)
        )
        update.add(name.rstrip(".") + ".", 60, "TXT", f'"{value}"')
        answer = await dns.asyncquery.tcp(update, self.host, port=self.port, timeout=DNS_TIMEOUT)
        if answer.rcode() != dns.rcode.NOERROR:
            raise RuntimeError(f"BIND refused the update: {dns.rcode.to_text(answer.rcode())}")


@dataclass(frozen=True)
class SSOSetup:
    """What the load configures organizations with: the provider and a client registered
    there for every API's callback, and where the domains' challenges are published."""

    provider: Provider
    client_id: str
    client_secret: str = field(repr=False)
    txt: TxtPublisher


def candidates(orgs: list[Org]) -> list[Org]:
    """Organizations to give single sign-on: live, not being offboarded (nor planned
    to be), none yet, and an owner or admin among the members the load made."""
    return [
        o
        for o in orgs
        if o.live
        and not (o.busy or o.ending)
        and o.offboard is None
        and o.sso is None
        and _admin(o) is not None
    ]


def _admin(org: Org) -> Any:
    found = [i for i in org.invitees if i.accepted and i.role in ADMIN_ROLES]
    return found[0] if found else None


def plan(rng: random.Random, org: Org, setup: SSOSetup) -> SSOPlan:
    admin = _admin(org)
    assert admin is not None  # a candidate
    record = SSOTrial(
        slug=org.slug,
        issuer=setup.provider.issuer,
        domain=mail_domain(org.slug),
        fail_first=rng.random() < FAIL_FIRST_SHARE,
        deactivate=rng.random() < DEACTIVATE_SHARE,
    )
    steps = [s for s in STEPS if s != "deactivate" or record.deactivate]
    return SSOPlan(record=record, admin=admin, steps=[*steps, "done"])


def due(org: Org, now: float) -> bool:
    """Whether the organization's single sign-on has a step to take now."""
    return org.sso is not None and not org.sso.done and not org.busy and org.sso.next_try <= now


async def advance(ops: Ops, setup: SSOSetup, org: Org) -> None:
    """Take the organization's next steps, until done or one gives up for now."""
    sso = org.sso
    assert sso is not None
    take: dict[SSOStep, Callable[[Ops, SSOSetup, Org, SSOPlan], Awaitable[bool]]] = {
        "configure": _configure,
        "domain": _domain,
        "test": _test,
        "deactivate": _deactivate,
    }
    while not sso.done:
        if org.ending or not org.live:
            return  # the organization ended another way: nothing more to do here
        if not await take[sso.steps[0]](ops, setup, org, sso):
            sso.next_try = ops.now() + RETRY_LATER
            return
        sso.steps.pop(0)


def unfinished(org: Org) -> str | None:
    sso = org.sso
    if sso is None or sso.done or org.ending or not org.live:
        return None
    return f"single sign-on of {org.slug}: {', '.join(sso.steps[:-1])} not done"


# --- the steps: each True when done, False when it gave up for now --------------------


def _sso_path(org: Org) -> str:
    return f"{ORGS}/{org.slug}/sso"


async def _configure(ops: Ops, setup: SSOSetup, org: Org, sso: SSOPlan) -> bool:
    state = await _configuration(ops, org)
    if state in ("checking_provider", "configuring"):
        return await _wait_configured(ops, org)
    if state in ("waiting_for_test", "activating", "active"):
        sso.record.configured = True
        return True
    if sso.configures >= MAX_CONFIGURES:
        return False  # refused again and again: left unfinished, for a person to read
    body = {
        "issuer": setup.provider.issuer,
        "client_id": setup.client_id,
        "client_secret": setup.client_secret,
    }
    reply, retried = await ops.answered(
        lambda n: ops.http.v1("put_sso", "PUT", _sso_path(org), attempt=n, json_body=body)
    )
    if reply is None:
        return False
    sso.configures += 1
    sso.record.status = reply.status or 0
    running = reply.problem_type() == "urn:a4c:problem:sso-configuration-running"
    if not (reply.status == 202 or (retried and running)):
        ops.unexpected(f"put_sso {org.slug}", reply)
        return False
    sso.record.configured = True
    return await _wait_configured(ops, org)


async def _configuration(ops: Ops, org: Org) -> str | None:
    """The latest configuration's state, ``"active"`` once one is in force, None for
    none (or no answer)."""
    reply, _ = await ops.answered(
        lambda n: ops.http.v1("get_sso", "GET", _sso_path(org), attempt=n)
    )
    view = reply.body() if reply is not None and reply.status == 200 else None
    if not isinstance(view, dict):
        if reply is not None:
            ops.unexpected(f"get_sso {org.slug}", reply)
        return None
    if view.get("state") == "active":
        return "active"
    progress = view.get("configuration")
    state = progress.get("state") if isinstance(progress, dict) else None
    return state if isinstance(state, str) else None


async def _wait_configured(ops: Ops, org: Org) -> bool:
    """Until the configuration waits for its test (or is active already)."""
    for _ in range(MAX_LOOKS):
        state = await _configuration(ops, org)
        if state in ("waiting_for_test", "activating", "active"):
            return True
        if state in ("refused", "abandoned"):
            return False  # asked for again on the next turn
        await asyncio.sleep(LOOK_INTERVAL)
    return False


async def _domain(ops: Ops, setup: SSOSetup, org: Org, sso: SSOPlan) -> bool:
    domains = f"{ORGS}/{org.slug}/email-domains"
    body = {"domain": sso.record.domain}
    reply, _ = await ops.answered(
        lambda n: ops.http.v1("post_email_domain", "POST", domains, attempt=n, json_body=body)
    )
    asked = reply.body() if reply is not None and reply.status in (200, 202) else None
    if not isinstance(asked, dict):
        if reply is not None:
            ops.unexpected(f"post_email_domain {org.slug}", reply)
        return False
    if asked.get("status") != "verified":
        record = asked["record"]
        if not await _published(ops, setup.txt, str(record["name"]), str(record["value"])):
            return False
        verify = f"{domains}/{sso.record.domain}/verify"
        reply, _ = await ops.answered(
            lambda n: ops.http.v1("verify_email_domain", "POST", verify, attempt=n)
        )
        if reply is None:
            return False
        if reply.status not in (200, 202):
            ops.unexpected(f"verify_email_domain {org.slug}", reply)
            return False
        if not await _wait_verified(ops, org, domains, sso.record.domain):
            return False
    sso.record.domain_verified = True
    return True


async def _published(ops: Ops, txt: TxtPublisher, name: str, value: str) -> bool:
    """Publish the challenge, trying again while BIND does not take it (a fault)."""
    for attempt in range(MAX_LOOKS):
        try:
            await txt.publish(name, value)
        except (OSError, EOFError, dns.exception.DNSException, RuntimeError):
            ops.ledger.count("publish_txt", "failed")
            wait = backoff(attempt)
            if ops.now() + wait > ops.deadline:
                return False
            await asyncio.sleep(wait)
            continue
        ops.ledger.count("publish_txt", "done")
        return True
    return False


async def _wait_verified(ops: Ops, org: Org, domains: str, domain: str) -> bool:
    for _ in range(MAX_LOOKS):
        reply, _ = await ops.answered(
            lambda n: ops.http.v1("list_email_domains", "GET", domains, attempt=n)
        )
        listed = reply.body() if reply is not None and reply.status == 200 else None
        if isinstance(listed, dict) and any(
            d.get("domain") == domain and d.get("status") == "verified"
            for d in listed.get("email_domains", [])
        ):
            return True
        if reply is not None and reply.status != 200:
            ops.unexpected(f"list_email_domains {org.slug}", reply)
        await asyncio.sleep(LOOK_INTERVAL)
    return False  # the next turn asks for the check again (it joins one running)


async def _test(ops: Ops, setup: SSOSetup, org: Org, sso: SSOPlan) -> bool:
    while sso.sign_ins < MAX_SIGN_INS:
        if ops.now() > ops.deadline:
            return False
        failing = sso.record.fail_first and sso.record.failed_tests == 0
        sso.sign_ins += 1
        address = f"{'unverified' if failing else 'tester'}-{sso.sign_ins}@{sso.record.domain}"
        if failing:
            setup.provider.mark_unverified(address)
        reply, _ = await ops.answered(partial(_sign_in, ops, setup, org, sso, address))
        if reply is None:
            return False
        state = reply.page_state()
        if state == "active":
            sso.record.activated = True
            return True
        failure = _FAILURE.search(reply.text)
        if state == "failed" and failing and failure and failure.group(1) == NOT_VERIFIED:
            sso.record.failed_tests += 1
            continue
        # Not waiting for a test (any more): a sign-in whose answer was lost may have
        # activated it; one refused or abandoned is configured again.
        now = await _configuration(ops, org)
        if now == "active":
            sso.record.activated = True
            return True
        if state not in ("not_pending", "ready") or now not in ("waiting_for_test", "activating"):
            ops.unexpected(f"sso_test {org.slug}", reply)
        if now in ("refused", "abandoned", None):
            sso.steps.insert(0, "configure")
            return False
        await asyncio.sleep(backoff(sso.sign_ins))
    return False


async def _sign_in(
    ops: Ops, setup: SSOSetup, org: Org, sso: SSOPlan, address: str, attempt: int
) -> Reply:
    """One test sign-in as the admin's browser: the last page reached (the callback's,
    or the one where it stopped)."""
    send = ops.http.send
    async with ops.http.browser(ops.http.next_api(), sso.admin.number) as browser:
        where = f"{SSO_TEST_PATH}/{org.slug}"
        page = await send(browser, "sso_test_page", "GET", where, attempt=attempt)
        csrf = form_field(page, "csrf")
        if page.status != 200 or page.page_state() != "sign_in" or csrf is None:
            return page
        form = {"csrf": csrf, "email": sso.admin.email}
        page = await send(
            browser, "sso_sign_in", "POST", SIGN_IN_DEV_PATH, attempt=attempt, data=form
        )
        link = _AUTHORIZE.search(page.text)
        if page.status != 200 or page.page_state() != "ready" or link is None:
            return page
        authorize = html.unescape(link.group(1))
        async with httpx.AsyncClient(timeout=ops.http.timeout) as provider:
            found = await send(provider, "sso_provider_form", "GET", authorize, attempt=attempt)
        if found.status != 200:
            return found
        return await sign_in_at_provider(
            ops.http, browser, found, authorize, address, kind="sso", attempt=attempt
        )


async def _deactivate(ops: Ops, setup: SSOSetup, org: Org, sso: SSOPlan) -> bool:
    reply, _ = await ops.answered(
        lambda n: ops.http.v1("delete_sso", "DELETE", _sso_path(org), attempt=n)
    )
    if reply is None:
        return False
    view = reply.body() if reply.status == 200 else None
    if not isinstance(view, dict) or view.get("state") != "none":
        ops.unexpected(f"delete_sso {org.slug}", reply)
        return False
    sso.record.deactivated = True
    return True
