"""Every bootstrap and invitation workflow ended as its inputs and the domain say.

Listed from the dev server's visibility by type and task queue; for each workflow id the
latest run counts (an invitation continues as new). What the domain state (the read
models, already checked against the events) expects:

- **bootstrap** (``org-bootstrap-<slug>``): none still running. Completed: its
  organization is active (or offboarded since: :mod:`soaklib.check_offboarding`) and
  every invitation it reports is stored. Failed, cancelled
  or terminated: its organization, if registered at all, is deactivated and compensated
  (DNS removed or never configured, no invitation left pending). Every onboarding the
  API accepted (2xx) has a bootstrap; one the load did not cancel completed.
- **invitation** (``invitation-<id>``): a pending invitation's workflow is running (it
  waits for an accept, a revoke or the expiry); an accepted, revoked or expired one's
  completed with that very state. A workflow whose invitation was never stored (the
  domain refused to issue it) must not be running.
- every one carries its organization's search attributes (``OrganizationId``; a
  bootstrap its ``OrganizationSlug`` too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from a4c_domain.ids import organization_id
from a4c_worker.codec import PayloadKeys
from a4c_worker.converter import data_converter
from a4c_worker.search_attributes import ORGANIZATION_ID, ORGANIZATION_SLUG
from a4c_worker.workflows.bootstrap import OrganizationBootstrapWorkflow
from a4c_worker.workflows.invitation import InvitationWorkflow
from a4c_worker.workflows.models import (
    BOOTSTRAP_WORKFLOW_PREFIX,
    INVITATION_WORKFLOW_PREFIX,
    bootstrap_workflow_id,
    invitation_workflow_id,
)
from soaklib.check import Violation
from soaklib.check_store import StoreReading
from soaklib.facts import SoakFacts, TemporalFacts

PARALLEL = 16
RUNNING = WorkflowExecutionStatus.RUNNING
COMPLETED = WorkflowExecutionStatus.COMPLETED


async def connect(temporal: TemporalFacts) -> Client:
    """A client that opens sealed payloads with the stack's keys (results are read)."""
    return await Client.connect(
        temporal.address,
        namespace=temporal.namespace,
        data_converter=data_converter(PayloadKeys.parse(temporal.payload_keys)),
    )


async def latest_runs(client: Client, workflow_type: str, task_queue: str) -> dict[str, Any]:
    """The latest run of each workflow id of ``workflow_type`` on ``task_queue``."""
    query = f"WorkflowType = '{workflow_type}' AND TaskQueue = '{task_queue}'"
    latest: dict[str, WorkflowExecution] = {}
    async for execution in client.list_workflows(query):
        known = latest.get(execution.id)
        if known is None or execution.start_time > known.start_time:
            latest[execution.id] = execution
    return latest


def status_name(execution: WorkflowExecution) -> str:
    return execution.status.name.lower() if execution.status else "unknown"


async def check_workflows(facts: SoakFacts, store: StoreReading) -> list[Violation]:
    client = await connect(facts.temporal)
    queue = facts.temporal.task_queue
    bootstraps = await latest_runs(client, "OrganizationBootstrapWorkflow", queue)
    invitations = await latest_runs(client, "InvitationWorkflow", queue)
    limit = asyncio.Semaphore(PARALLEL)

    async def bounded(job: Any) -> list[Violation]:
        async with limit:
            result: list[Violation] = await job
            return result

    jobs = [
        *(_bootstrap(client, run, store) for run in bootstraps.values()),
        *_invitations(client, invitations, store),
    ]
    found = [v for vs in await asyncio.gather(*(bounded(j) for j in jobs)) for v in vs]
    found += _labelled(bootstraps, invitations, store)
    return sorted(found, key=lambda v: v.detail) + _ledger(facts, bootstraps)


def _labelled(
    bootstraps: dict[str, WorkflowExecution],
    invitations: dict[str, WorkflowExecution],
    store: StoreReading,
) -> list[Violation]:
    """Each workflow carries its organization's search attributes (how an operator finds
    an organization's workflows: docs/operating.md)."""
    expected: dict[str, tuple[WorkflowExecution, str, str | None]] = {}
    for workflow_id, bootstrap in bootstraps.items():
        slug = workflow_id.removeprefix(BOOTSTRAP_WORKFLOW_PREFIX)
        expected[workflow_id] = (bootstrap, str(organization_id(slug)), slug)
    for key, invitation in store.invitations.items():
        found_run = invitations.get(invitation_workflow_id(key))
        if found_run is not None:
            expected[found_run.id] = (found_run, str(invitation["organization_id"]), None)
    found = []
    for workflow_id, (run, org, wanted_slug) in expected.items():
        attributes = run.typed_search_attributes
        if attributes.get(ORGANIZATION_ID) != org or (
            wanted_slug is not None and attributes.get(ORGANIZATION_SLUG) != wanted_slug
        ):
            found.append(
                Violation(
                    "workflows",
                    f"workflow {workflow_id} does not carry its organization's search attributes",
                )
            )
    return found


def _ledger(facts: SoakFacts, bootstraps: dict[str, WorkflowExecution]) -> list[Violation]:
    found = []
    for onboarding in facts.ledger.onboardings:  # (a running one is reported already)
        if not 200 <= onboarding.status < 300:
            continue
        run = bootstraps.get(bootstrap_workflow_id(onboarding.slug))
        if run is None:
            found.append(
                Violation(
                    "workflows",
                    f"onboarding of {onboarding.slug} was answered {onboarding.status} but "
                    "no bootstrap workflow exists",
                )
            )
        elif not onboarding.cancelled and run.status not in (COMPLETED, RUNNING):
            found.append(
                Violation(
                    "workflows",
                    f"bootstrap of {onboarding.slug} was not cancelled but ended "
                    f"{status_name(run)}",
                )
            )
    return found


async def _bootstrap(
    client: Client, run: WorkflowExecution, store: StoreReading
) -> list[Violation]:
    slug = run.id.removeprefix(BOOTSTRAP_WORKFLOW_PREFIX)
    where = f"bootstrap of {slug}"
    if run.status == RUNNING:
        return [Violation("workflows", f"{where} is still running after the settle")]
    org = next((o for o in store.organizations.values() if o["slug"] == slug), None)
    if run.status == COMPLETED:
        handle = client.get_workflow_handle_for(
            OrganizationBootstrapWorkflow.run, run.id, run_id=run.run_id
        )
        result = await handle.result(follow_runs=False)
        if org is None or org["status"] not in ("active", "offboarded"):
            state = "not registered" if org is None else org["status"]
            return [Violation("workflows", f"{where} completed but its organization is {state}")]
        if result.organization_id != org["id"]:
            return [Violation("workflows", f"{where} completed for another organization's id")]
        missing = [i for i in result.invitation_ids if i not in store.invitations]
        if missing:
            return [
                Violation(
                    "workflows",
                    f"{where} completed reporting invitations the store lacks: "
                    f"{', '.join(map(str, missing))}",
                )
            ]
        return []
    if org is None:
        return []  # ended before registering: nothing to undo
    return _compensated(where, status_name(run), org, store)


def _compensated(
    where: str, ended: str, org: dict[str, Any], store: StoreReading
) -> list[Violation]:
    if org["status"] != "deactivated":
        return [
            Violation("workflows", f"{where} ended {ended} but its organization is {org['status']}")
        ]
    found = []
    if org["dns_status"] not in ("removed", "none"):
        found.append(
            Violation(
                "workflows",
                f"{where} ended {ended}, organization deactivated, but its DNS is "
                f"{org['dns_status']} (not removed)",
            )
        )
    pending = [
        key
        for key, invitation in store.invitations.items()
        if invitation["organization_id"] == org["id"] and invitation["status"] == "pending"
    ]
    if pending:
        found.append(
            Violation(
                "workflows",
                f"{where} ended {ended}, organization deactivated, but {len(pending)} of its "
                "invitations are still pending",
            )
        )
    return found


def _invitations(
    client: Client, runs: dict[str, WorkflowExecution], store: StoreReading
) -> Iterable[Any]:
    for key, invitation in store.invitations.items():
        yield _invitation(client, key, invitation["status"], runs.get(invitation_workflow_id(key)))
    stored = {invitation_workflow_id(key) for key in store.invitations}
    for workflow_id, run in runs.items():
        if workflow_id not in stored and run.status == RUNNING:
            yield _nothing_stored(workflow_id)


async def _nothing_stored(workflow_id: str) -> list[Violation]:
    invitation = workflow_id.removeprefix(INVITATION_WORKFLOW_PREFIX)
    return [
        Violation("workflows", f"invitation {invitation}: its workflow runs but nothing is stored")
    ]


async def _invitation(
    client: Client, key: UUID, status: str, run: WorkflowExecution | None
) -> list[Violation]:
    where = f"invitation {key} ({status})"
    if status == "pending":
        if run is None or run.status != RUNNING:
            ended = "none exists" if run is None else f"it ended {status_name(run)}"
            return [Violation("workflows", f"{where}: no workflow waits for it ({ended})")]
        return []
    if run is None:
        return [Violation("workflows", f"{where}: no workflow ever ran it")]
    if run.status == RUNNING:
        return [Violation("workflows", f"{where}: its workflow is still running")]
    if run.status != COMPLETED:
        return [Violation("workflows", f"{where}: its workflow ended {status_name(run)}")]
    handle = client.get_workflow_handle_for(InvitationWorkflow.run, run.id, run_id=run.run_id)
    result = await handle.result(follow_runs=False)
    if result.state != status:
        return [Violation("workflows", f"{where}: its workflow completed {result.state}")]
    return []
