"""What the load means to do, drawn from its random generator, and how far it got.

Every name, every invitee and every invitee's fate (accept, revoke, re-send then accept,
stay pending) is drawn when its onboarding or invite is drawn, so a seed replays the same
plan; only when each step runs depends on timing (mails arriving, bootstraps finishing).
The mails the sink holds are read here too: the newest accept link of each address.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, Literal
from uuid import UUID

from a4c_worker.config import ACCEPT_PATH
from soaklib.facts import Offboarding, Onboarding, SSOTrial

FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson")
ROLES = ("owner", "admin", "member", "viewer")
# Every invitee's address is in ``<slug>.<MAIL_ZONE>``: the organization's e-mail domain
# (the soak's BIND serves this zone too, where the load publishes a domain's challenge).
MAIL_ZONE = "example.com"
# An invitee's fate, as the steps the load takes for it (none: it stays pending).
FATES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.55, ("accept",)),
    (0.15, ("resend", "accept")),
    (0.12, ("revoke",)),
    (0.06, ("resend", "revoke")),
    (0.12, ()),
)
LINK = re.compile(r"https?://[^\s\"'<>]+" + re.escape(ACCEPT_PATH) + r"\?token=[A-Za-z0-9_\-]+")

# offboarding: its offboard request was answered 2xx; offboarded: done; kept: its
# offboarding was cancelled inside the grace period (the organization lives on).
OrgState = Literal[
    "new", "started", "completed", "cancelled", "failed", "refused",
    "offboarding", "offboarded", "kept",
]  # fmt: skip
# Where an organization's invitees may take their steps and new invitees be invited.
LIVE: frozenset[OrgState] = frozenset({"completed", "kept"})


@dataclass(eq=False)
class Invitee:
    """One person the load invites, and its steps (``invite`` first when the invite
    route issues it rather than a bootstrap)."""

    number: int  # in drawing order: the person's browser address and its tie-break
    org: Org
    email: str
    role: str
    first_name: str
    last_name: str
    steps: list[str]
    invited: bool = False  # through the invite route, not its organization's onboarding
    invitation_id: UUID | None = None
    token_generation: int = 0
    mails_needed: int = 1  # how many mails to the address the next accept waits for
    rescues: int = 0  # re-sends the settle made for a mail that did not come
    waiting_since: float = 0.0  # when it started waiting for a mail (loop time)
    busy: bool = False
    dead: bool = False  # its invitation ended by another path (org cancelled, refused)
    accepted: bool = False  # the load saw its accept take effect: a member now

    @property
    def finished(self) -> bool:
        return self.dead or not self.steps

    def request(self) -> dict[str, str]:
        return {
            "email": self.email,
            "role": self.role,
            "first_name": self.first_name,
            "last_name": self.last_name,
        }


@dataclass(eq=False)
class Org:
    """One onboarding the load asks for."""

    number: int
    slug: str
    name: str
    domain: str | None
    timing: dict[str, Any]
    cancel: bool  # planned: the load cancels its bootstrap (a long DNS wait leaves time)
    record: Onboarding
    # Planned: the load offboards it once completed (None: it stays); the plan records
    # whether that offboarding is cancelled inside its grace period.
    offboard: Offboarding | None = None
    # The load asked for its offboarding (not one to be cancelled): its invitees' steps
    # stop, and an answer that it has ended (an accept's "no longer active") is expected.
    ending: bool = False
    invitees: list[Invitee] = field(default_factory=list)
    # The load gives it its own identity provider (soaklib.load_sso); None: it does not.
    sso: SSOPlan | None = None
    state: OrgState = "new"
    busy: bool = False
    next_check: float = 0.0
    checks: int = 0

    @property
    def live(self) -> bool:
        return self.state in LIVE

    def request(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "slug": self.slug,
            "org_type": "provider" if self.number % 3 else "partner",
            "tags": ["soak"],
            "domain": self.domain,
            "invitees": [i.request() for i in self.invitees if not i.invited],
            "timing": self.timing,
        }


# The steps of an organization's single sign-on, in order (soaklib.load_sso).
SSOStep = Literal["configure", "domain", "test", "deactivate", "done"]


@dataclass(eq=False)
class SSOPlan:
    """How far the load got with an organization's single sign-on; ``record`` is the
    ledger's account of it."""

    record: SSOTrial
    admin: Invitee  # an owner or admin who accepted: the test sign-in is theirs
    steps: list[SSOStep]
    next_try: float = 0.0  # loop time of the next look, after one that gave up
    configures: int = 0  # PUTs answered (a refused or abandoned one is asked again)
    sign_ins: int = 0  # test sign-ins tried

    @property
    def done(self) -> bool:
        return self.steps == ["done"]


def person(rng: random.Random, number: int, org: Org, steps: list[str]) -> Invitee:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return Invitee(
        invited=steps[:1] == ["invite"],
        number=number,
        org=org,
        email=f"{first.lower()}.{number}@{mail_domain(org.slug)}",
        role=rng.choice(ROLES),
        first_name=first,
        last_name=last,
        steps=steps,
    )


def mail_domain(slug: str) -> str:
    """The e-mail domain of the organization ``slug``'s invitees."""
    return f"{slug}.{MAIL_ZONE}"


def fate(rng: random.Random) -> list[str]:
    draw = rng.random()
    for share, steps in FATES:
        if draw < share:
            return list(steps)
        draw -= share
    return []


class Mailbox:
    """The accept link of each mail the sink received, by address, oldest first."""

    def __init__(self) -> None:
        self._seen = 0
        self.links: dict[str, list[str]] = {}

    def absorb(self, messages: list[EmailMessage]) -> None:
        """Read what arrived since the last call (the sink's list only grows)."""
        for message in messages[self._seen :]:
            found = _links(message)
            if not found:
                continue
            for _, address in getaddresses([str(message.get("To", ""))]):
                # One entry a mail (its link), however often its text repeats it.
                self.links.setdefault(address.lower(), []).append(found[-1])
        self._seen = len(messages)

    def count(self, email: str) -> int:
        return len(self.links.get(email, []))

    def newest(self, email: str) -> str | None:
        found = self.links.get(email)
        return found[-1] if found else None


def _links(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    if body is None:
        return []
    text = body.get_content()
    return LINK.findall(text) if isinstance(text, str) else []
