"""The soak's checker: after the run, with every process still up and the load settled,
is every promise of issue 18 kept? One :class:`Violation` per broken promise.

Each check is a function of its own, in a module by what it reads:

============================  ==========================================================
``workflows``                 every bootstrap and invitation workflow ended as its inputs
                              and the domain say (:mod:`soaklib.check_workflows`)
``read-models``, ``audit``    the read models equal a fresh build from the event store;
                              every committed event up to the position was applied
                              (:mod:`soaklib.check_model`)
``duplicate-events``          no two events by (aggregate, version), by event id, nor a
                              once-only fact recorded twice (:mod:`soaklib.check_model`)
``members``                   every accepted invitation is a member
                              (:mod:`soaklib.check_model`)
``offboarding``               every offboarding ended as asked and left nothing behind
                              (:mod:`soaklib.check_offboarding`)
``sso``                       every single sign-on and e-mail domain: store, read models,
                              activation mails and the load agree
                              (:mod:`soaklib.check_sso`)
``dns``                       BIND serves exactly the active organizations' records
                              (:mod:`soaklib.check_dns`)
``mail``                      every mail matches an ``EmailSent`` and back
                              (:mod:`soaklib.check_mail`)
``leaks``                     no token, secret or address where DESIGN forbids it
                              (:mod:`soaklib.check_leaks`)
============================  ==========================================================

The store is read once (:mod:`soaklib.check_store`); the checks share that reading.
The whole check is bounded by ``timeout``: what did not finish in time is itself a
violation (``checker``), never a hang (a database statement still running in its
thread is bounded by the connection's ``statement_timeout``). A check that fails with an
error is reported the same way, its text redacted of every secret the checker knows.

What the stack must give it: the store's environment as the a4c processes have it
(``CIPHER_TOPIC``/``CIPHER_KEY`` included: without the cipher every invitee's address
lies in clear in the event store, which the ``leaks`` check reports), the dev server's
address and payload keys, BIND's address, every mail the sink accepted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from soaklib.facts import SoakFacts


@dataclass(frozen=True)
class Violation:
    """One broken promise, in words an operator understands; never holds a secret
    (a token, a key, an address: findings name the invitation, file or table instead)."""

    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


Check = Callable[[], Awaitable[list[Violation]]]
# Violations kept per check: a broken soak's report stays one readable line; the count
# of the rest is kept.
MAX_PER_CHECK = 50


def _capped(name: str, found: list[Violation]) -> list[Violation]:
    if len(found) <= MAX_PER_CHECK:
        return found
    rest = len(found) - MAX_PER_CHECK
    return [*found[:MAX_PER_CHECK], Violation(name, f"... and {rest} more of this check")]


async def check(facts: SoakFacts, *, timeout: float = 120) -> list[Violation]:  # noqa: ASYNC109
    """Every violation found, in check order; ``[]`` when every promise holds."""
    # Imported here: the check modules import Violation from this one.
    from soaklib.check_dns import check_dns
    from soaklib.check_feed import check_feed
    from soaklib.check_leaks import Needles, check_leaks
    from soaklib.check_mail import check_mail
    from soaklib.check_model import check_audit, check_duplicates, check_members, check_read_models
    from soaklib.check_offboarding import check_offboardings
    from soaklib.check_sso import check_sso
    from soaklib.check_store import read_store
    from soaklib.check_webhooks import check_webhooks
    from soaklib.check_workflows import check_workflows

    deadline = time.monotonic() + timeout
    needles = Needles.of(facts)
    found: list[Violation] = []
    try:
        store = await asyncio.wait_for(asyncio.to_thread(read_store, facts.store), timeout)
    except TimeoutError:
        return [Violation("checker", f"reading the event store took over {timeout:.0f} s")]
    except Exception as exc:  # the checker reports, never raises
        return [Violation("checker", f"cannot read the event store: {needles.redact(exc)}")]
    checks: list[tuple[str, Check]] = [
        ("workflows", lambda: check_workflows(facts, store)),
        ("read-models", lambda: asyncio.to_thread(check_read_models, store)),
        ("audit", lambda: asyncio.to_thread(check_audit, store)),
        ("duplicate-events", lambda: asyncio.to_thread(check_duplicates, store)),
        ("members", lambda: asyncio.to_thread(check_members, store)),
        ("offboarding", lambda: check_offboardings(facts, store)),
        ("sso", lambda: check_sso(facts, store)),
        ("dns", lambda: check_dns(facts.dns, store)),
        (
            "mail",
            lambda: asyncio.to_thread(check_mail, facts.mails, store, facts.ledger.onboardings),
        ),
        ("leaks", lambda: check_leaks(facts, store, needles)),
        ("feed", lambda: asyncio.to_thread(check_feed, facts.feed, store)),
        ("webhooks", lambda: asyncio.to_thread(check_webhooks, facts.webhooks, store)),
    ]
    for name, run in checks:
        left = deadline - time.monotonic()
        if left <= 0:
            found.append(Violation("checker", f"no time left for the {name} check"))
            continue
        try:
            found.extend(_capped(name, await asyncio.wait_for(run(), left)))
        except TimeoutError:
            found.append(Violation("checker", f"the {name} check did not finish in time"))
        except Exception as exc:  # one broken check must not hide the rest
            found.append(Violation("checker", f"the {name} check failed: {needles.redact(exc)}"))
    return found
