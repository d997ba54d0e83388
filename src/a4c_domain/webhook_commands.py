"""The webhook endpoint commands of ``OnboardingApplication`` (a mixin).

Add (again: a no-op, or bringing a deleted endpoint back), change, rotate the secret,
disable, enable, delete, and read one. Every command but add takes the ``scope`` the
caller acts for: an organization sees only the endpoints it owns, and any other one
(the platform's included) is ``WebhookEndpointNotFound`` with the text of one never
created; ``ALL_ORGANIZATIONS`` (operators, the delivery daemon) sees them all. Secrets
arrive sealed (a4c_webhooks.sealing) and never leave: views carry none.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from a4c_domain import webhook_command_models as w
from a4c_domain.application_base import ApplicationBase
from a4c_domain.commands import Reason, validate
from a4c_domain.errors import InvalidCommand, WebhookEndpointNotFound
from a4c_domain.fields import AwareDatetime
from a4c_domain.scope import ALL_ORGANIZATIONS, OrganizationScope, ScopeField, checked
from a4c_domain.signatures import command
from a4c_domain.views import WebhookEndpointView
from a4c_domain.webhook_endpoint import EndpointSettings, WebhookEndpoint


def _visible(endpoint: WebhookEndpoint, scope: object) -> bool:
    """The owner sees its endpoints; the platform's (owner None) only ALL_ORGANIZATIONS."""
    return checked(scope) is ALL_ORGANIZATIONS or endpoint.owner_id == scope


def _recorded_settings(
    cmd: w.AddWebhookEndpoint | w.ChangeWebhookEndpoint, owner_id: UUID | None
) -> EndpointSettings:
    """The command's settings as recorded: an organization's endpoint filters on its
    owner's events (the models refused any other organization)."""
    return EndpointSettings(
        url=cmd.url,
        event_types=cmd.event_types,
        organization_id=cmd.organization_id if owner_id is None else owner_id,
        description=cmd.description,
    )


class WebhookCommands(ApplicationBase):
    """Webhook endpoints: where a4c delivers public events, and which."""

    @command(w.AddWebhookEndpoint)
    def add_webhook_endpoint(
        self,
        *,
        owner_id: UUID | None,
        name: w.EndpointName,
        url: w.WebhookURL,
        event_types: w.EventTypes | None,
        organization_id: UUID | None,
        description: w.Description = "",
        secret: w.SealedSecret,
    ) -> WebhookEndpointView:
        """Add the endpoint ``name`` of ``owner_id`` (None: the platform's).

        An organization's endpoint filters on its own events only: ``organization_id``
        None or the owner (recorded as the owner). The same settings again are a no-op
        (``position`` None; ``secret`` ignored: the first one stands), different ones a
        ``WebhookEndpointConflict``; a deleted endpoint is reinstated with ``secret``.
        """
        cmd = validate(
            w.AddWebhookEndpoint,
            owner_id=owner_id,
            name=name,
            url=url,
            event_types=event_types,
            organization_id=organization_id,
            description=description,
            secret=secret,
        )
        settings = _recorded_settings(cmd, cmd.owner_id)

        def decide(endpoint: WebhookEndpoint | None) -> WebhookEndpoint | None:
            if endpoint is None:
                return WebhookEndpoint(
                    owner_id=cmd.owner_id, name=cmd.name, **settings, secret=cmd.secret
                )
            reinstated = endpoint.reinstate(**settings, secret=cmd.secret)
            return endpoint if reinstated else None

        endpoint_id = WebhookEndpoint.create_id(cmd.owner_id, cmd.name)
        endpoint, position = self._execute(endpoint_id, WebhookEndpoint, decide, assume_new=True)
        return WebhookEndpointView.of(endpoint, position)

    @command(w.ChangeWebhookEndpoint)
    def change_webhook_endpoint(
        self,
        *,
        scope: ScopeField,
        endpoint_id: UUID,
        url: w.WebhookURL,
        event_types: w.EventTypes | None,
        organization_id: UUID | None,
        description: w.Description,
    ) -> WebhookEndpointView:
        """Replace its settings (the same again: a no-op); ``WebhookEndpointDeleted``
        once deleted. An organization's endpoint keeps filtering on its owner only."""
        cmd = validate(
            w.ChangeWebhookEndpoint,
            scope=scope,
            endpoint_id=endpoint_id,
            url=url,
            event_types=event_types,
            organization_id=organization_id,
            description=description,
        )

        def change(endpoint: WebhookEndpoint) -> None:
            if w.owner_organization_refused(endpoint.owner_id, cmd.organization_id):
                raise InvalidCommand(
                    "ChangeWebhookEndpoint",
                    [{"field": "organization_id", "message": w.OWNER_ORGANIZATION}],
                )
            endpoint.change(**_recorded_settings(cmd, endpoint.owner_id))

        return self._endpoint_command(cmd, change)

    @command(w.RotateWebhookSecret)
    def rotate_webhook_secret(
        self,
        *,
        scope: ScopeField,
        endpoint_id: UUID,
        secret: w.SealedSecret,
        previous_secret_expires_at: AwareDatetime,
    ) -> WebhookEndpointView:
        """Sign with ``secret`` from now on, and with the previous one too until
        ``previous_secret_expires_at``; the same sealed secret again is a no-op."""
        cmd = validate(
            w.RotateWebhookSecret,
            scope=scope,
            endpoint_id=endpoint_id,
            secret=secret,
            previous_secret_expires_at=previous_secret_expires_at,
        )
        return self._endpoint_command(
            cmd, lambda e: e.rotate_secret(cmd.secret, cmd.previous_secret_expires_at)
        )

    @command(w.DisableWebhookEndpoint)
    def disable_webhook_endpoint(
        self, *, scope: ScopeField, endpoint_id: UUID, reason: Reason, automatic: bool = False
    ) -> WebhookEndpointView:
        """Stop deliveries (already disabled: a no-op, the first reason stands);
        ``automatic``: the delivery daemon's decision, not a person's."""
        cmd = validate(
            w.DisableWebhookEndpoint,
            scope=scope,
            endpoint_id=endpoint_id,
            reason=reason,
            automatic=automatic,
        )
        return self._endpoint_command(cmd, lambda e: e.disable(cmd.reason, cmd.automatic))

    @command(w.EnableWebhookEndpoint)
    def enable_webhook_endpoint(
        self, *, scope: ScopeField, endpoint_id: UUID
    ) -> WebhookEndpointView:
        """Deliver again, from the events that follow (enabled already: a no-op)."""
        cmd = validate(w.EnableWebhookEndpoint, scope=scope, endpoint_id=endpoint_id)
        return self._endpoint_command(cmd, WebhookEndpoint.enable)

    @command(w.DeleteWebhookEndpoint)
    def delete_webhook_endpoint(
        self, *, scope: ScopeField, endpoint_id: UUID
    ) -> WebhookEndpointView:
        """Delete (again: a no-op); adding the same name again brings it back."""
        cmd = validate(w.DeleteWebhookEndpoint, scope=scope, endpoint_id=endpoint_id)
        return self._endpoint_command(cmd, WebhookEndpoint.delete)

    def get_webhook_endpoint(
        self, scope: OrganizationScope, endpoint_id: UUID
    ) -> WebhookEndpointView:
        """The endpoint, if ``scope`` may see it (a deleted one too: its status says so)."""
        endpoint = self._load(endpoint_id, WebhookEndpoint)
        if endpoint is None or not _visible(endpoint, scope):
            raise WebhookEndpointNotFound(endpoint_id)
        return WebhookEndpointView.of(endpoint)

    def _endpoint_command(
        self, cmd: w.WebhookEndpointCommand, command: Callable[[WebhookEndpoint], None]
    ) -> WebhookEndpointView:
        def decide(endpoint: WebhookEndpoint | None) -> WebhookEndpoint:
            if endpoint is None or not _visible(endpoint, cmd.scope):
                raise WebhookEndpointNotFound(cmd.endpoint_id)
            command(endpoint)
            return endpoint

        endpoint, position = self._execute(cmd.endpoint_id, WebhookEndpoint, decide)
        return WebhookEndpointView.of(endpoint, position)
