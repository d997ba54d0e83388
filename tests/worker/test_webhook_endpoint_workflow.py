"""WebhookEndpointWorkflow on the real Temporal dev server: each change issued by its
activity under its cause, refusals typed for the API, and an automatic disable mailed
through a real SMTP server (aiosmtpd) once per address, even when the activity that
disabled it is retried after committing, and not again for a second request."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from temporalio.client import Client
from tests.servers.smtp import SMTPTestServer
from tests.support import TOKEN_SECRET
from tests.worker.flows import FAST_STEPS, LINKS, Flows, smtp_mailer

from a4c_domain import OnboardingApplication, Organization, webhook_endpoint_id
from a4c_domain.base import DomainAggregate
from a4c_domain.errors import ConcurrencyError
from a4c_domain.public_events import PUBLIC_EVENT_TYPES
from a4c_domain.views import WebhookEndpointView
from a4c_worker.activities.webhooks import WebhookActivities, disabled_message_id
from a4c_worker.client import WebhookEndpointRefused, change_webhook_endpoint
from a4c_worker.worker import create_worker
from a4c_worker.workflows.models import WEBHOOK_ENDPOINT_WORKFLOW_PREFIX, WebhookEndpointChange

SECRET = "k1:c2VhbGVkIHNlY3JldA"  # sealed text, as the API would pass it


class RetriedApp(OnboardingApplication):
    """The real application whose next ``disable_webhook_endpoint`` commits, then fails
    as a lost race would: the activity is retried after it acted."""

    name = OnboardingApplication.name  # eventsourcing's table name: the real one's
    fail_after_disable = 0

    def disable_webhook_endpoint(self, **fields: Any) -> WebhookEndpointView:
        view = super().disable_webhook_endpoint(**fields)
        if self.fail_after_disable:
            self.fail_after_disable -= 1
            raise ConcurrencyError("lost the race (after committing)")
        return view


@dataclasses.dataclass
class Endpoints:
    app: RetriedApp
    client: Client
    task_queue: str
    flows: Flows

    async def change(self, **fields: Any) -> WebhookEndpointView:
        fields.setdefault("activities", FAST_STEPS)
        return await change_webhook_endpoint(self.client, fields, task_queue=self.task_queue)

    async def refused(self, **fields: Any) -> WebhookEndpointRefused:
        with pytest.raises(WebhookEndpointRefused) as info:
            await self.change(**fields)
        return info.value


@asynccontextmanager
async def running(
    tmp_path: Path, client: Client, task_queue: str, mailer: Any = None
) -> AsyncIterator[Endpoints]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    app = RetriedApp(env, token_secret=TOKEN_SECRET)
    flows = Flows(app=app, client=client, task_queue=task_queue)
    if mailer is not None:
        flows.mailer = mailer
    assert flows.verifier is not None
    webhooks = WebhookActivities(app, flows.dns, flows.verifier, flows.mailer, LINKS, txt=flows.txt)
    activities = {
        a.__name__: a for a in [*flows.activities().all(), *webhooks.webhook_activities()]
    }
    try:
        async with create_worker(client, task_queue, list(activities.values())):
            yield Endpoints(app=app, client=client, task_queue=task_queue, flows=flows)
    finally:
        app.close()


@pytest.fixture
async def endpoints(
    tmp_path: Path, temporal_client: Client, task_queue: str
) -> AsyncIterator[Endpoints]:
    async with running(tmp_path, temporal_client, task_queue) as running_endpoints:
        yield running_endpoints


def added(owner: UUID | None, name: str = "billing", **extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "action": "add",
        "scope": owner,
        "endpoint_id": webhook_endpoint_id(owner, name),
        "owner_id": owner,
        "name": name,
        "url": "https://hooks.example.com/a4c?key=receiver-own-token",
        "event_types": sorted(PUBLIC_EVENT_TYPES)[:2],
        "secret": SECRET,
    }
    fields.update(extra)
    return fields


def metadata_of(app: OnboardingApplication, endpoint_id: UUID) -> list[tuple[str, dict[str, str]]]:
    stored = [e for e in app.events.get(endpoint_id) if isinstance(e, DomainAggregate.Event)]
    return [(type(e).__name__, e.metadata) for e in stored]


async def test_each_change_is_issued_by_its_activity_under_its_cause(endpoints: Endpoints) -> None:
    org = uuid4()
    view = await endpoints.change(**added(org))
    assert (view.id, view.owner_id, view.status) == (
        webhook_endpoint_id(org, "billing"),
        org,
        "enabled",
    )
    assert view.position is not None
    again = await endpoints.change(**added(org, secret="k1:b3RoZXI"))
    assert again.position is None  # the same settings: nothing created now
    target = {"scope": org, "endpoint_id": view.id}
    until = datetime.now(UTC) + timedelta(days=1)
    await endpoints.change(
        action="rotate", **target, secret="k1:bmV3", previous_secret_expires_at=until
    )
    await endpoints.change(
        action="change", **target, url="https://new.example.com/", description="new"
    )
    await endpoints.change(action="disable", **target, reason="maintenance")
    await endpoints.change(action="enable", **target)
    gone = await endpoints.change(action="delete", **target)
    assert gone.status == "deleted"
    recorded = metadata_of(endpoints.app, view.id)
    assert [name for name, _ in recorded] == [
        "Added", "SecretRotated", "Changed", "Disabled", "Enabled", "Deleted"
    ]  # fmt: skip
    for _, metadata in recorded:
        assert metadata["workflow_id"].startswith(f"{WEBHOOK_ENDPOINT_WORKFLOW_PREFIX}{view.id}-")
        assert metadata["activity_type"] == "change_webhook_endpoint"
    assert endpoints.flows.mailer.sent == []  # a person's disable mails nobody


async def test_refusals_come_back_typed(endpoints: Endpoints) -> None:
    org, other = uuid4(), uuid4()
    view = await endpoints.change(**added(org))
    # Another organization's endpoint is not found, with the text of one never created.
    hidden = await endpoints.refused(action="enable", scope=other, endpoint_id=view.id)
    never = await endpoints.refused(action="enable", scope=other, endpoint_id=uuid4())
    assert (hidden.kind, never.kind) == ("not_found", "not_found")
    assert hidden.message == f"webhook endpoint {view.id} not found"
    conflict = await endpoints.refused(**added(org, url="https://other.example.com/"))
    assert conflict.kind == "conflict"
    assert conflict.differences == {
        "url": [
            "https://hooks.example.com/a4c?key=receiver-own-token",
            "https://other.example.com/",
        ]
    }
    invalid = await endpoints.refused(**added(org, name="ops", url="ftp://x.example.com/"))
    assert invalid.kind == "invalid" and [e["field"] for e in invalid.errors] == ["url"]
    assert SECRET not in str(invalid) and SECRET not in repr(invalid.errors)
    # Refused before anything starts: the action's fields, an organization adding for another.
    missing = await endpoints.refused(action="disable", scope=org, endpoint_id=view.id)
    assert missing.kind == "invalid" and "reason" in str(missing.errors)
    foreign = await endpoints.refused(**added(other, scope=org))
    assert foreign.kind == "invalid"
    await endpoints.change(action="delete", scope=org, endpoint_id=view.id)
    deleted = await endpoints.refused(action="enable", scope=org, endpoint_id=view.id)
    assert deleted.kind == "deleted"


async def test_an_automatic_disable_is_mailed_once_per_address_even_when_retried(
    tmp_path: Path, temporal_client: Client, task_queue: str, smtp_server: SMTPTestServer
) -> None:
    tag = uuid4().hex[:8]
    admins = [f"admin-{tag}@example.com", f"Second-{tag}@Example.com"]
    async with running(
        tmp_path, temporal_client, task_queue, smtp_mailer(smtp_server)
    ) as endpoints:
        # A name stored before the organization name rule: markup, escaped in the mail.
        old = Organization(
            name="Hooked <b>Org</b>", slug=f"hooked-{tag}", org_type="partner",
            parent_id=None, tags=[], domain=None,
        )  # fmt: skip
        endpoints.app.save(old)
        org = endpoints.app.get_organization(old.id)
        view = await endpoints.change(**added(org.id))
        endpoints.app.fail_after_disable = 1  # committed, then the attempt fails: retried
        disable: dict[str, Any] = {
            "action": "disable",
            "scope": None,  # the delivery daemon acts for every organization
            "endpoint_id": view.id,
            "reason": "failing for 5 days: HTTP 503 <script>",
            "automatic": True,
            "notify": [*admins, admins[0].upper()],
        }
        off = await endpoints.change(**disable)
        assert (off.status, off.disabled_automatically) == ("disabled", True)
        assert endpoints.app.fail_after_disable == 0  # the retry happened
        # The daemon asking again (a restart) finds it disabled: nobody is mailed twice.
        again = await endpoints.change(**disable)
        assert again.position is None
        events = [name for name, _ in metadata_of(endpoints.app, view.id)]
    assert events == ["Added", "Disabled"]
    expected_id = disabled_message_id(view.id, 2, LINKS.mail_domain)
    for address in admins:
        (mail,) = smtp_server.messages_to(address.lower())
        assert str(mail["Message-ID"]).strip() == expected_id
        assert mail["Subject"] == "Webhook endpoint billing disabled"
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        html = mail.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "https://hooks.example.com" in text and "failing for 5 days" in text
        assert "Hooked <b>Org</b>" in text
        assert "&lt;b&gt;Org&lt;/b&gt;" in html and "&lt;script&gt;" in html
        assert "<script>" not in html and "<b>Org" not in html
        for body in (text, html, mail.as_string()):
            assert SECRET not in body and "receiver-own-token" not in body and "/a4c" not in body


async def test_a_person_s_disable_or_one_without_addresses_mails_nobody(
    endpoints: Endpoints,
) -> None:
    org = uuid4()
    view = await endpoints.change(**added(org))
    target = {"scope": org, "endpoint_id": view.id, "action": "disable", "reason": "paused"}
    await endpoints.change(**target, notify=["admin@example.com"])  # not automatic
    await endpoints.change(action="enable", scope=org, endpoint_id=view.id)
    await endpoints.change(**target, automatic=True)  # automatic, nobody named
    assert endpoints.flows.mailer.sent == []


async def test_a_mail_refused_for_good_leaves_the_disable_standing(
    endpoints: Endpoints,
) -> None:
    from a4c_worker.providers.errors import PermanentProviderError

    org = uuid4()
    view = await endpoints.change(**added(org))
    endpoints.flows.mailer.fail_for("gone@example.com", PermanentProviderError("550 no such user"))
    off = await endpoints.change(
        action="disable",
        endpoint_id=view.id,
        reason="410 Gone",
        automatic=True,
        notify=["gone@example.com", "here@example.com"],
    )
    assert off.status == "disabled"
    assert [m.to for m in endpoints.flows.mailer.sent] == ["here@example.com"]


def test_the_change_model_dedupes_notify_and_keeps_secrets_out_of_its_repr() -> None:
    change = WebhookEndpointChange.model_validate(
        {**added(None), "notify": ["B@example.com", "a@example.com", "b@example.com", "x@y", 3]}
    )
    # Each once, normalised; one that is no deliverable address never stops the disable.
    assert change.notify == ["a@example.com", "b@example.com"]
    assert SECRET not in repr(change) and SECRET not in repr(change.command())
    assert change.command().secret == SECRET
