"""Benchmark: the read queries users hit, at 1k, 100k and 1M organizations, on PostgreSQL.

For each ``--organizations`` size, a fresh schema (dropped afterwards) gets the
projector's own tables (``ensure_schema``: the DDL in ``sql/``) and its read models are
seeded directly, by ``COPY`` of rows shaped as the projector writes them (domain
commands would take hours at 1M): per organization its row, two to four invitations
(three on average; one in seven re-sent, so two token generations), each token ever
issued in ``invitation_tokens``, and a member for each of its first two invitations
(accepted). Every person is a member of two organizations far apart. Then ``VACUUM
ANALYZE``, as autovacuum would have done long ago on a database in service.

Each query is timed through :class:`a4c_projector.queries.ReadModel` (the code a4c-api
runs, on an autocommit connection of its own, records and all), with random keys, the
queries taking turns so that noise falls on all alike:

* ``organization_by_slug``; ``invitations`` and ``members`` of an organization;
* ``token_match`` (the accept page: which invitation a token was issued to);
* ``memberships`` of a person (the events API: which organizations they administer) and
  ``person_organizations``, ``organizations(member=...)`` (``GET /v1/organizations`` for
  a person).

Baseline, same connection, same run: the simplest primary-key lookup
(``SELECT 1 FROM organizations WHERE id = %s``); ``p50_ratio`` / ``p99_ratio`` are a
query's over the baseline's. Each query's plan: ``EXPLAIN (FORMAT JSON)`` of the very
statement it issued (captured on its way to the connection), the indexes it uses and
whether a ``Seq Scan`` appears anywhere. One JSON line per size.

    .venv/bin/python bench/read_queries.py [--organizations 1000 100000 1000000]
        [--samples 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Identifier, Literal

from a4c_projector.dialects.base import Database
from a4c_projector.dialects.connection import connect
from a4c_projector.dialects.location import Location
from a4c_projector.queries import ReadModel
from a4c_projector.readmodel.tables import ensure_schema
from a4c_projector.schema import (
    INVITATION_TOKENS,
    INVITATIONS,
    MEMBERS,
    ORGANIZATIONS,
    compared_columns,
)
from common import CONNINFO, emit, fresh_schema

BASELINE_SQL = "SELECT 1 FROM organizations WHERE id = %s"
WARM_UP_ROUNDS = 200  # untimed rounds first: connection, prepared statements, caches
COPY_CHUNK_ROWS = 20_000  # organizations per COPY of each table
# The tables seeded, and the columns written: every one but updated_at (its default,
# now()), which is what a query record holds.
SEEDED = {
    t.name: compared_columns(t) for t in (ORGANIZATIONS, INVITATIONS, MEMBERS, INVITATION_TOKENS)
}

# --- the seeded population: everything derived from an organization's number n -------

# Ids spread over the key space as real (hash-derived) ids are, so that index pages are
# touched at random and not in insertion order: n times an odd constant, modulo 2**128
# (a bijection), one constant per kind of row so kinds never collide.
_UUID_MASK = (1 << 128) - 1
_SPREAD = 0x9E3779B97F4A7C15F39CC0605CEDC835
ORG, INVITATION, EVENT = 1, 2, 3
INVITEES_MAX = 4  # invitations of organization n: 2 + n % 3, numbered 0..


def uid(kind: int, number: int) -> str:
    """A uuid (32 hex digits, as PostgreSQL reads them) for row ``number`` of ``kind``."""
    return f"{(((kind << 100) | number) * _SPREAD) & _UUID_MASK:032x}"


def slug(n: int) -> str:
    return f"org-{n}"


def invitees(n: int) -> int:
    return 2 + n % 3


def generations(n: int, k: int) -> int:
    """Token generations of invitation k: one in seven was re-sent once."""
    return 2 if (n * INVITEES_MAX + k) % 7 == 3 else 1


def token(n: int, k: int, generation: int) -> str:
    """The (never stored) token of that generation; the tables hold its hash."""
    return f"bench-token-{n}-{k}-{generation}"


def token_hash(n: int, k: int, generation: int) -> str:
    return hashlib.sha256(token(n, k, generation).encode()).hexdigest()


def accepted(k: int) -> bool:
    return k < 2  # the first two invitations of each organization were accepted


@dataclass(frozen=True)
class People:
    """Who accepted which invitation: member m (organization n's accepted invitation k
    is m = 2n + k) is person ``mix(m) // 2``, ``mix`` a permutation of the 2N members
    (multiplication by a constant prime to 2N): each person belongs to exactly two
    organizations, far apart."""

    organizations: int

    @cached_property
    def _factor(self) -> int:
        factor = 7_919 * 104_729  # two primes; made prime to 2N
        while math.gcd(factor, 2 * self.organizations) != 1:
            factor += 2
        return factor

    def of(self, n: int, k: int) -> str:
        return f"user-{(((2 * n + k) * self._factor) % (2 * self.organizations)) // 2}"

    def random(self, rng: random.Random) -> str:
        return f"user-{rng.randrange(self.organizations)}"


# Times as PostgreSQL reads them; a few distinct values are enough (only joined_at
# orders anything, within one organization or one person).
DAY = [f"2026-01-{d:02d} 10:{d:02d}:00+00" for d in range(1, 29)]
LATER = "2026-03-01 12:00:00+00"


def organization_row(n: int) -> dict[str, Any]:
    day = DAY[n % len(DAY)]
    with_dns = n % 10 != 0
    deactivated = n % 20 == 13
    return {
        "id": uid(ORG, n),
        "slug": slug(n),
        "name": f"Organization {n}",
        "org_type": "provider" if n % 4 else "partner",
        "parent_id": uid(ORG, n - n % 50) if n % 50 else None,
        "tags": f"{{region-{n % 5},bench}}",
        "domain": f"org-{n}.example.test" if with_dns else None,
        "status": "deactivated" if deactivated else "active",
        "dns_status": "verified" if with_dns else "none",
        "fqdn": f"org-{n}.orgs.example.test" if with_dns else None,
        "dns_target": "ingress.example.test" if with_dns else None,
        "dns_record_id": f"rec-org-{n}" if with_dns else None,
        "deactivation_reason": "bootstrap cancelled" if deactivated else None,
        "failed_step": "activate" if deactivated else None,
        "registered_at": day,
        "dns_configured_at": day if with_dns else None,
        "dns_verified_at": day if with_dns else None,
        "dns_removed_at": None,
        "activated_at": None if deactivated else day,
        "deactivated_at": day if deactivated else None,
        "modified_at": day,
        "version": 4 if with_dns else 2,
        "last_event_id": uid(EVENT, n * 8),
        "last_position": n * 16,
    }


def invitation_row(n: int, k: int, people: People) -> dict[str, Any]:
    day = DAY[(n + k) % len(DAY)]
    gen = generations(n, k)
    status = "accepted" if accepted(k) else ("pending" if k == 2 else "revoked")
    return {
        "id": uid(INVITATION, n * INVITEES_MAX + k),
        "organization_id": uid(ORG, n),
        "email": f"user{k}@org-{n}.example.test",
        "role": "admin" if k == 0 else "member",
        "first_name": f"First{k}",
        "last_name": f"Org{n}",
        "generation": 1,
        "token_generation": gen,
        "token_hash": token_hash(n, k, gen),
        "expires_at": LATER,
        "status": status,
        "email_status": "sent",
        "message_id": f"msg-{n}-{k}-{gen}",
        "email_error": None,
        "accepted_by": people.of(n, k) if accepted(k) else None,
        "revoke_reason": "left the company" if status == "revoked" else None,
        "invited_at": day,
        "email_sent_at": day,
        "email_failed_at": day if gen > 1 else None,
        "token_reissued_at": day if gen > 1 else None,
        "accepted_at": day if accepted(k) else None,
        "revoked_at": day if status == "revoked" else None,
        "expired_at": None,
        "modified_at": day,
        "version": 2 + gen + (status != "pending"),
        "last_event_id": uid(EVENT, n * 8 + 1 + k),
        "last_position": n * 16 + 1 + k,
        "accepted_issuer": "https://id.example.test" if accepted(k) else None,
        "accepted_subject": people.of(n, k) if accepted(k) else None,
    }


def member_row(invitation: dict[str, Any]) -> dict[str, Any]:
    """The member an accepted invitation makes, as the projector derives it."""
    copied = ("organization_id", "email", "role", "first_name", "last_name", "modified_at")
    return {
        "invitation_id": invitation["id"],
        "user_id": invitation["accepted_by"],
        "joined_at": invitation["accepted_at"],
        "issuer": invitation["accepted_issuer"],
        "subject": invitation["accepted_subject"],
        "version": invitation["version"],
        "last_event_id": invitation["last_event_id"],
        "last_position": invitation["last_position"],
        **{column: invitation[column] for column in copied},
    }


def token_row(n: int, k: int, generation: int) -> dict[str, Any]:
    day = DAY[(n + k) % len(DAY)]
    return {
        "token_hash": token_hash(n, k, generation),
        "invitation_id": uid(INVITATION, n * INVITEES_MAX + k),
        "organization_id": uid(ORG, n),
        "token_generation": generation,
        "issued_at": day,
        "modified_at": day,
        "version": generation,
        "last_event_id": uid(EVENT, n * 8 + 5 + k),
        "last_position": n * 16 + 5 + k,
    }


def rows_of(first: int, count: int, people: People) -> dict[str, list[dict[str, Any]]]:
    """Every row organizations first..first+count-1 have, by table."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in SEEDED}
    for n in range(first, first + count):
        rows["organizations"].append(organization_row(n))
        for k in range(invitees(n)):
            invitation = invitation_row(n, k, people)
            rows["invitations"].append(invitation)
            if accepted(k):
                rows["members"].append(member_row(invitation))
            for generation in range(1, generations(n, k) + 1):
                rows["invitation_tokens"].append(token_row(n, k, generation))
    return rows


# --- seeding by COPY --------------------------------------------------------------------


def copy_text(row: dict[str, Any], columns: Sequence[str]) -> str:
    """One line of COPY's text format (no value holds a tab, newline or backslash)."""
    return "\t".join("\\N" if row[c] is None else str(row[c]) for c in columns) + "\n"


def copy_texts(first: int, count: int, people: People) -> dict[str, tuple[str, int]]:
    """COPY's text of every row of organizations first..first+count-1, and the number of
    rows, by table."""
    return {
        name: ("".join(copy_text(r, SEEDED[name]) for r in rows), len(rows))
        for name, rows in rows_of(first, count, people).items()
    }


def seed(location: Location, organizations: int) -> dict[str, int]:
    """The read models of ``organizations`` organizations; rows written, by table."""
    with connect(location) as db:
        ensure_schema(db)  # the projector's own DDL, indexes and all
    people = People(organizations)
    written = dict.fromkeys(SEEDED, 0)
    copies = {
        name: SQL("COPY {} ({}) FROM STDIN").format(
            Identifier(name), SQL(", ").join(map(Identifier, columns))
        )
        for name, columns in SEEDED.items()
    }
    chunks = range(0, organizations, COPY_CHUNK_ROWS)

    def texts(first: int) -> dict[str, tuple[str, int]]:
        return copy_texts(first, min(COPY_CHUNK_ROWS, organizations - first), people)

    # The next chunk's text is made while the server takes in this one's (psycopg lets
    # the GIL go while it waits): the seeding is then bound by the slower of the two.
    with (
        psycopg.connect(CONNINFO, options=f"-c search_path={location.schema}") as conn,
        conn.cursor() as cur,
        ThreadPoolExecutor(1) as ahead,
    ):
        upcoming = ahead.submit(texts, chunks[0]) if chunks else None
        for index in range(len(chunks)):
            assert upcoming is not None
            chunk = upcoming.result()
            if index + 1 < len(chunks):
                upcoming = ahead.submit(texts, chunks[index + 1])
            for name, (text, rows) in chunk.items():
                with cur.copy(copies[name]) as copy:
                    copy.write(text)
                written[name] += rows
        conn.commit()
    with psycopg.connect(CONNINFO, autocommit=True) as conn:
        for name in SEEDED:
            conn.execute(SQL("VACUUM ANALYZE {}").format(Identifier(location.schema, name)))
    return written


# --- timing through the ReadModel ----------------------------------------------------


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Sequence[Any]]]]:
    """Every statement ``db`` executes meanwhile, with its parameters."""
    statements: list[tuple[str, Sequence[Any]]] = []
    execute = db.execute

    def recording(statement: str, params: Sequence[Any] = ()) -> list[Any]:
        statements.append((statement, params))
        return execute(statement, params)

    db.execute = recording  # type: ignore[method-assign]
    try:
        yield statements
    finally:
        del db.execute  # the class's own again


def plan(db: Database, statement: str, params: Sequence[Any]) -> dict[str, Any]:
    """The indexes the plan of ``statement`` uses, whether any node is a Seq Scan, and
    how often the timed calls ran it with a generic plan (psycopg prepares a statement
    on its fifth call; PostgreSQL may then plan it once for any value), with that
    plan's summary when they did."""
    [[document]] = db.execute("EXPLAIN (FORMAT JSON) " + statement, params)
    summary = plan_summary(document)
    [[generic_plans]] = db.execute(
        "SELECT coalesce(sum(generic_plans), 0) FROM pg_prepared_statements WHERE statement = %s",
        (placeholders_numbered(statement),),
    )
    summary["generic_plans"] = int(generic_plans)
    if generic_plans:
        summary["generic"] = plan_summary(generic_plan(db, statement, params))
    return summary


def placeholders_numbered(statement: str) -> str:
    """``statement`` as psycopg sends it: ``%s`` become ``$1``, ``$2``, ..."""
    parts = statement.split("%s")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


def generic_plan(db: Database, statement: str, params: Sequence[Any]) -> Any:
    """The plan PostgreSQL makes of ``statement`` for any value (15 has no EXPLAIN
    (GENERIC_PLAN)): prepared, planned generic by force, explained."""
    db.execute("PREPARE bench_generic AS " + placeholders_numbered(statement))
    db.execute("SET plan_cache_mode = force_generic_plan")
    try:
        # As literals: bound parameters of an EXECUTE have no type to be read as.
        arguments = ", ".join(Literal(value).as_string(None) for value in params)
        [[document]] = db.execute(f"EXPLAIN (FORMAT JSON) EXECUTE bench_generic({arguments})")
    finally:
        db.execute("RESET plan_cache_mode")
        db.execute("DEALLOCATE bench_generic")
    return document


def plan_summary(document: Any) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    pending = [document[0]["Plan"]]
    while pending:
        node = pending.pop()
        nodes.append(node)
        pending.extend(node.get("Plans", ()))
    return {
        "indexes": sorted({n["Index Name"] for n in nodes if "Index Name" in n}),
        "seq_scan": any(n["Node Type"] == "Seq Scan" for n in nodes),
        "nodes": [n["Node Type"] for n in nodes],
    }


# A query: given the read model and a random source, one call (its result checked).
Query = Callable[[ReadModel, random.Random], None]


def queries(organizations: int) -> dict[str, Query]:
    people = People(organizations)

    def by_slug(rm: ReadModel, rng: random.Random) -> None:
        n = rng.randrange(organizations)
        found = rm.organization_by_slug(slug(n))
        assert found is not None and found.slug == slug(n)

    def invitations(rm: ReadModel, rng: random.Random) -> None:
        n = rng.randrange(organizations)
        assert len(rm.invitations(UUID(uid(ORG, n)))) == invitees(n)

    def by_token(rm: ReadModel, rng: random.Random) -> None:
        n = rng.randrange(organizations)
        k = rng.randrange(invitees(n))
        generation = rng.randint(1, generations(n, k))
        match = rm.token_match(token(n, k, generation))
        assert match is not None and match.current == (generation == generations(n, k))

    def members(rm: ReadModel, rng: random.Random) -> None:
        assert len(rm.members(UUID(uid(ORG, rng.randrange(organizations))))) == 2

    def memberships(rm: ReadModel, rng: random.Random) -> None:
        assert len(rm.memberships(people.random(rng))) == 2

    def person_organizations(rm: ReadModel, rng: random.Random) -> None:
        found = rm.organizations(member=people.random(rng))
        assert 1 <= len(found) <= 2  # two memberships, in one organization or two

    return {
        "organization_by_slug": by_slug,
        "invitations": invitations,
        "token_match": by_token,
        "members": members,
        "memberships": memberships,
        "person_organizations": person_organizations,
    }


def percentile_ms(seconds: list[float], fraction: float) -> float:
    ordered = sorted(seconds)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000, 3)


def measure(location: Location, organizations: int, samples: int) -> dict[str, Any]:
    """p50/p99 of each query and of the baseline, taking turns; each query's plan."""
    rng = random.Random(21)
    timed = queries(organizations)
    times: dict[str, list[float]] = {name: [] for name in ("baseline", *timed)}
    with ReadModel(location) as rm:
        db = rm._db  # the ReadModel's own connection: the baseline runs on it too

        def baseline(_: ReadModel, rng: random.Random) -> None:
            assert db.execute(BASELINE_SQL, (uid(ORG, rng.randrange(organizations)),))

        everything = {"baseline": baseline, **timed}
        for round_ in range(WARM_UP_ROUNDS + samples):
            for name, query in everything.items():
                began = time.perf_counter()
                query(rm, rng)
                if round_ >= WARM_UP_ROUNDS:
                    times[name].append(time.perf_counter() - began)
        plans = {}
        for name, query in everything.items():
            with captured(db) as statements:
                query(rm, rng)
            [(statement, params)] = statements  # each query is one statement
            plans[name] = plan(db, statement, params)
    base = {q: percentile_ms(times["baseline"], q) for q in (0.5, 0.99)}
    figures: dict[str, Any] = {}
    for name, seconds in times.items():
        p50, p99 = percentile_ms(seconds, 0.5), percentile_ms(seconds, 0.99)
        figures[name] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "mean_ms": round(statistics.fmean(seconds) * 1000, 3),
            "p50_ratio": round(p50 / base[0.5], 2),
            "p99_ratio": round(p99 / base[0.99], 2),
            **plans[name],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organizations", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--samples", type=int, default=2_000, help="timed calls per query")
    args = parser.parse_args()
    for organizations in args.organizations:
        with fresh_schema(CONNINFO, prefix="bench_reads") as schema:
            location = Location("postgres", conninfo=CONNINFO, schema=schema)
            started = time.perf_counter()
            rows = seed(location, organizations)
            seed_seconds = time.perf_counter() - started
            print(f"seeded {organizations} organizations in {seed_seconds:.1f}s", file=sys.stderr)
            figures = measure(location, organizations, args.samples)
            emit(
                {
                    "organizations": organizations,
                    "rows": rows,
                    "seed_seconds": round(seed_seconds, 1),
                    "samples": args.samples,
                    "queries": figures,
                }
            )


if __name__ == "__main__":
    main()
