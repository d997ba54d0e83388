"""The webhook endpoint activities: issue one endpoint command, tell admins of a disable.

``change_webhook_endpoint`` is the only code that issues the endpoint commands (the API
and the delivery daemon ask through :class:`~a4c_worker.workflows.webhook_endpoint.
WebhookEndpointWorkflow`). A refusal leaves as a non-retryable ``ApplicationError``
typed by the domain error's class name, a conflict with its differences as details, so
the client can hand the API a typed refusal.

An automatic disable is mailed to the addresses the caller named once per disable, not
once per attempt: the activity reports whether the endpoint's current ``Disabled`` event
was caused by this very workflow run (its cause metadata), which a retry after the
command committed still finds; a second workflow asking for the same disable finds
another run's event and mails nobody. Each mail has a Message-ID derived from the
endpoint and the version of that event. No secret, sealed or not, is in any result, and
the mail shows the endpoint's scheme, host and port only (a path or query may hold one).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal, Self, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import Field, model_validator
from pydantic_core import to_jsonable_python
from temporalio import activity
from temporalio.exceptions import ApplicationError

from a4c_domain import ALL_ORGANIZATIONS, OrganizationScope, caused_by, webhook_endpoint_id
from a4c_domain.commands import Email
from a4c_domain.errors import A4CError, InvalidCommand, WebhookEndpointConflict
from a4c_domain.redaction import redact
from a4c_domain.views import WebhookEndpointView
from a4c_domain.webhook_endpoint import EndpointSettings, WebhookEndpoint
from a4c_worker.activities.base import (
    ActivityBase,
    current_activity_cause,
    temporal_errors,
    to_application_error,
)
from a4c_worker.contracts import Model
from a4c_worker.providers.email import OutgoingMail
from a4c_worker.providers.errors import PermanentProviderError, ProviderError

WebhookAction = Literal["add", "change", "rotate", "disable", "enable", "delete"]
# What each action needs besides the endpoint (the domain checks the values).
REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("name", "url", "secret"),
    "change": ("url",),
    "rotate": ("secret", "previous_secret_expires_at"),
    "disable": ("reason",),
    "enable": (),
    "delete": (),
}
DISABLED_MAIL = "webhook_endpoint_disabled"
T = TypeVar("T")


class WebhookCommand(Model):
    """One endpoint command. ``scope`` None: all organizations (operators, the daemon).

    Values are checked by the domain (its ``InvalidCommand`` names each field); this
    checks only that the action's fields are there, and that an organization adds
    endpoints for itself only.
    """

    action: WebhookAction
    scope: UUID | None = None
    endpoint_id: UUID
    owner_id: UUID | None = None
    name: str | None = None
    url: str | None = None
    event_types: list[str] | None = None
    organization_id: UUID | None = None
    description: str = ""
    secret: str | None = Field(default=None, repr=False)  # sealed, still never shown
    previous_secret_expires_at: datetime | None = None
    reason: str | None = None
    automatic: bool = False

    @model_validator(mode="after")
    def _fields_of_the_action(self) -> Self:
        missing = [name for name in REQUIRED[self.action] if getattr(self, name) is None]
        if missing:
            raise ValueError(f"{self.action} needs {', '.join(missing)}")
        if self.action == "add" and self.scope is not None and self.owner_id != self.scope:
            raise ValueError("an organization adds endpoints of its own only (owner_id)")
        return self

    @property
    def acting_for(self) -> OrganizationScope:
        return ALL_ORGANIZATIONS if self.scope is None else self.scope

    def settings(self) -> EndpointSettings:
        """The endpoint's settings, for ``add`` and ``change`` (which require a URL)."""
        return EndpointSettings(
            url=_given(self.url),
            event_types=self.event_types,
            organization_id=self.organization_id,
            description=self.description,
        )


class WebhookEndpointOutcome(Model):
    """The endpoint after the command; ``disabled_version``: the version of the
    ``Disabled`` event this workflow run caused, if the endpoint is disabled by it."""

    endpoint: WebhookEndpointView
    disabled_version: int | None = None


class DisabledMailInput(Model):
    """One admin to tell about an automatic disable (one activity per address, so a
    retry re-sends to nobody else)."""

    endpoint_id: UUID
    disabled_version: int = Field(ge=1)
    to: Email


class DisabledMailOutcome(Model):
    sent: bool
    message_id: str | None = None
    error: str | None = None


def disabled_message_id(endpoint_id: UUID, version: int, domain: str) -> str:
    """``<webhook-disabled.{id}.{version}@{domain}>``: one message per disable."""
    return f"<webhook-disabled.{endpoint_id}.{version}@{domain.lower()}>"


_MAILS = Environment(
    loader=PackageLoader("a4c_worker.providers", "mails"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    keep_trailing_newline=True,
)


def destination(url: str) -> str:
    """Where an endpoint points, said without its path, query or user information."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme.lower()}://{parts.hostname or ''}{port}"


def render_disabled(
    *, name: str, url: str, organization: str, reason: str, disabled_at: datetime
) -> tuple[str, str, str]:
    """Subject, text and HTML of the mail (every value escaped in the HTML part)."""
    subject = " ".join(f"Webhook endpoint {name} disabled".split())
    values: dict[str, Any] = {
        "subject": subject,
        "name": name,
        "destination": destination(url),
        "organization": organization,
        "reason": reason,
        "disabled_at": disabled_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    text = _MAILS.get_template(f"{DISABLED_MAIL}.txt").render(values)
    html = _MAILS.get_template(f"{DISABLED_MAIL}.html").render(values)
    return subject, text, html


def _given(value: T | None) -> T:
    """A field the action requires (WebhookCommand checked that it is there)."""
    if value is None:
        raise ValueError("a field this action requires is missing")
    return value


def refusal(exc: A4CError) -> ApplicationError:
    """The failure for a domain refusal; a conflict carries its differences
    (``{field: [recorded, given]}``) as details."""
    if isinstance(exc, WebhookEndpointConflict):
        differences = to_jsonable_python({k: list(v) for k, v in exc.differences.items()})
        return ApplicationError(str(exc), differences, type=type(exc).__name__, non_retryable=True)
    return to_application_error(exc)


class WebhookActivities(ActivityBase):
    @activity.defn
    async def change_webhook_endpoint(self, input: WebhookCommand) -> WebhookEndpointOutcome:
        """Issue ``input``'s command under this activity's cause."""
        info = activity.info()
        try:
            with caused_by(current_activity_cause()):
                view = await asyncio.to_thread(self._issue, input)
                version = None
                if input.action == "disable" and view.status == "disabled":
                    version = await asyncio.to_thread(
                        self._disabled_by, view.id, info.workflow_id, info.workflow_run_id
                    )
        except A4CError as exc:
            raise refusal(exc) from exc
        return WebhookEndpointOutcome(endpoint=view, disabled_version=version)

    def _issue(self, cmd: WebhookCommand) -> WebhookEndpointView:
        app, scope, endpoint_id = self.app, cmd.acting_for, cmd.endpoint_id
        if cmd.action == "add":
            name = _given(cmd.name)
            if webhook_endpoint_id(cmd.owner_id, name) != endpoint_id:
                raise InvalidCommand(
                    "AddWebhookEndpoint",
                    [{"field": "endpoint_id", "message": "must be the id of this owner's name"}],
                )
            return app.add_webhook_endpoint(
                owner_id=cmd.owner_id, name=name, **cmd.settings(), secret=_given(cmd.secret)
            )
        if cmd.action == "change":
            return app.change_webhook_endpoint(
                scope=scope, endpoint_id=endpoint_id, **cmd.settings()
            )
        if cmd.action == "rotate":
            return app.rotate_webhook_secret(
                scope=scope,
                endpoint_id=endpoint_id,
                secret=_given(cmd.secret),
                previous_secret_expires_at=_given(cmd.previous_secret_expires_at),
            )
        if cmd.action == "disable":
            return app.disable_webhook_endpoint(
                scope=scope,
                endpoint_id=endpoint_id,
                reason=_given(cmd.reason),
                automatic=cmd.automatic,
            )
        if cmd.action == "enable":
            return app.enable_webhook_endpoint(scope=scope, endpoint_id=endpoint_id)
        return app.delete_webhook_endpoint(scope=scope, endpoint_id=endpoint_id)

    def _disabled_by(
        self, endpoint_id: UUID, workflow_id: str | None, run_id: str | None
    ) -> int | None:
        """The version of the endpoint's last ``Disabled`` event if this run caused it."""
        if workflow_id is None or run_id is None:
            return None
        for event in self.app.events.get(endpoint_id, desc=True):
            if isinstance(event, WebhookEndpoint.Disabled):
                mine = event.metadata.get("workflow_id") == workflow_id
                mine = mine and event.metadata.get("run_id") == run_id
                return event.originator_version if mine else None
        return None

    @activity.defn
    async def send_webhook_disabled_mail(self, input: DisabledMailInput) -> DisabledMailOutcome:
        """Tell one admin that the endpoint was disabled automatically.

        A permanent refusal is returned (``sent=False``), not raised: the disable stands
        and the other admins are told; transient failures raise and retry.
        """
        endpoint = await self._domain(
            self.app.get_webhook_endpoint, ALL_ORGANIZATIONS, input.endpoint_id
        )
        organization = await asyncio.to_thread(self._organization_name, endpoint)
        subject, text, html = render_disabled(
            name=endpoint.name,
            url=endpoint.url,
            organization=organization,
            # Defence in depth: a reason never carries a token or an accept link.
            reason=redact(endpoint.disabled_reason or "disabled"),
            disabled_at=endpoint.modified_on,
        )
        mail = OutgoingMail(
            to=input.to,
            subject=subject,
            text=text,
            html=html,
            message_id=disabled_message_id(
                endpoint.id, input.disabled_version, self.links.mail_domain
            ),
        )
        with temporal_errors():
            try:
                sent_id = await self.mailer.send(mail)
            except ProviderError as exc:
                if not isinstance(exc, PermanentProviderError):
                    raise
                activity.logger.warning(
                    "webhook disable mail to an address at %s refused for good",
                    mail.recipient_domain,
                )
                return DisabledMailOutcome(sent=False, error=f"{type(exc).__name__}: {exc}")
        return DisabledMailOutcome(sent=True, message_id=sent_id)

    def _organization_name(self, endpoint: WebhookEndpointView) -> str:
        owner = endpoint.owner_id or endpoint.organization_id
        if owner is None:
            return "the platform"
        try:
            return self.app.get_organization(owner).name
        except A4CError:
            return "your organization"

    def webhook_activities(self) -> list[Any]:
        """These activities, bound, for ``Worker(activities=...)``."""
        return [self.change_webhook_endpoint, self.send_webhook_disabled_mail]
