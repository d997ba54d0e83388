"""Every organization's single sign-on and e-mail domains: the store, the read models,
the mails and what the load saw agree.

- every ``SSOConnection`` in the store has its ``sso_connections`` row, saying what the
  aggregate says: status (``active`` / ``none``), latest generation, the generation and
  issuer in force, the one pending; and no row stands for no aggregate;
- every ``EmailDomainVerification`` has its ``email_domains`` row with its status;
- each activation (a configuration run that completed: ``SSOConfigurationWorkflow``'s
  latest run per organization, on the stack's task queue) is told to each admin the run
  was started with (its input, from its history) exactly once: one ``sso_activated``
  ``Organization.EmailSent`` per admin for that configuration's number, no more, and
  none for a configuration never activated (delivery is the ``mail`` check's);
- what the load saw: one it saw active and did not end is in force with the load's
  issuer; one it saw ended (``DELETE``) is not; a domain it saw verified is verified;
- every member (the members read model) is who their invitation says accepted: the same
  user id, issuer and subject; a member with an ``sso:`` user id is exactly
  ``sso_user_id(issuer, subject)``; and each invitee the load saw join through the
  organization's provider is its member as the provider's subject (the load's issuer).

That the client secret is nowhere is the ``leaks`` check's (it is one of the stack's
secrets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from temporalio.client import Client, WorkflowExecution

from a4c_domain.identity import SSO_USER_PREFIX, sso_user_id
from a4c_domain.ids import organization_id
from a4c_worker.workflows.sso_configuration import SSOConfigurationWorkflow
from a4c_worker.workflows.sso_models import SSOConfigurationInput
from soaklib.check import Violation
from soaklib.check_mail import address_hash, organization_mail_hash, organization_mail_occasion
from soaklib.check_store import OrganizationMailFact, StoreReading, aggregates
from soaklib.check_workflows import COMPLETED, connect, latest_runs
from soaklib.facts import SoakFacts, SSOTrial

WORKFLOW_TYPE = "SSOConfigurationWorkflow"
MAIL_KIND = "sso_activated"
PARALLEL = 8


@dataclass(frozen=True)
class Connection:
    """What the aggregate and its read-model row must agree on."""

    status: str  # "active" | "none" (the read model's words)
    generation: int
    active_generation: int | None
    active_issuer: str | None
    pending_generation: int | None

    @classmethod
    def of_aggregate(cls, aggregate: Any) -> Connection:
        return cls(
            status="active" if aggregate.status == "active" else "none",
            generation=int(aggregate.generation),
            active_generation=aggregate.active_generation,
            active_issuer=aggregate.active_issuer,
            pending_generation=aggregate.pending_generation,
        )

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> Connection:
        return cls(
            status=str(row["status"]),
            generation=int(row["generation"]),
            active_generation=row["active_generation"],
            active_issuer=row["active_issuer"],
            pending_generation=row["pending_generation"],
        )


@dataclass(frozen=True)
class Activation:
    """A configuration run that put its provider in force, and whom it was to tell."""

    organization_id: UUID
    generation: int
    admins: tuple[str, ...]


async def check_sso(facts: SoakFacts, store: StoreReading) -> list[Violation]:
    connections = {a.organization_id: a for a in aggregates(store, "SSOConnection").values()}
    domains = aggregates(store, "EmailDomainVerification")
    found = connection_violations(
        {k: Connection.of_aggregate(a) for k, a in connections.items()},
        {k: Connection.of_row(r) for k, r in store.sso_connections.items()},
        _slugs(store),
    )
    found += domain_violations(
        {k: str(a.status) for k, a in domains.items()},
        {k: str(r["status"]) for k, r in store.email_domains.items()},
    )
    activations = await _activations(facts)
    found += mail_violations(activations, store.organization_mails, _slugs(store))
    for trial in facts.ledger.sso:
        org_id = organization_id(trial.slug)
        held = connections.get(org_id)
        verified = {
            str(a.domain) for a in domains.values() if a.organization_id == org_id
            and a.status == "verified"
        }  # fmt: skip
        found += trial_violations(
            trial, Connection.of_aggregate(held) if held is not None else None, verified
        )
        found += joined_violations(trial, org_id, store.members.values())
    found += identity_violations(store.members, store.invitations)
    return found


def joined_violations(
    trial: SSOTrial, org_id: UUID, members: Iterable[Mapping[str, Any]]
) -> list[Violation]:
    """Each invitee the load saw join through ``trial``'s provider is a member of its
    organization as a subject of that provider."""
    found = []
    for email in trial.accepted_through:
        rows = [m for m in members if m["organization_id"] == org_id and m["email"] == email]
        if not any(
            m["issuer"] == trial.issuer
            and m["subject"]
            and m["user_id"] == sso_user_id(trial.issuer, m["subject"])
            for m in rows
        ):
            found.append(
                Violation(
                    "sso",
                    f"single sign-on of {trial.slug}: an invitee joined through its provider, "
                    "yet no member of it has the provider's issuer and subject",
                )
            )
    return found


def identity_violations(
    members: Mapping[UUID, Mapping[str, Any]], invitations: Mapping[UUID, Mapping[str, Any]]
) -> list[Violation]:
    """A member is who its invitation says accepted (user id, issuer, subject), and an
    ``sso:`` user id is the one its issuer and subject make."""
    found = []
    for invitation_id, member in members.items():
        invitation = invitations.get(invitation_id, {})
        accepted = (
            invitation.get("accepted_by"),
            invitation.get("accepted_issuer"),
            invitation.get("accepted_subject"),
        )
        if (member["user_id"], member["issuer"], member["subject"]) != accepted:
            found.append(
                Violation("sso", f"member {invitation_id}: not who its invitation says accepted")
            )
        elif str(member["user_id"]).startswith(SSO_USER_PREFIX) and (
            member["issuer"] is None
            or member["subject"] is None
            or member["user_id"] != sso_user_id(member["issuer"], member["subject"])
        ):
            found.append(
                Violation("sso", f"member {invitation_id}: its sso user id is not its identity's")
            )
    return found


def _slugs(store: StoreReading) -> dict[UUID, str]:
    return {k: str(r["slug"]) for k, r in store.organizations.items()}


def connection_violations(
    stored: Mapping[UUID, Connection], rows: Mapping[UUID, Connection], slugs: Mapping[UUID, str]
) -> list[Violation]:
    """Each organization's connection as the store has it against its read-model row."""
    found = []
    for org_id in sorted(set(stored) | set(rows), key=str):
        where = f"single sign-on of {slugs.get(org_id, org_id)}"
        held, row = stored.get(org_id), rows.get(org_id)
        if held is None:
            found.append(Violation("sso", f"{where}: a read-model row but no SSOConnection"))
        elif row is None:
            found.append(Violation("sso", f"{where}: an SSOConnection but no read-model row"))
        elif held != row:
            found.append(Violation("sso", f"{where}: the read model says {row}, the store {held}"))
    return found


def domain_violations(stored: Mapping[UUID, str], rows: Mapping[UUID, str]) -> list[Violation]:
    """Each e-mail domain's status as the store has it against its read-model row."""
    found = []
    for key in sorted(set(stored) | set(rows), key=str):
        held, row = stored.get(key), rows.get(key)
        if held != row:
            found.append(
                Violation(
                    "sso",
                    f"e-mail domain {key}: the read model says {row or 'nothing'}, "
                    f"the store {held or 'nothing'}",
                )
            )
    return found


def mail_violations(
    activations: Iterable[Activation],
    mails: Iterable[OrganizationMailFact],
    slugs: Mapping[UUID, str],
) -> list[Violation]:
    """One ``sso_activated`` mail recorded per admin of each activation; none else."""
    recorded: dict[tuple[UUID, int | None], list[str]] = {}
    for mail in mails:
        if mail.kind == MAIL_KIND:
            key = (mail.organization_id, organization_mail_occasion(mail.message_id))
            # A Message-ID of another shape hashes to "" (the mail check names it).
            recorded.setdefault(key, []).append(organization_mail_hash(mail.message_id) or "")
    found = []
    for activation in activations:
        key = (activation.organization_id, activation.generation)
        where = f"{slugs.get(activation.organization_id, activation.organization_id)}"
        mailed = sorted(recorded.pop(key, []))
        expected = sorted(address_hash(a) for a in activation.admins)
        if mailed != expected:
            found.append(
                Violation(
                    "sso",
                    f"activation {activation.generation} of {where}: {len(mailed)} "
                    f"{MAIL_KIND} mails recorded for its {len(expected)} admins (not one each)",
                )
            )
    for (org_id, occasion), hashes in sorted(recorded.items(), key=str):
        found.append(
            Violation(
                "sso",
                f"{len(hashes)} {MAIL_KIND} mails of {slugs.get(org_id, org_id)} for "
                f"configuration {occasion}, which no completed configuration run activated",
            )
        )
    return found


def trial_violations(
    trial: SSOTrial, held: Connection | None, verified_domains: set[str]
) -> list[Violation]:
    """What the load saw against the store."""
    where = f"single sign-on of {trial.slug}"
    found = []
    if trial.deactivated:
        if held is None or held.status != "none":
            status = "missing" if held is None else held.status
            found.append(Violation("sso", f"{where}: ended by DELETE, yet the store says {status}"))
    elif trial.activated and (
        held is None or (held.status, held.active_issuer) != ("active", trial.issuer)
    ):
        found.append(Violation("sso", f"{where}: seen active, yet the store says {held}"))
    if trial.domain_verified and trial.domain not in verified_domains:
        found.append(
            Violation("sso", f"{where}: its e-mail domain was seen verified, not in the store")
        )
    return found


async def _activations(facts: SoakFacts) -> list[Activation]:
    client = await connect(facts.temporal)
    runs = await latest_runs(client, WORKFLOW_TYPE, facts.temporal.task_queue)
    limit = asyncio.Semaphore(PARALLEL)

    async def one(run: WorkflowExecution) -> Activation:
        async with limit:
            return await _activation(client, run)

    completed = [r for _, r in sorted(runs.items()) if r.status == COMPLETED]
    return list(await asyncio.gather(*(one(r) for r in completed)))


async def _activation(client: Client, run: WorkflowExecution) -> Activation:
    """A completed run's configuration (its result) and admins (its input)."""
    handle = client.get_workflow_handle_for(SSOConfigurationWorkflow.run, run.id, run_id=run.run_id)
    progress = await handle.result(follow_runs=False)
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    (spec,) = await client.data_converter.decode(
        list(started.input.payloads), [SSOConfigurationInput]
    )
    assert isinstance(spec, SSOConfigurationInput)
    assert progress.generation is not None  # active: it has its configuration's number
    return Activation(spec.organization_id, progress.generation, tuple(spec.admins))
