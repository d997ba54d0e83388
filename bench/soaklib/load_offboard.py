"""The load's offboardings, through ``/v1`` as the operator.

A seeded share of the onboardings is planned to be offboarded once its bootstrap has
completed (:func:`plan`): ``POST /v1/organizations/{slug}/offboard``, then
``GET …/offboarding`` until the run has ended. Some wait out a grace period first; one
planned to be cancelled has a long one and is called off inside it
(``POST …/offboard/cancel``), after which the organization lives on (``kept``) and its
invitees go on with their plans. A run that failed (a step failed for good under the
faults) is started again, as the API documents: the new run does what is left.

Once the load asks for an offboarding that is not to be cancelled, the organization's
invitees stop their steps, and an answer that the organization has ended (an accept
page's "no longer active", a 403/409 ``organization-inactive``, an invitation revoked
by the offboarding) is what the load expects, not something unexpected.
"""

from __future__ import annotations

import random

from soaklib.facts import Offboarding
from soaklib.load_ops import ORGS, Ops
from soaklib.load_plan import Org

OFFBOARD_SHARE = 0.25  # of the onboardings: offboarded once completed
CANCEL_SHARE = 0.3  # of those: with a long grace period, cancelled inside it
GRACE = 20.0  # seconds: the grace period of one planned to be cancelled
SHORT_GRACE_SHARE = 0.5  # of the others: a short grace period, waited out
SHORT_GRACE = 1.0
CHECK_INTERVAL = 1.0  # seconds between two looks at a running offboarding
MAX_STARTS = 5  # runs started for one organization (a failed one is started again)


def plan(rng: random.Random, slug: str) -> Offboarding | None:
    """Whether the organization ``slug`` is to be offboarded, and how."""
    if rng.random() >= OFFBOARD_SHARE:
        return None
    cancel = rng.random() < CANCEL_SHARE
    short = rng.random() < SHORT_GRACE_SHARE
    grace = GRACE if cancel else SHORT_GRACE if short else 0.0
    return Offboarding(slug=slug, grace_period_seconds=grace, cancel=cancel)


def end_invitees(org: Org) -> None:
    """The organization's offboarding is asked for: its invitees' plans end here."""
    org.ending = True
    for invitee in org.invitees:
        invitee.dead = True


async def offboard(ops: Ops, org: Org) -> None:
    """Ask for the organization's offboarding (again, after a failed run)."""
    planned = org.offboard
    assert planned is not None
    if not planned.cancel:
        end_invitees(org)
    path = f"{ORGS}/{org.slug}/offboard"
    body = {"reason": "soak: offboarded", "grace_period_seconds": planned.grace_period_seconds}
    reply, _ = await ops.answered(
        lambda n: ops.http.v1("offboard", "POST", path, attempt=n, json_body=body)
    )
    if reply is None:
        return  # not answered: the settle asks again
    planned.status = reply.status or 0
    if reply.status in (200, 202):
        planned.starts += 1
        org.state = "offboarding"
        org.next_check = ops.now() + CHECK_INTERVAL
        return
    ops.unexpected(f"offboard {org.slug}", reply)
    org.offboard = None  # refused: the organization stays as it is


async def follow(ops: Ops, org: Org) -> None:
    """Look at the organization's offboarding: cancel it if planned and still waiting;
    note how it ended; start it again after a failed run."""
    planned = org.offboard
    assert planned is not None
    org.next_check = ops.now() + CHECK_INTERVAL
    path = f"{ORGS}/{org.slug}/offboarding"
    reply, _ = await ops.answered(lambda n: ops.http.v1("get_offboarding", "GET", path, attempt=n))
    view = reply.body() if reply is not None and reply.status == 200 else None
    if not isinstance(view, dict):
        if reply is not None:
            ops.unexpected(f"get_offboarding {org.slug}", reply)
        return
    progress = view.get("offboarding")
    state = progress.get("state") if isinstance(progress, dict) else None
    if state == "waiting" and planned.cancel and not planned.cancelled:
        await cancel(ops, org)
    elif state == "completed":
        org.state = "offboarded"
        planned.ended = "offboarded"
        end_invitees(org)  # one planned to be cancelled whose cancel came too late
    elif state == "cancelled":
        org.state = "kept"
        planned.ended = "kept"
    elif state == "failed" and planned.starts < MAX_STARTS:
        await offboard(ops, org)


async def cancel(ops: Ops, org: Org) -> None:
    planned = org.offboard
    assert planned is not None
    path = f"{ORGS}/{org.slug}/offboard/cancel"
    body = {"reason": "soak: the customer stays"}
    reply, _ = await ops.answered(
        lambda n: ops.http.v1("cancel_offboarding", "POST", path, attempt=n, json_body=body)
    )
    if reply is None:
        return  # the next look tries again
    if reply.status == 200:
        planned.cancelled = True
        org.state = "kept"
        planned.ended = "kept"
    elif reply.problem_type() != "urn:a4c:problem:cancel-refused":
        ops.unexpected(f"cancel_offboarding {org.slug}", reply)
    # Refused: too late (the grace period is over), or an earlier attempt cancelled it;
    # the next look says which.
