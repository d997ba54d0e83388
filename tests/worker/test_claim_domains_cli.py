"""``a4c-worker claim-domains``: the real console script, as an operator runs it.

The store holds organizations written the way 0.2.0 wrote them (no domain claim); the
command is a child process on PostgreSQL and on SQLite, with only the event store's
settings and the token secret (it needs no Temporal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.domain.support import Store
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET, free_port

from a4c_domain import DomainClaim, OnboardingApplication, Organization
from a4c_domain.base import DomainAggregate
from a4c_domain.errors import DomainTaken
from a4c_worker.cli import EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE

SCRIPT = Path(sys.executable).with_name("a4c-worker")
SHOP = "shop.orgs.example.com"


@pytest.fixture
def store_env(store: Store) -> dict[str, str]:
    """The configuration of ``app``'s store, as the command is given it."""
    # Trust auth: the password unset, as an operator would leave it.
    return {k: v for k, v in store.env.items() if k != "POSTGRES_PASSWORD"}


def old_organization(app: OnboardingApplication, slug: str, domain: str) -> Organization:
    """Registered with a domain by 0.2.0: no claim was saved with it."""
    org = Organization(
        name=f"Org {slug}", slug=slug, org_type="provider", parent_id=None, tags=[], domain=domain
    )
    app.save(org)
    return org


# Development: production would also ask for what a worker needs (TEMPORAL_PAYLOAD_KEYS).
DEV = {"WORKFLOW_MODE": "development"}


def claim_domains(env: dict[str, str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run the console script; (exit code, its JSON lines, stderr)."""
    done = subprocess.run(
        [str(SCRIPT), "claim-domains", *args],
        env={"PATH": os.environ.get("PATH", ""), "A4C_TOKEN_SECRET": TOKEN_SECRET, **DEV, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_claim_domains_claims_an_old_organizations_domain_once(
    app: OnboardingApplication, store_env: dict[str, str]
) -> None:
    old = old_organization(app, "old", SHOP)

    code, lines, err = claim_domains(store_env)

    assert code == EXIT_OK, err
    claimed, summary = lines
    assert claimed == {
        "outcome": "claimed",
        "fqdn": SHOP,
        "organization_id": str(old.id),
        "slug": "old",
        "notification_id": 1,
    }
    assert summary["summary"]["claimed"] == 1 and summary["dry_run"] is False
    assert app.domain_owner(SHOP) == old.id
    with pytest.raises(DomainTaken):
        app.register_organization(
            name="Attacker", slug="attacker", org_type="provider", domain=SHOP
        )
    [claimed_event] = app.repository.event_store.get(DomainClaim.create_id(SHOP))
    assert isinstance(claimed_event, DomainAggregate.Event)
    assert claimed_event.metadata["actor"] == "a4c-worker claim-domains"

    code, lines, err = claim_domains(store_env)

    assert code == EXIT_OK, err
    [summary] = lines
    assert (summary["summary"]["claimed"], summary["summary"]["already_held"]) == (0, 1)


def test_claim_domains_reports_a_shared_domain_and_exits_1(
    app: OnboardingApplication, store_env: dict[str, str]
) -> None:
    earliest = old_organization(app, "earliest", SHOP)
    later = old_organization(app, "later", SHOP)

    code, lines, err = claim_domains(store_env, "--dry-run")

    assert code == EXIT_FAILED, err
    assert [line.get("outcome") for line in lines] == ["would_claim", "conflict", None]
    assert app.domain_owner(SHOP) is None  # a dry run writes nothing

    code, lines, err = claim_domains(store_env)

    assert code == EXIT_FAILED, err
    claimed, conflict, summary = lines
    assert claimed["organization_id"] == str(earliest.id)
    assert (conflict["outcome"], conflict["slug"], conflict["owner_slug"]) == (
        "conflict",
        "later",
        "earliest",
    )
    assert conflict["organization_id"] == str(later.id)
    assert summary["summary"]["conflicts"] == 1
    assert app.domain_owner(SHOP) == earliest.id


def test_claim_domains_names_an_unreachable_store_and_a_missing_secret(tmp_path: Path) -> None:
    unreachable = postgres_env(
        "public", POSTGRES_PORT=str(free_port()), POSTGRES_CONNECT_TIMEOUT="2"
    )
    unreachable.pop("POSTGRES_PASSWORD")

    code, lines, err = claim_domains(unreachable)

    assert code == EXIT_UNREACHABLE and lines == []
    assert err.startswith("POSTGRES_HOST/POSTGRES_PORT: cannot connect") and "Traceback" not in err

    sqlite = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(tmp_path / "e.db")}
    done = subprocess.run(
        [str(SCRIPT), "claim-domains"],
        env={"PATH": os.environ.get("PATH", ""), **DEV, **sqlite},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_INVALID
    assert done.stderr.startswith("configuration error: A4C_TOKEN_SECRET: required")
