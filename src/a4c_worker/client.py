"""Client-side helpers: connect with the right converter, start, follow and steer workflows.

Start policy for bootstraps (one organization per slug): the workflow id is derived
from the slug, a start while one is running joins it (``USE_EXISTING``: same handle,
no second run), and a start after it closed is refused (``REJECT_DUPLICATE`` raises
``WorkflowAlreadyStartedError``): a slug is bootstrapped once, whatever the outcome;
a failed, compensated organization stays deactivated and needs a new slug.

Invitations issued one by one (:func:`invite`) are issued by their workflow, and the
caller learns the outcome in the same call (update-with-start). The workflow id
follows from the invitation (organization, normalised address, generation): the same
request while it runs joins it; after it failed (the domain refused, nothing stored)
a new run may ask again; after it ended otherwise the invitation is settled
(:class:`InvitationClosed`).

Offboardings (:func:`start_offboarding`) are one per slug at a time: a start while one
runs joins it; after one completed a start is refused (``WorkflowAlreadyStartedError``:
the organization is offboarded, read that run's progress); after one failed or was
cancelled a new one may run (each of its steps is idempotent).

Webhook endpoint changes (:func:`change_webhook_endpoint`) each run a short workflow of
their own; the domain's refusals come back as :class:`WebhookEndpointRefused`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from a4c_domain.commands import field_errors
from a4c_domain.identity import SignInIdentity
from a4c_domain.ids import organization_id as organization_id_of
from a4c_domain.views import WebhookEndpointView
from a4c_worker.config import DEFAULT_TASK_QUEUE
from a4c_worker.connection import TemporalConnection
from a4c_worker.contracts import Invitee, SignInCode, accept_proof
from a4c_worker.converter import data_converter
from a4c_worker.search_attributes import organization_search_attributes
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.invitation import NOT_READY, InvitationWorkflow
from a4c_worker.workflows.models import (
    DAY,
    WEBHOOK_ENDPOINT_WORKFLOW_PREFIX,
    AcceptRequest,
    BootstrapInput,
    BootstrapProgress,
    BootstrapResult,
    InvitationInput,
    InvitationStatus,
    InvitationToIssue,
    OffboardingInput,
    OffboardingResult,
    ResendLimit,
    SSOAcceptRequest,
    StepPolicy,
    WebhookEndpointChange,
    bootstrap_workflow_id,
    invitation_workflow_id,
    offboarding_workflow_id,
)
from a4c_worker.workflows.offboarding import OrganizationOffboardingWorkflow
from a4c_worker.workflows.webhook_endpoint import WebhookEndpointWorkflow

# One workflow per id: a start while it runs joins it, a start after it closed is refused.
ONCE_PER_ID: dict[str, Any] = {
    "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
    "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
}

# An invitation's workflow: joined while it runs; started again only after it failed (the
# domain refused to issue, so nothing was stored and asking again may now succeed).
ISSUE_PER_ID: dict[str, Any] = {
    "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
    "id_reuse_policy": WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
}

# How long an accept waits for a just-started invitation to be ready (seconds).
NOT_READY_PATIENCE = 10.0
# How often a follower asks a bootstrap for its progress (seconds).
POLL_INTERVAL = 0.5

BootstrapHandle = WorkflowHandle[OrganizationBootstrapWorkflow, BootstrapResult]
InvitationHandle = WorkflowHandle[InvitationWorkflow, InvitationStatus]
OffboardingHandle = WorkflowHandle[OrganizationOffboardingWorkflow, OffboardingResult]


async def connect(connection: TemporalConnection, **options: Any) -> Client:
    """A client on ``connection`` (address, namespace, TLS, API key: one resolved
    configuration, see :mod:`a4c_worker.connection`) that speaks the workers' data
    converter, sealing and opening payloads with the connection's payload keys.
    ``options``: further ``Client.connect`` arguments (``runtime``)."""
    return await Client.connect(
        **connection.client_options(),
        data_converter=data_converter(connection.payload_keys),
        **options,
    )


async def start_bootstrap(
    client: Client,
    input: BootstrapInput | dict[str, Any],
    task_queue: str,
    *,
    after_failure: bool = False,
) -> BootstrapHandle:
    """Validate (``pydantic.ValidationError`` naming each field) and start, or join.

    Validation happens here, before anything reaches Temporal or the event store. The
    workflow carries its organization's search attributes from the start.
    ``after_failure``: the caller found that the last run failed before registering
    anything, so a new run may follow it (one that completed is still never repeated).
    """
    spec = BootstrapInput.model_validate(
        input.model_dump() if isinstance(input, BootstrapInput) else input
    )
    return await client.start_workflow(
        OrganizationBootstrapWorkflow.run,
        spec,
        id=bootstrap_workflow_id(spec.slug),
        task_queue=task_queue,
        search_attributes=organization_search_attributes(
            organization_id_of(spec.slug), spec.slug, spec.tags
        ),
        # Started again only after a failed run, as an invitation's workflow is.
        **(ISSUE_PER_ID if after_failure else ONCE_PER_ID),
    )


def bootstrap_handle(client: Client, slug: str) -> BootstrapHandle:
    return client.get_workflow_handle_for(
        OrganizationBootstrapWorkflow.run, bootstrap_workflow_id(slug)
    )


async def watch_bootstrap(
    handle: BootstrapHandle,
    on_progress: Callable[[BootstrapProgress], None],
    *,
    poll_interval: float = POLL_INTERVAL,
    check: Callable[[], None] = lambda: None,
) -> BootstrapResult:
    """Show ``on_progress`` each polled progress until the workflow closes; its result.

    The one follow loop (``a4c-worker bootstrap`` and ``a4c dev``). The last progress is
    queried after the workflow closed, so the final state is always shown. ``check`` runs
    before each poll (a stop request raises there). A failed workflow raises
    ``WorkflowFailureError``.
    """
    result = asyncio.create_task(handle.result())
    try:
        while True:
            check()
            done = result.done()  # read before the query, so the last state is shown
            progress = await _query_progress(handle)
            if progress is not None:
                on_progress(progress)
            if done:
                return result.result()
            await asyncio.wait({result}, timeout=poll_interval)
    finally:
        if not result.done():
            result.cancel()


async def _query_progress(handle: BootstrapHandle) -> BootstrapProgress | None:
    """The progress, or None while the workflow has not run its first task yet."""
    try:
        return await handle.query(OrganizationBootstrapWorkflow.progress)
    except WorkflowQueryFailedError:
        return None


async def start_offboarding(
    client: Client,
    input: OffboardingInput | dict[str, Any],
    task_queue: str,
    *,
    tags: Sequence[str] = (),
) -> OffboardingHandle:
    """Validate and start the offboarding of ``input.slug``, or join the one running.

    Raises ``WorkflowAlreadyStartedError`` when one completed already (the organization
    is offboarded). ``tags``: the organization's, for its search attributes (as the
    bootstrap's)."""
    spec = OffboardingInput.model_validate(
        input.model_dump() if isinstance(input, OffboardingInput) else input
    )
    return await client.start_workflow(
        OrganizationOffboardingWorkflow.run,
        spec,
        id=offboarding_workflow_id(spec.slug),
        task_queue=task_queue,
        search_attributes=organization_search_attributes(
            organization_id_of(spec.slug), spec.slug, tags
        ),
        **ISSUE_PER_ID,
    )


def offboarding_handle(client: Client, slug: str) -> OffboardingHandle:
    return client.get_workflow_handle_for(
        OrganizationOffboardingWorkflow.run, offboarding_workflow_id(slug)
    )


async def start_invitation(
    client: Client,
    input: InvitationInput | dict[str, Any],
    task_queue: str,
    *,
    search_attributes: TypedSearchAttributes = TypedSearchAttributes.empty,
) -> InvitationHandle:
    """Start the lifecycle of an invitation issued outside a bootstrap (one per id).

    ``search_attributes``: its organization's
    (:func:`~a4c_worker.search_attributes.organization_search_attributes`); the input
    does not name the organization.
    """
    spec = InvitationInput.model_validate(
        input.model_dump() if isinstance(input, InvitationInput) else input
    )
    return await client.start_workflow(
        InvitationWorkflow.run,
        spec,
        id=invitation_workflow_id(spec.invitation_id),
        task_queue=task_queue,
        search_attributes=search_attributes,
        **ONCE_PER_ID,
    )


class InviteRefused(Exception):
    """The invitation was not issued: the domain refused it and nothing was stored.

    ``error_type`` is the domain error's class name (``OrganizationInactive``,
    ``InvitationConflict``, ``InvalidCommand``, ``OrganizationNotFound``...); ``details``
    its details (for ``InvalidCommand``, the field errors).
    """

    def __init__(self, error_type: str, message: str, details: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.details = tuple(details)


class InvitationClosed(Exception):
    """This invitation (organization, address, generation) is settled; it is not issued again.

    ``state`` is how it ended (accepted, revoked, expired; or Temporal's word, such as
    ``terminated``). Inviting the address again takes the next generation.
    """

    def __init__(self, invitation_id: UUID, state: str) -> None:
        super().__init__(f"invitation {invitation_id} is already {state}")
        self.invitation_id = invitation_id
        self.state = state


async def invite(
    client: Client,
    *,
    organization_id: UUID,
    organization_name: str,
    invitee: Invitee,
    generation: int = 1,
    task_queue: str,
    organization_slug: str | None = None,
    organization_tags: Sequence[str] = (),
    ttl_seconds: float = 7 * DAY,
    reminder_before_seconds: float = DAY,
    activities: StepPolicy | None = None,
    resends: ResendLimit | None = None,
) -> InvitationStatus:
    """Issue an invitation through its workflow; its status once issued.

    Bad input is refused here (``pydantic.ValidationError`` naming the field) before
    anything is sent. The same request again returns the same invitation (one invitation,
    one workflow). Raises :class:`InviteRefused` when the domain refuses (nothing is
    stored) and :class:`InvitationClosed` when the invitation has already ended.
    ``organization_slug`` and ``organization_tags`` label the workflow for visibility
    queries (its organization id always does). ``resends``: how often the invitation
    may be re-sent (the workflow holds it to that, whoever asks).
    """
    request = InvitationToIssue(
        organization_id=organization_id, invitee=invitee, generation=generation
    )
    spec = InvitationInput(
        invitation_id=request.invitation_id,
        organization_name=organization_name,
        ttl_seconds=ttl_seconds,
        reminder_before_seconds=reminder_before_seconds,
        issue=request,
        activities=activities or StepPolicy(),
        resends=resends or ResendLimit(),
    )
    start = WithStartWorkflowOperation(
        InvitationWorkflow.run,
        spec,
        id=invitation_workflow_id(request.invitation_id),
        task_queue=task_queue,
        search_attributes=organization_search_attributes(
            organization_id, organization_slug, organization_tags
        ),
        **ISSUE_PER_ID,
    )
    try:
        return await client.execute_update_with_start_workflow(
            InvitationWorkflow.issued, request, start_workflow_operation=start
        )
    except WorkflowAlreadyStartedError:  # closed, and not by a refusal
        # The start operation holds the same error: take it, or asyncio reports it as
        # never retrieved.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start.workflow_handle()
        raise await _how_it_ended(client, request.invitation_id) from None
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if not isinstance(cause, ApplicationError) or cause.type is None:
            raise
        raise InviteRefused(cause.type, cause.message, cause.details) from None


async def _how_it_ended(client: Client, invitation_id: UUID) -> InvitationClosed:
    return InvitationClosed(invitation_id, await invitation_state(client, invitation_id))


async def invitation_state(client: Client, invitation_id: UUID) -> str:
    """Where an invitation's workflow stands: its state while it runs or once it completed,
    else Temporal's word for how it ended (``terminated``...). ``RPCError`` NOT_FOUND
    if there is no such workflow."""
    handle = invitation_handle(client, invitation_id)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        return (await handle.query(InvitationWorkflow.status)).state
    if description.status == WorkflowExecutionStatus.COMPLETED:
        return (await handle.result()).state
    # Ended some other way (failed, terminated, timed out...): say so as Temporal does.
    return description.status.name.lower() if description.status else "closed"


def invitation_handle(client: Client, invitation_id: UUID) -> InvitationHandle:
    return client.get_workflow_handle_for(
        InvitationWorkflow.run, invitation_workflow_id(invitation_id)
    )


async def accept_invitation(
    client: Client,
    invitation_id: UUID,
    token: str,
    user_id: str,
    identity: SignInIdentity | None = None,
) -> InvitationStatus:
    """Accept with the token from the mail; only its proof is sent (history never sees it).

    ``identity``: who signed in (the platform's provider, or the dev sign-in with no
    issuer). A wrong token fails with ``WorkflowUpdateFailedError`` whose cause has type
    ``InvalidToken`` (``TooManyAttempts`` once the invitation has seen too many wrong
    ones lately; its first detail is the seconds to wait); the invitation keeps waiting.
    ``SSORequired``: the organization's single sign-on covers the invited address (see
    :func:`accept_invitation_with_sso`). While a just-started invitation fetches what it
    checks proofs against, it answers ``InvitationNotReady``: that is retried here for up
    to :data:`NOT_READY_PATIENCE`.
    """
    request = AcceptRequest(token_proof=accept_proof(token), user_id=user_id, identity=identity)
    return await _accept(client, invitation_id, InvitationWorkflow.accept, request)


async def accept_invitation_with_sso(
    client: Client, invitation_id: UUID, token: str, sign_in: SignInCode
) -> InvitationStatus:
    """Accept by a sign-in through the organization's own provider: its code is exchanged
    and verified by the worker, and the verified person accepts (``accepted_by`` is
    their user id, :func:`a4c_domain.identity.sso_user_id`). Refusals as
    :func:`accept_invitation`'s, and a sign-in that proves nothing (``CodeRejected``,
    ``InvalidIDToken``, ``EmailNotVerified``), or a person who is not the invited address
    (``IdentityMismatch``)."""
    request = SSOAcceptRequest(token_proof=accept_proof(token), **sign_in.model_dump())
    return await _accept(client, invitation_id, InvitationWorkflow.accept_with_sso, request)


async def _accept(
    client: Client, invitation_id: UUID, update: Any, request: AcceptRequest | SSOAcceptRequest
) -> InvitationStatus:
    handle = invitation_handle(client, invitation_id)
    pause, waited = 0.05, 0.0
    while True:
        try:
            status: InvitationStatus = await handle.execute_update(update, request)
            return status
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            not_ready = isinstance(cause, ApplicationError) and cause.type == NOT_READY
            if not not_ready or waited >= NOT_READY_PATIENCE:
                raise
        await asyncio.sleep(pause)
        waited += pause
        pause = min(pause * 2, 1.0)


async def revoke_invitation(client: Client, invitation_id: UUID, reason: str) -> InvitationStatus:
    return await invitation_handle(client, invitation_id).execute_update(
        InvitationWorkflow.revoke, reason
    )


async def resend_invitation(client: Client, invitation_id: UUID) -> InvitationStatus:
    return await invitation_handle(client, invitation_id).execute_update(InvitationWorkflow.resend)


# --- webhook endpoints --------------------------------------------------------------

WebhookRefusal = Literal["not_found", "conflict", "deleted", "invalid"]
# The domain's refusals, by error type, as the API maps them (404, 409, 410, 422).
WEBHOOK_REFUSALS: dict[str, WebhookRefusal] = {
    "WebhookEndpointNotFound": "not_found",
    "WebhookEndpointConflict": "conflict",
    "WebhookEndpointDeleted": "deleted",
    "InvalidCommand": "invalid",
    "InvalidScope": "invalid",
}


class WebhookEndpointRefused(Exception):
    """The domain refused the change; nothing was stored.

    ``kind``: ``not_found`` (also another organization's endpoint), ``conflict`` (added
    again with other settings: ``differences`` is ``{field: [recorded, given]}``),
    ``deleted``, ``invalid`` (``errors``: ``{"field", "message"}`` per problem).
    """

    def __init__(
        self,
        kind: WebhookRefusal,
        message: str,
        differences: Mapping[str, Any] | None = None,
        errors: Sequence[Mapping[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.differences = dict(differences or {})
        self.errors = [dict(e) for e in errors]


async def change_webhook_endpoint(
    client: Client,
    change: WebhookEndpointChange | dict[str, Any],
    *,
    task_queue: str = DEFAULT_TASK_QUEUE,
) -> WebhookEndpointView:
    """Run ``change`` through its workflow; the endpoint once it is applied.

    Bad input and the domain's refusals raise :class:`WebhookEndpointRefused`; a store
    that stayed out of reach fails the workflow (``WorkflowFailureError``), to retry.
    Every change is a workflow of its own (the commands are idempotent: the same change
    again is a no-op).
    """
    try:
        spec = WebhookEndpointChange.model_validate(
            change.model_dump() if isinstance(change, WebhookEndpointChange) else change
        )
    except ValidationError as exc:
        raise WebhookEndpointRefused(
            "invalid", "invalid webhook endpoint change", errors=field_errors(exc)
        ) from None
    try:
        return await client.execute_workflow(
            WebhookEndpointWorkflow.run,
            spec,
            id=f"{WEBHOOK_ENDPOINT_WORKFLOW_PREFIX}{spec.endpoint_id}-{uuid4().hex}",
            task_queue=task_queue,
        )
    except WorkflowFailureError as exc:
        refused = exc.cause
        if not isinstance(refused, ApplicationError) or refused.type not in WEBHOOK_REFUSALS:
            raise
        raise _refused(refused) from None


def _refused(failure: ApplicationError) -> WebhookEndpointRefused:
    kind = WEBHOOK_REFUSALS[failure.type or ""]
    details = list(failure.details)
    first = details[0] if details else None
    if kind == "conflict" and isinstance(first, Mapping):
        return WebhookEndpointRefused(kind, failure.message, differences=first)
    if kind == "invalid" and isinstance(first, list):
        return WebhookEndpointRefused(kind, failure.message, errors=first)
    return WebhookEndpointRefused(kind, failure.message)
