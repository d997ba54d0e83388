"""Property: any valid command history, projected live in small batches with injected
crashes and restarts, equals one rebuild and the fold of the aggregates themselves."""

from __future__ import annotations

import contextlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, errors
from a4c_projector.engine.projector import PoisonEvent
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.queries import ReadModel
from tests.projector.conftest import Store
from tests.servers.postgres import fresh_schema, postgres_env
from tests.support import TOKEN_SECRET

SLUGS = ["alpha", "bravo", "charlie"]
EMAILS = ["a@example.com", "b@example.com"]
commands = st.lists(
    st.tuples(
        st.sampled_from(
            ["register", "dns", "verify", "remove", "activate", "deactivate", "offboard",
             "invite", "sent", "failed", "reissue", "accept", "revoke", "expire"]
        ),
        st.sampled_from(SLUGS),
        st.sampled_from(EMAILS),
    ),
    min_size=1,
    max_size=40,
)  # fmt: skip


class Crash(Exception):
    pass


def apply(app: OnboardingApplication, kind: str, slug: str, email: str) -> None:
    from a4c_domain import invitation_id, organization_id

    org_id = organization_id(slug)
    inv_id = invitation_id(org_id, email, 1)
    # An expiry in the past is refused; one within the clock tolerance expires at once.
    soon = datetime.now(UTC) + timedelta(seconds=1)
    actions: dict[str, Any] = {
        "register": lambda: app.register_organization(
            name=slug.title(),
            slug=slug,
            org_type="provider",
            tags=[slug[0]],
            domain=f"{slug}.example.com",
        ),
        "dns": lambda: app.configure_dns(
            organization_id=org_id,
            fqdn=f"{slug}.example.com",
            target="lb.example.com",
            record_id="r1",
        ),
        "verify": lambda: app.verify_dns(organization_id=org_id),
        "remove": lambda: app.remove_dns(organization_id=org_id),
        "activate": lambda: app.activate(organization_id=org_id),
        "deactivate": lambda: app.deactivate(organization_id=org_id, reason="r", failed_step="s"),
        "offboard": lambda: app.offboard(organization_id=org_id, reason="o"),
        "invite": lambda: app.invite(
            organization_id=org_id,
            email=email,
            role="member",
            first_name="F",
            last_name="L",
            expires_at=soon if email.startswith("b") else None,
        ),
        "sent": lambda: app.record_email_sent(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv_id,
            token_generation=app.get_invitation(inv_id, ALL_ORGANIZATIONS).token_generation,
            message_id="m",
        ),
        "failed": lambda: app.record_email_failed(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv_id,
            token_generation=app.get_invitation(inv_id, ALL_ORGANIZATIONS).token_generation,
            reason="bounce",
        ),
        "reissue": lambda: app.reissue_token(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv_id,
            token_generation=app.get_invitation(inv_id, ALL_ORGANIZATIONS).token_generation + 1,
        ),
        "accept": lambda: app.accept_invitation(
            organization_id=ALL_ORGANIZATIONS,
            invitation_id=inv_id,
            token=app.invitation_token(inv_id, ALL_ORGANIZATIONS),
            user_id="u1",
        ),
        "revoke": lambda: app.revoke_invitation(
            organization_id=ALL_ORGANIZATIONS, invitation_id=inv_id, reason="no"
        ),
        "expire": lambda: app.expire_invitation(
            organization_id=ALL_ORGANIZATIONS, invitation_id=inv_id
        ),
    }
    with contextlib.suppress(errors.A4CError):
        actions[kind]()


def folded(app: OnboardingApplication, store: Store) -> dict[str, dict[str, tuple[Any, ...]]]:
    """The aggregates' own state, in the read model's terms (comparable columns)."""
    from a4c_domain import invitation_id, organization_id

    orgs, invs, members, tokens = {}, {}, {}, {}
    for slug in SLUGS:
        with contextlib.suppress(errors.NotFound):
            o = app.get_organization(organization_id(slug))
            orgs[str(o.id)] = (
                o.slug,
                o.status,
                o.dns_status,
                o.fqdn,
                o.deactivation_reason,
                tuple(o.tags),
                o.version,
                o.modified_on,
            )
            for email in EMAILS:
                with contextlib.suppress(errors.NotFound):
                    i = app.get_invitation(invitation_id(o.id, email, 1), ALL_ORGANIZATIONS)
                    invs[str(i.id)] = (
                        i.status,
                        i.email_status,
                        i.token_generation,
                        i.message_id,
                        i.email_error,
                        i.accepted_by,
                        i.version,
                        i.modified_on,
                    )
                    if i.status == "accepted":  # a member: whoever accepted, as invited
                        members[str(i.id)] = _member(i, i.accepted_by, i.modified_on)
                    for generation in range(1, i.token_generation + 1):  # every one issued
                        current = generation == i.token_generation
                        tokens[f"{i.id}/{generation}"] = (str(i.id), current)
    return {"organizations": orgs, "invitations": invs, "members": members, "tokens": tokens}


def _member(invitation: Any, user_id: str | None, modified: Any) -> tuple[Any, ...]:
    """A member in comparable terms: an invitation (aggregate or record) and who joined."""
    return (
        str(invitation.organization_id),
        user_id,
        invitation.email,
        invitation.role,
        invitation.first_name,
        invitation.last_name,
        invitation.version,
        modified,
    )


def read_model_view(store: Store) -> dict[str, dict[str, tuple[Any, ...]]]:
    with ReadModel(store.location) as rm:
        orgs = {
            str(o.id): (
                o.slug,
                o.status,
                o.dns_status,
                o.fqdn,
                o.deactivation_reason,
                o.tags,
                o.version,
                o.modified_at,
            )
            for o in rm.organizations()
        }
        invs, members, tokens = {}, {}, {}
        for o in rm.organizations():
            for i in rm.invitations(o.id):
                invs[str(i.id)] = (
                    i.status,
                    i.email_status,
                    i.token_generation,
                    i.message_id,
                    i.email_error,
                    i.accepted_by,
                    i.version,
                    i.modified_at,
                )
                # Each generation's token, as the invitee would present it.
                for generation in range(1, i.token_generation + 1):
                    match = rm.token_match(store.app.tokens.token(i.id, generation))
                    tokens[f"{i.id}/{generation}"] = (
                        (str(match.invitation.id), match.current) if match else ()  # unknown
                    )
            for m in rm.members(o.id):
                members[str(m.invitation_id)] = _member(m, m.user_id, m.modified_at)
    return {"organizations": orgs, "invitations": invs, "members": members, "tokens": tokens}


def check_history(
    env: dict[str, str],
    history: list[tuple[str, str, str]],
    batches: list[int],
    crashes: list[str | None],
) -> None:
    """Project ``history`` live with the planned crashes; compare with rebuild and fold."""
    app = OnboardingApplication(env)
    store = Store(env, app, open_event_store(env))
    try:
        for command in history:
            apply(app, *command)
        step = 0
        while True:
            # Each planned crash happens once, then the projector is left to finish.
            crash_at = crashes[step] if step < len(crashes) else None

            def fault(stage: str, nid: int, crash_at: str | None = crash_at) -> None:
                if stage == crash_at:
                    raise Crash(stage)

            projector = store.projector(fault=fault)  # a fresh projector: a restart
            try:
                result = projector.run_batch(limit=batches[step % len(batches)])
                while result.size == 0 and result.blocked:
                    # A rolled-back insert (a lost race, a duplicate command) left an id
                    # gap: this projector's guard passes it once its grace has run out.
                    time.sleep(0.05)
                    result = projector.run_batch(limit=batches[step % len(batches)])
                if result.size == 0:
                    break
            except (Crash, PoisonEvent):  # a crash inside the handler surfaces as poison
                pass
            finally:
                projector.close()
            step += 1
        live = store.live_rows()
        assert live == store.rebuilt_rows()
        assert read_model_view(store) == folded(app, store)
    finally:
        app.close()


batch_sizes = st.lists(st.integers(1, 5), min_size=1, max_size=8)
crash_plans = st.lists(
    st.sampled_from(["handle", "before_write", "before_commit", "after_commit", None]),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=commands, batches=batch_sizes, crashes=crash_plans)
def test_live_with_crashes_equals_rebuild_and_fold(
    history: list[tuple[str, str, str]], batches: list[int], crashes: list[str | None]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"SQLITE_DBNAME": str(Path(tmp) / "e.sqlite"), "A4C_TOKEN_SECRET": TOKEN_SECRET}
        check_history(env, history, batches, crashes)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(history=commands, batches=batch_sizes, crashes=crash_plans)
def test_live_with_crashes_equals_rebuild_and_fold_on_postgres(
    pg_server: str,
    history: list[tuple[str, str, str]],
    batches: list[int],
    crashes: list[str | None],
) -> None:
    with fresh_schema(pg_server) as schema:  # one fresh schema per example
        env = postgres_env(schema, A4C_TOKEN_SECRET=TOKEN_SECRET)
        check_history(env, history, batches, crashes)
