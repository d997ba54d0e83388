"""What a soak run knows, handed from the stack and the load to the checker.

Plain data, so the checker can be tested on a small stack of its own and the soak's
JSON line is built from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the checker's own type (check_webhooks imports this module's)
    from soaklib.check_webhooks import Arrival


@dataclass(frozen=True)
class StoreFacts:
    """Where the event store and the read models are (one PostgreSQL database)."""

    conninfo: str  # libpq conninfo, multi-host with target_session_attrs=read-write
    env: dict[str, str]  # the a4c processes' store variables (PERSISTENCE_MODULE, POSTGRES_*...)


@dataclass(frozen=True)
class TemporalFacts:
    address: str  # host:port of the dev server
    namespace: str
    task_queue: str
    payload_keys: str  # TEMPORAL_PAYLOAD_KEYS (a secret: never printed)


@dataclass(frozen=True)
class DnsFacts:
    host: str
    port: int
    zone: str  # the a4c DNS_ZONE, absolute or not, as the worker was given it


@dataclass
class Onboarding:
    """One organization the load asked for, and what happened to it."""

    slug: str
    domain: str | None  # the DNS name requested, None for none
    invitees: list[str]  # e-mail addresses
    status: int  # the API's answer to the onboarding request
    cancelled: bool = False  # the load cancelled its bootstrap


@dataclass
class Offboarding:
    """One offboarding the load asked for (``POST …/offboard``), and what became of it."""

    slug: str
    grace_period_seconds: float
    cancel: bool  # planned: the load cancels it inside its grace period
    status: int = 0  # the API's answer to the (last) offboard request; 0: none yet
    starts: int = 0  # offboard requests answered 2xx (a new run after a failed one)
    cancelled: bool = False  # the load saw its cancel answered 200
    ended: str | None = None  # "offboarded" | "kept" (cancelled in grace), as GET said


@dataclass
class SSOTrial:
    """One organization the load gives its own identity provider (``PUT …/sso``), the
    e-mail domain it proves, the admin's test sign-in, and what became of them."""

    slug: str
    issuer: str
    domain: str  # the e-mail domain of the organization's invitees
    fail_first: bool  # planned: a first test sign-in the provider's answer must fail
    deactivate: bool  # planned: DELETE …/sso once it is active
    status: int = 0  # the API's answer to the (last) PUT; 0: none yet
    configured: bool = False  # a PUT was answered 2xx (or "running" after an earlier try)
    domain_verified: bool = False  # the load saw the domain verified
    failed_tests: int = 0  # test sign-ins refused as planned (EmailNotVerified)
    activated: bool = False  # the load saw the connection active
    deactivated: bool = False  # DELETE answered 200 with no single sign-on in force
    # Invitees who accepted by signing in through the provider (their addresses).
    accepted_through: list[str] = field(default_factory=list)


@dataclass
class InvitationAction:
    """One action on an invitation: invite, accept, revoke, resend; status as the API
    answered (0: no answer before the load gave up)."""

    kind: str  # "invite" | "accept" | "revoke" | "resend"
    slug: str
    email: str
    status: int
    # The load saw it take effect (its answer, or, on a retry, the state an earlier
    # attempt left: "already accepted", "already revoked").
    done: bool = False


@dataclass
class Ledger:
    """Everything the load did, by kind and outcome (the soak's report counts these)."""

    onboardings: list[Onboarding] = field(default_factory=list)
    offboardings: list[Offboarding] = field(default_factory=list)
    sso: list[SSOTrial] = field(default_factory=list)
    actions: list[InvitationAction] = field(default_factory=list)
    # kind -> outcome ("201", "503", "timeout", ...) -> count; bad requests under "bad:<case>"
    requests: dict[str, dict[str, int]] = field(default_factory=dict)
    # Answers no fault excuses: a 5xx other than 503 with Retry-After, a bad request that was
    # not refused with a typed problem (or stored something). No answer within the request
    # bound is counted as "timeout" and tried again, not a violation.
    violations: list[str] = field(default_factory=list)
    # Answers to good requests that are neither a success nor an excused fault (a 409 on a
    # first revoke...): not violations by the rules, but worth reading.
    unexpected: list[str] = field(default_factory=list)
    # What the load's settle could not finish in its time (an onboarding never answered,
    # an accept whose mail never came...).
    unfinished: list[str] = field(default_factory=list)

    def count(self, kind: str, outcome: str) -> None:
        outcomes = self.requests.setdefault(kind, {})
        outcomes[outcome] = outcomes.get(outcome, 0) + 1


@dataclass
class SoakFacts:
    """All the checker reads after the run has stopped (every process still up)."""

    store: StoreFacts
    temporal: TemporalFacts
    dns: DnsFacts
    mails: list[EmailMessage]  # every message the SMTP sink accepted, in order
    logs_dir: Path  # every process's log file
    metrics: list[str]  # /metrics texts scraped from every process at the end
    secrets: dict[str, str]  # name -> value that must appear nowhere (token key, API keys...)
    ledger: Ledger
    # The events a consumer of GET /v1/events received, in order (soaklib.feed).
    feed: list[dict[str, Any]] = field(default_factory=list)
    # Each webhook endpoint's requests (by the endpoint's name), in arrival order.
    webhooks: dict[str, list[Arrival]] = field(default_factory=dict)
