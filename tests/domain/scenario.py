"""Generated command sequences for the property tests: a small universe, so commands collide.

Two slugs, two e-mail addresses, a few variants of every field: sequences hit repeats,
conflicts, rule violations and invalid input often. ``Runner.run`` issues one step and
returns its outcome; anything but an ``A4CError`` escapes and fails the test.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, invitation_id, organization_id
from a4c_domain.errors import A4CError, InvalidCommand, NotFound
from a4c_domain.tokens import TokenIssuer
from a4c_domain.views import InvitationView, OrganizationView
from tests.domain.support import FakeClock
from tests.support import TOKEN_SECRET

SLUGS = ("alpha", "beta")
EMAILS = ("ann@example.com", "bob@example.com")


@dataclass(frozen=True)
class Step:
    kind: str
    args: tuple[Any, ...] = ()


slug = st.sampled_from(SLUGS[:1] * 3 + SLUGS[1:])
email = st.sampled_from(EMAILS[:1] * 3 + EMAILS[1:])
variant = st.integers(1, 2)

steps = st.one_of(
    st.builds(
        lambda s, n, d, t: Step("register", (s, n, d, t)), slug, variant, st.booleans(), variant
    ),
    st.builds(lambda s, v: Step("configure_dns", (s, v)), slug, variant),
    st.builds(lambda s: Step("verify_dns", (s,)), slug),
    st.builds(lambda s: Step("remove_dns", (s,)), slug),
    st.builds(lambda s: Step("activate", (s,)), slug),
    st.builds(lambda s, v: Step("deactivate", (s, v)), slug, variant),
    st.builds(lambda s, v: Step("offboard", (s, v)), slug, variant),
    st.builds(lambda s, e, r: Step("invite", (s, e, r)), slug, email, variant),
    st.builds(
        lambda s, e, g, v: Step("email_sent", (s, e, g, v)), slug, email, st.integers(1, 3), variant
    ),
    st.builds(
        lambda s, e, g, v: Step("email_failed", (s, e, g, v)),
        slug,
        email,
        st.integers(1, 3),
        variant,
    ),
    st.builds(lambda s, e, g: Step("reissue", (s, e, g)), slug, email, st.integers(2, 3)),
    st.builds(
        lambda s, e, t, u: Step("accept", (s, e, t, u)),
        slug,
        email,
        st.sampled_from(["current", "first", "wrong"]),
        variant,
    ),
    st.builds(lambda s, e, v: Step("revoke", (s, e, v)), slug, email, variant),
    st.builds(lambda s, e: Step("expire", (s, e)), slug, email),
    st.builds(lambda d: Step("advance_clock", (d,)), st.integers(1, 9)),
    st.builds(lambda f: Step("invalid", (f,)), st.sampled_from(["slug", "email", "reason"])),
)
# Most sequences start from an organization with one invitation, so the later steps
# reach the interesting states (sent, failed, re-issued, accepted...) often.
SEED = [Step("register", ("alpha", 1, True, 1)), Step("invite", ("alpha", EMAILS[0], 1))]
sequences = st.builds(
    lambda seeded, rest: (SEED if seeded else []) + rest,
    st.integers(0, 3).map(bool),
    st.lists(steps, min_size=1, max_size=25),
)


def inv_id(slug_: str, email_: str) -> UUID:
    return invitation_id(organization_id(slug_), email_, 1)


@dataclass
class Issued:
    """A step as actually issued: the method and the concrete fields (tokens resolved)."""

    method: str
    fields: dict[str, Any]


@dataclass
class Runner:
    app: OnboardingApplication
    clock: FakeClock
    issuer: TokenIssuer = field(default_factory=lambda: TokenIssuer(TOKEN_SECRET))

    def resolve(self, step: Step) -> Issued | None:
        k, a = step.kind, step.args
        if k == "register":
            s, n, with_domain, t = a
            return Issued(
                "register_organization",
                {
                    "name": f"Org {n}",
                    "slug": s,
                    "org_type": ("provider", "partner")[t - 1],
                    "domain": f"{s}.example.com" if with_domain else None,
                },
            )
        if k == "configure_dns":
            s, v = a
            return Issued(
                "configure_dns",
                {
                    "organization_id": organization_id(s),
                    "fqdn": f"{s}.example.com",
                    "target": f"lb{v}.example.com",
                    "record_id": f"rec-{v}",
                },
            )
        if k in ("verify_dns", "remove_dns", "activate"):
            return Issued(k, {"organization_id": organization_id(a[0])})
        if k == "deactivate":
            return Issued(
                "deactivate", {"organization_id": organization_id(a[0]), "reason": f"reason {a[1]}"}
            )
        if k == "offboard":
            return Issued(
                "offboard", {"organization_id": organization_id(a[0]), "reason": f"left {a[1]}"}
            )
        if k == "invite":
            s, e, r = a
            return Issued(
                "invite",
                {
                    "organization_id": organization_id(s),
                    "email": e,
                    "role": ("member", "admin")[r - 1],
                    "first_name": e.split("@")[0].title(),
                    "last_name": "Tester",
                },
            )
        if k in ("email_sent", "email_failed"):
            s, e, g, v = a
            detail = {"message_id": f"msg-{v}"} if k == "email_sent" else {"reason": f"bounce {v}"}
            return Issued(
                f"record_{k}",
                {
                    "organization_id": ALL_ORGANIZATIONS,
                    "invitation_id": inv_id(s, e),
                    "token_generation": g,
                    **detail,
                },
            )
        if k == "reissue":
            s, e, g = a
            return Issued(
                "reissue_token",
                {
                    "organization_id": ALL_ORGANIZATIONS,
                    "invitation_id": inv_id(s, e),
                    "token_generation": g,
                },
            )
        if k == "accept":
            s, e, which, u = a
            iid = inv_id(s, e)
            if which == "wrong":
                token = self.issuer.token(iid, 99)  # well-formed, never issued
            elif which == "first":
                token = self.issuer.token(iid, 1)
            else:
                try:
                    token = self.app.invitation_token(iid, ALL_ORGANIZATIONS)
                except NotFound:
                    token = self.issuer.token(iid, 1)
            return Issued(
                "accept_invitation",
                {
                    "organization_id": ALL_ORGANIZATIONS,
                    "invitation_id": iid,
                    "token": token,
                    "user_id": f"user-{u}",
                },
            )
        if k == "revoke":
            s, e, v = a
            return Issued(
                "revoke_invitation",
                {
                    "organization_id": ALL_ORGANIZATIONS,
                    "invitation_id": inv_id(s, e),
                    "reason": f"why {v}",
                },
            )
        if k == "expire":
            return Issued(
                "expire_invitation",
                {"organization_id": ALL_ORGANIZATIONS, "invitation_id": inv_id(*a)},
            )
        if k == "invalid":
            choices: dict[str, tuple[str, dict[str, Any]]] = {
                "slug": (
                    "register_organization",
                    {"name": "X", "slug": "-Bad-", "org_type": "provider"},
                ),
                "email": (
                    "invite",
                    {
                        "organization_id": organization_id("alpha"),
                        "email": "not an address",
                        "role": "member",
                        "first_name": "A",
                        "last_name": "B",
                    },
                ),
                "reason": (
                    "deactivate",
                    {"organization_id": organization_id("alpha"), "reason": "\x00"},
                ),
            }
            return Issued(*choices[a[0]])
        assert k == "advance_clock"
        self.clock.advance(timedelta(days=a[0]))
        return None

    def run(self, step: Step) -> tuple[str, Issued | None, Any]:
        """Issue ``step``: ("ok", issued, view) or (error class name, issued, None)."""
        issued = self.resolve(step)
        if issued is None:
            return "clock", None, None
        try:
            view = getattr(self.app, issued.method)(**issued.fields)
        except A4CError as exc:
            if step.kind == "invalid":
                assert isinstance(exc, InvalidCommand)
            return type(exc).__name__, issued, None
        assert step.kind != "invalid"
        return "ok", issued, view

    def views(self) -> dict[UUID, OrganizationView | InvitationView]:
        """Every aggregate of the universe that exists, as the app sees it now."""
        out: dict[UUID, OrganizationView | InvitationView] = {}
        for s in SLUGS:
            try:
                out[organization_id(s)] = self.app.get_organization(organization_id(s))
            except NotFound:
                continue
            for e in EMAILS:
                with contextlib.suppress(NotFound):
                    out[inv_id(s, e)] = self.app.get_invitation(inv_id(s, e), ALL_ORGANIZATIONS)
        return out
