# mypy: ignore-errors
# (written against the 0.2.0 API, which the current code no longer type-checks against)
"""Write the 0.2.0 compatibility fixture here: ``events.sqlite`` (the event store alone),
``deployed.sqlite`` (the same events with the read models 0.2.0's projector made of
them) and ``manifest.json``.

Run with release 0.2.0 installed, never with the current code (the point is what the
previous release wrote)::

    git worktree add /tmp/a4c-020 8ffdc4e        # 8ffdc4e is 0.2.0
    python3 -m venv /tmp/a4c-020/.venv && /tmp/a4c-020/.venv/bin/pip install -q -e /tmp/a4c-020
    /tmp/a4c-020/.venv/bin/python tests/compat/v0.2.0/write_store.py

Commit the files it writes with ``git add -f`` (``*.sqlite`` is git-ignored). They are
the same byte for byte on every run: a fixed token secret, one fixed clock for the
commands and the event timestamps, fixed causes, and the projector's wall-clock
``updated_at`` stamps set to a fixed time. ``manifest.json`` records what 0.2.0 itself
said about the store (each event's topic, ids and the ``event_id`` it computed; each
aggregate's view), so ``tests/compat/test_previous_release_store.py`` compares the
current code with the release's own answers, not with a re-derivation.

For the next release (say 0.3.0): copy this folder to ``tests/compat/v0.3.0``, port the
calls to that release's API (0.3.0 scopes invitation commands with ``organization_id``),
add what the release introduced (``DomainClaim.Claimed``,
``Organization.InvitationIssued``), run it with that release installed, and point a
copy of the test at the new folder; keep the old folders, each proves its own release.

Only SQLite: the event store's rows are the same in PostgreSQL (eventsourcing's
recorders store the same topic and state bytes), so a PostgreSQL dump would add no case.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent

from a4c_domain import Cause, OnboardingApplication, caused_by, event_id, organization_id

HERE = Path(__file__).resolve().parent
TOKEN_SECRET = "a4c-compat-fixture-secret-at-least-32-bytes"
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
PROJECTED_AT = "2030-01-01T15:00:00.000+00:00"


class Clock:
    """One fixed clock for the commands and the event timestamps; ticks a second a call."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def activity(workflow_id: str, activity_type: str, attempt: int = 1) -> Cause:
    """A cause as the 0.2.0 worker's activities recorded it."""
    return Cause(
        correlation_id=f"{workflow_id}/{activity_type}/{attempt}",
        workflow_id=workflow_id,
        run_id="00000000-0000-4000-8000-000000000001",
        activity_type=activity_type,
        attempt=attempt,
    )


def operator(actor: str, n: int) -> Cause:
    return Cause(correlation_id=f"op-{n:03d}", actor=actor)


def scenario(app: OnboardingApplication, clock: Clock) -> None:
    wf = "org-bootstrap-acme"
    with caused_by(activity(wf, "register_organization")):
        acme = app.register_organization(
            name="Acme Widgets",
            slug="acme",
            org_type="provider",
            tags=["gold", "eu"],
            domain="acme.example.com",
        )
    with caused_by(activity(wf, "configure_dns", attempt=2)):
        app.configure_dns(
            organization_id=acme.id,
            fqdn="acme.example.com",
            target="ingress.a4c.example",
            record_id="rec-acme",
        )
    with caused_by(activity(wf, "verify_dns")):
        app.verify_dns(organization_id=acme.id)
    with caused_by(activity(wf, "activate")):
        app.activate(organization_id=acme.id)

    with caused_by(operator("signup-api", 1)):
        eu = app.register_organization(
            name="Acme Europe", slug="acme-eu", org_type="partner", parent_id=acme.id, tags=["eu"]
        )
        app.activate(organization_id=eu.id)

    # A bootstrap whose saga compensated: DNS configured, verified, removed, deactivated.
    wf = "org-bootstrap-globex"
    with caused_by(activity(wf, "register_organization")):
        globex = app.register_organization(
            name="Globex", slug="globex", org_type="partner", domain="globex.example.org"
        )
    with caused_by(activity(wf, "configure_dns")):
        app.configure_dns(
            organization_id=globex.id,
            fqdn="globex.example.org",
            target="ingress.a4c.example",
            record_id="rec-globex",
        )
    with caused_by(activity(wf, "verify_dns")):
        app.verify_dns(organization_id=globex.id)
    with caused_by(activity(wf, "invite")):
        frank = app.invite(
            organization_id=globex.id,
            email="frank@globex.example.org",
            role="admin",
            first_name="Frank",
            last_name="Grimes",
        )
    with caused_by(activity(wf, "remove_dns")):
        app.remove_dns(organization_id=globex.id)
    with caused_by(activity(wf, "deactivate")):
        app.deactivate(
            organization_id=globex.id, reason="welcome e-mail bounced", failed_step="invite"
        )

    # Registered with a DNS record configured on another name, never verified.
    with caused_by(operator("signup-api", 2)):
        initech = app.register_organization(name="Initech", slug="initech", org_type="provider")
        app.configure_dns(
            organization_id=initech.id,
            fqdn="initech.orgs.a4c.example",
            target="ingress.a4c.example",
            record_id="rec-initech",
        )

    # 0.2.0 let two organizations take one domain (0.3.0 claims it for the first).
    with caused_by(operator("signup-api", 7)):
        app.register_organization(
            name="Hooli", slug="hooli", org_type="provider", domain="shared.example.net"
        )
        piper = app.register_organization(name="Pied Piper", slug="pied-piper", org_type="partner")
        app.configure_dns(
            organization_id=piper.id,
            fqdn="shared.example.net",
            target="ingress.a4c.example",
            record_id="rec-piper",
        )

    wf = "invitation-acme"
    people = [
        ("ada@example.com", "admin", "Ada", "Lovelace"),
        ("grace@example.com", "member", "Grace", "Hopper"),
        ("bob@example.com", "member", "Bob", "Builder"),
        ("eve@example.com", "member", "Eve", "Example"),
    ]
    invited = {}
    for email, role, first, last in people:
        with caused_by(activity(f"{wf}-{first.lower()}", "invite")):
            expires = T0 + timedelta(hours=1) if first == "Eve" else None
            invited[first] = app.invite(
                organization_id=acme.id,
                email=email,
                role=role,
                first_name=first,
                last_name=last,
                expires_at=expires,
            )
    ada, grace, bob, eve = (invited[n].id for n in ("Ada", "Grace", "Bob", "Eve"))
    with caused_by(activity(f"{wf}-ada", "send_invitation_email")):
        app.record_email_sent(invitation_id=ada, token_generation=1, message_id="msg-ada-1")
    with caused_by(operator("web", 3)):
        app.accept_invitation(
            invitation_id=ada, token=app.invitation_token(ada), user_id="user-ada"
        )
    with caused_by(activity(f"{wf}-grace", "send_invitation_email", attempt=3)):
        app.record_email_failed(
            invitation_id=grace, token_generation=1, reason="550 mailbox unavailable"
        )
    with caused_by(operator("support", 4)):
        app.reissue_token(invitation_id=grace, token_generation=2)
    with caused_by(activity(f"{wf}-grace", "send_invitation_email")):
        app.record_email_sent(invitation_id=grace, token_generation=2, message_id="msg-grace-2")
    with caused_by(activity(f"{wf}-bob", "send_invitation_email")):
        app.record_email_sent(invitation_id=bob, token_generation=1, message_id="msg-bob-1")
    with caused_by(operator("admin@acme", 5)):
        app.revoke_invitation(invitation_id=bob, reason="left the company")
    # 0.2.0 allowed two pending generations of one address (0.3.0 supersedes the older).
    with caused_by(operator("admin@acme", 6)):
        for generation in (1, 2):
            app.invite(
                organization_id=eu.id,
                email="dave@example.com",
                role="member",
                first_name="Dave",
                last_name="Davis",
                generation=generation,
            )
        heidi = app.invite(
            organization_id=eu.id,
            email="heidi@example.com",
            role="admin",
            first_name="Heidi",
            last_name="Klum",
        )
    with caused_by(activity("invitation-acme-eu-heidi", "send_invitation_email", attempt=5)):
        app.record_email_failed(
            invitation_id=heidi.id, token_generation=1, reason="connection refused"
        )
    clock.advance(timedelta(hours=2))
    with caused_by(activity(f"{wf}-eve", "expire_invitation")):
        app.expire_invitation(invitation_id=eve)
    del frank


def legacy_v1_registration(app: OnboardingApplication) -> None:
    """A v1 ``Organization.Registered`` (before tags and domain), as a store that has
    lived since then still holds it: what the current code must upcast on read."""
    state = app.mapper.transcoder.encode(
        {
            "timestamp": T0,
            "originator_topic": "a4c_domain.organization:Organization",
            "metadata": {"correlation_id": "migrated-from-v1"},
            "name": "Umbrella Corp",
            "slug": "umbrella",
            "org_type": "partner",
            "parent_id": None,
        }
    )
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=organization_id("umbrella"),
                originator_version=1,
                topic="a4c_domain.organization:Organization.Registered",
                state=state,
            )
        ]
    )


def manifest(app: OnboardingApplication) -> dict[str, Any]:
    """What 0.2.0 says about every stored event and every aggregate."""
    notes = app.recorder.select_notifications(start=1, limit=10_000)
    events = [
        {
            "notification_id": n.id,
            "topic": n.topic,
            "originator_id": str(n.originator_id),
            "originator_version": n.originator_version,
            "event_id": str(event_id(n.originator_id, n.originator_version)),
        }
        for n in notes
    ]
    views: dict[str, Any] = {}
    for n in notes:
        if n.originator_version != 1:
            continue
        if n.topic.startswith("a4c_domain.organization:"):
            view: Any = app.get_organization(n.originator_id)
        else:
            view = app.get_invitation(n.originator_id)
        views[str(n.originator_id)] = view.model_dump(mode="json")
    return {"release": "0.2.0", "token_secret": TOKEN_SECRET, "events": events, "views": views}


def store_env(db: Path) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(db),
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
    }


def project_as_deployed(events: Path, deployed: Path) -> None:
    """The same store with the read models 0.2.0's projector kept in it (one SQLite
    file holds both): what an upgrade to the next release starts from."""
    from a4c_projector.projector import Projector
    from a4c_projector.store import open_event_store

    shutil.copyfile(events, deployed)
    store = open_event_store(store_env(deployed))
    projector = Projector(store.location, store.mapper)
    try:
        projector.catch_up()
    finally:
        projector.close()
    with sqlite3.connect(deployed) as conn:
        # The projector stamps rows with the wall clock; fixed, the file is reproducible.
        for table in ("organizations", "invitations", "projector_tracking"):
            conn.execute(f"UPDATE {table} SET updated_at = ?", (PROJECTED_AT,))
    with sqlite3.connect(deployed) as conn:
        conn.execute("VACUUM")


def main(out: Path = HERE) -> None:
    db = out / "events.sqlite"
    db.unlink(missing_ok=True)
    clock = Clock()
    # Event timestamps come from the same fixed clock (eventsourcing reads the wall clock).
    Aggregate.Event.create_timestamp = staticmethod(clock)  # type: ignore[method-assign]
    app = OnboardingApplication(store_env(db), clock=clock)
    scenario(app, clock)
    legacy_v1_registration(app)
    record = manifest(app)
    app.close()
    with sqlite3.connect(db) as conn:
        conn.execute("VACUUM")
    project_as_deployed(db, out / "deployed.sqlite")
    (out / "manifest.json").write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {db} ({db.stat().st_size} bytes, {len(record['events'])} events)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
