"""Disabling an endpoint on the daemon's behalf: through the worker, never directly.

The worker's endpoint workflow is the only thing that issues endpoint commands (one
short workflow per change); with ``automatic`` and ``notify`` it also mails the owner's
admins (template ``webhook_endpoint_disabled``). The daemon asks it through
:func:`a4c_worker.client.change_webhook_endpoint` with scope None (all organizations).
An endpoint deleted (or gone) meanwhile needs no disabling: that refusal is not an error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from uuid import UUID

from temporalio.client import Client

from a4c_worker.client import WebhookEndpointRefused, change_webhook_endpoint
from a4c_worker.workflows.models import WebhookEndpointChange

log = logging.getLogger(__name__)
SETTLED = frozenset({"not_found", "deleted"})  # nothing left to disable


class TemporalDisabler:
    """:class:`a4c_webhooks.daemon.EndpointDisabler` over Temporal; ``connect`` is called
    on first use (a daemon whose endpoints never fail never connects)."""

    def __init__(self, connect: Callable[[], Awaitable[Client]], task_queue: str) -> None:
        self._connect = connect
        self._task_queue = task_queue
        self._client: Client | None = None

    async def disable(self, endpoint_id: UUID, reason: str, notify: list[str]) -> None:
        if self._client is None:
            self._client = await self._connect()
        change = WebhookEndpointChange(
            action="disable",
            scope=None,  # all organizations: the daemon acts for the platform
            endpoint_id=endpoint_id,
            reason=reason,
            automatic=True,
            notify=notify,
        )
        try:
            await change_webhook_endpoint(self._client, change, task_queue=self._task_queue)
        except WebhookEndpointRefused as refused:
            if refused.kind not in SETTLED:
                raise
            log.info("endpoint %s: nothing to disable (%s)", endpoint_id, refused.kind)


__all__ = ["TemporalDisabler"]
