"""``a4c-worker claim-domains``: run the 0.3.0 domain-claim backfill as an operator.

The backfill itself is :mod:`a4c_domain.claim_backfill`; this prints what it does as
it goes: one JSON line per domain claimed (``would_claim`` with ``--dry-run``), per
conflict (the organization, the domain and who holds it) and per stored name that is
not a host name, then one ``{"summary": {...}}`` line with the count of each outcome.
A domain its organization already holds is only counted: after the first run, that is
every one. Claims are recorded as caused by ``a4c-worker claim-domains``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TextIO

from a4c_domain import Cause, caused_by
from a4c_domain.claim_backfill import ClaimOutcome, ClaimSummary, backfill_domain_claims
from a4c_worker.config import WorkerSettings
from a4c_worker.wiring import build_application

ACTOR = "a4c-worker claim-domains"


def claim_domains(settings: WorkerSettings, out: TextIO, *, dry_run: bool) -> ClaimSummary:
    """Open the event store, backfill, print; the store's errors propagate."""
    app = build_application(settings)
    try:
        with caused_by(Cause(actor=ACTOR)):
            outcomes = backfill_domain_claims(app, dry_run=dry_run)
            summary = ClaimSummary.of(_printed(outcomes, out))
    finally:
        app.close()
    line = {"summary": summary.model_dump(), "dry_run": dry_run}
    print(json.dumps(line, separators=(",", ":")), file=out, flush=True)  # as the outcomes
    return summary


def _printed(outcomes: Iterable[ClaimOutcome], out: TextIO) -> Iterator[ClaimOutcome]:
    for outcome in outcomes:
        if outcome.outcome != "already_held":
            print(outcome.model_dump_json(exclude_none=True), file=out, flush=True)
        yield outcome
