"""WebhookEndpointWorkflow: one change to a webhook endpoint, one short workflow.

The API (people's changes) and the delivery daemon (automatic disables) ask through it,
so every endpoint command is issued by an activity, under its cause, retried when the
store does not answer. A refusal ends the run with the domain's error type (the client
turns it into ``WebhookEndpointRefused``). When the change is an automatic disable that
this run made, each address in ``notify`` gets one mail (one activity each, so a retry
re-sends to nobody else); a mail that cannot be sent is logged, never undoes the disable.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from a4c_domain.views import WebhookEndpointView
    from a4c_worker.activities.webhooks import (
        DisabledMailInput,
        WebhookActivities,
        WebhookEndpointOutcome,
    )
    from a4c_worker.workflows.models import WebhookEndpointChange
    from a4c_worker.workflows.policies import step_options
    from a4c_worker.workflows.saga import application_cause, describe


@workflow.defn
class WebhookEndpointWorkflow:
    @workflow.run
    async def run(self, change: WebhookEndpointChange) -> WebhookEndpointView:
        try:
            outcome: WebhookEndpointOutcome = await workflow.execute_activity_method(
                WebhookActivities.change_webhook_endpoint,
                change.command(),
                **step_options(change.activities),
            )
        except ActivityError as exc:
            refused = application_cause(exc)
            if refused is None or not refused.non_retryable:
                raise
            # The refusal itself, so the caller reads its type and details directly.
            raise ApplicationError(
                refused.message, *refused.details, type=refused.type, non_retryable=True
            ) from None
        version = outcome.disabled_version
        if change.automatic and change.notify and version is not None:
            await asyncio.gather(*(self._tell(change, version, to) for to in change.notify))
        return outcome.endpoint

    async def _tell(self, change: WebhookEndpointChange, version: int, to: str) -> None:
        try:
            outcome = await workflow.execute_activity_method(
                WebhookActivities.send_webhook_disabled_mail,
                DisabledMailInput(endpoint_id=change.endpoint_id, disabled_version=version, to=to),
                **step_options(change.activities),
            )
        except ActivityError as exc:
            workflow.logger.warning("webhook disable mail not sent: %s", describe(exc))
            return
        if not outcome.sent:
            workflow.logger.warning("webhook disable mail refused: %s", outcome.error)
