"""Every offboarding ended as the load asked and left nothing behind.

Listed from the dev server's visibility (``OrganizationOffboardingWorkflow`` on the
stack's task queue; the latest run of each workflow id counts: a failed run may be
followed by another). With the store's reading:

- none still running after the settle;
- **completed**: the organization is ``offboarded``, no invitation of it is pending,
  its DNS record is removed (or it never had one: BIND itself is asked by the ``dns``
  check), and its recorded ``offboarded`` mails are exactly one to each admin the run
  was started with (its input, read from its history; delivery is the ``mail`` check's);
- **cancelled** inside the grace period: nothing changed (the organization is not
  offboarded, none of its invitations was revoked by an offboarding);
- ended otherwise (refused, failed) as its latest run: a violation (the load starts a
  failed one again);
- every organization the store says is ``offboarded`` has a completed offboarding;
- every offboarding the API accepted (2xx) has a workflow, and ended as the load saw:
  offboarded unless the load's cancel was answered 200, then untouched;
- every run carries its organization's search attributes (id and slug).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowFailureError
from temporalio.exceptions import ApplicationError

from a4c_domain.ids import organization_id
from a4c_domain.invitation import ORGANIZATION_OFFBOARDED
from a4c_worker.search_attributes import ORGANIZATION_ID, ORGANIZATION_SLUG
from a4c_worker.workflows.models import (
    OFFBOARDING_WORKFLOW_PREFIX,
    OffboardingInput,
    offboarding_workflow_id,
)
from a4c_worker.workflows.offboarding import (
    OFFBOARDING_CANCELLED,
    OrganizationOffboardingWorkflow,
)
from soaklib.check import Violation
from soaklib.check_mail import address_hash, organization_mail_hash
from soaklib.check_store import StoreReading
from soaklib.check_workflows import COMPLETED, RUNNING, connect, latest_runs, status_name
from soaklib.facts import SoakFacts

PARALLEL = 8
WORKFLOW_TYPE = "OrganizationOffboardingWorkflow"


async def check_offboardings(facts: SoakFacts, store: StoreReading) -> list[Violation]:
    client = await connect(facts.temporal)
    runs = await latest_runs(client, WORKFLOW_TYPE, facts.temporal.task_queue)
    limit = asyncio.Semaphore(PARALLEL)

    async def one(run: WorkflowExecution) -> tuple[str, list[Violation]]:
        async with limit:
            return await _offboarding(client, run, store)

    ended = dict(await asyncio.gather(*(one(run) for run in runs.values())))
    found = [v for _, vs in sorted(ended.items()) for v in vs]
    found += _labelled(runs)
    for row in sorted(store.organizations.values(), key=lambda r: r["slug"]):
        if row["status"] == "offboarded" and offboarding_workflow_id(row["slug"]) not in runs:
            found.append(
                Violation("offboarding", f"{row['slug']} is offboarded but no offboarding ran")
            )
    return found + _ledger(facts, runs, store)


def _by_slug(store: StoreReading, slug: str) -> dict[str, Any] | None:
    return store.organizations.get(organization_id(slug))


async def _offboarding(
    client: Client, run: WorkflowExecution, store: StoreReading
) -> tuple[str, list[Violation]]:
    slug = run.id.removeprefix(OFFBOARDING_WORKFLOW_PREFIX)
    where = f"offboarding of {slug}"
    org = _by_slug(store, slug)
    if run.status == RUNNING:
        return slug, [Violation("offboarding", f"{where} is still running after the settle")]
    if org is None:
        return slug, [Violation("offboarding", f"{where}: the store holds no such organization")]
    if run.status == COMPLETED:
        admins = await _admins(client, run)
        return slug, _offboarded(where, org, store, admins)
    handle = client.get_workflow_handle_for(
        OrganizationOffboardingWorkflow.run, run.id, run_id=run.run_id
    )
    try:
        await handle.result(follow_runs=False)
    except WorkflowFailureError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type == OFFBOARDING_CANCELLED:
            return slug, _untouched(where, org, store)
    return slug, [Violation("offboarding", f"{where}: its latest run ended {status_name(run)}")]


async def _admins(client: Client, run: WorkflowExecution) -> list[str]:
    """The admins the run was started to tell (its input, from its history)."""
    history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (spec,) = await client.data_converter.decode(list(started.input.payloads), [OffboardingInput])
    assert isinstance(spec, OffboardingInput)
    return [str(a) for a in spec.admins]


def _offboarded(
    where: str, org: dict[str, Any], store: StoreReading, admins: list[str]
) -> list[Violation]:
    if org["status"] != "offboarded":
        return [
            Violation("offboarding", f"{where} completed but its organization is {org['status']}")
        ]
    found = []
    if org["dns_status"] not in ("removed", "none"):
        found.append(
            Violation("offboarding", f"{where} completed but its DNS is {org['dns_status']}")
        )
    pending = sum(
        1
        for invitation in store.invitations.values()
        if invitation["organization_id"] == org["id"] and invitation["status"] == "pending"
    )
    if pending:
        found.append(
            Violation("offboarding", f"{where} completed but {pending} invitations are pending")
        )
    # A Message-ID of another shape hashes to "" (the mail check names it).
    mailed = sorted(
        organization_mail_hash(m.message_id) or ""
        for m in store.organization_mails
        if m.organization_id == org["id"] and m.kind == "offboarded"
    )
    expected = sorted(address_hash(a) for a in admins)
    if mailed != expected:
        found.append(
            Violation(
                "offboarding",
                f"{where} completed: {len(mailed)} offboarded mails recorded for its "
                f"{len(expected)} admins (not one each)",
            )
        )
    return found


def _untouched(where: str, org: dict[str, Any], store: StoreReading) -> list[Violation]:
    """Cancelled inside its grace period: nothing of it changed."""
    if org["status"] == "offboarded":
        return [Violation("offboarding", f"{where} was cancelled but it is offboarded")]
    revoked = sum(
        1
        for invitation in store.invitations.values()
        if invitation["organization_id"] == org["id"]
        and invitation["revoke_reason"] == ORGANIZATION_OFFBOARDED
    )
    if revoked:
        return [
            Violation(
                "offboarding", f"{where} was cancelled but {revoked} invitations were revoked"
            )
        ]
    return []


def _labelled(runs: dict[str, WorkflowExecution]) -> list[Violation]:
    found = []
    for workflow_id, run in sorted(runs.items()):
        slug = workflow_id.removeprefix(OFFBOARDING_WORKFLOW_PREFIX)
        attributes = run.typed_search_attributes
        if attributes.get(ORGANIZATION_ID) != str(organization_id(slug)) or (
            attributes.get(ORGANIZATION_SLUG) != slug
        ):
            found.append(
                Violation(
                    "offboarding",
                    f"workflow {workflow_id} does not carry its organization's search attributes",
                )
            )
    return found


def _ledger(
    facts: SoakFacts, runs: dict[str, WorkflowExecution], store: StoreReading
) -> list[Violation]:
    found = []
    for asked in facts.ledger.offboardings:
        if not 200 <= asked.status < 300:
            continue  # never asked, or refused (the load noted it as unexpected)
        org = _by_slug(store, asked.slug)
        status = org["status"] if org is not None else "not stored"
        if offboarding_workflow_id(asked.slug) not in runs:
            found.append(
                Violation("offboarding", f"offboarding of {asked.slug} was answered "
                          f"{asked.status} but no offboarding workflow exists")
            )  # fmt: skip
        elif asked.cancelled and status == "offboarded":
            found.append(
                Violation("offboarding", f"{asked.slug}: its cancel was answered 200, yet it "
                          "is offboarded")
            )  # fmt: skip
        elif not (asked.cancelled or asked.ended == "kept") and status != "offboarded":
            found.append(
                Violation("offboarding", f"{asked.slug}: offboarding asked for and not "
                          f"cancelled, yet it is {status}")
            )  # fmt: skip
    return found
