"""The whole stack under load and faults, then checked: nothing lost, duplicated or leaked.

A PostgreSQL primary and standby under pg_auto_failover (synchronous replication), the
Temporal dev server on a file, two workers, two projectors (active and standby), two
a4c-api processes, BIND and an SMTP sink (:mod:`soaklib.stack`). Load arrives at a fixed
rate through the public surfaces (:mod:`soaklib.load`) while seeded faults hit the stack
(:mod:`soaklib.faults`); then the load settles and the checker (:mod:`soaklib.check`)
reads everything. One JSON line: requests by kind and outcome, faults by kind with
their recovery times, failover write-unavailability, violations (must be 0) and the seed
that replays the run. Exit status 1 when there is any violation.

    .venv/bin/python bench/soak.py [--seed N] [--rate 2] [--duration 120]

Needs root (the cluster runs as the ``postgres`` user) and what ``scripts/setup.sh
--tests`` installs (pg_auto_failover, BIND).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # tests.servers, soaklib

from eventsourcing.cryptography import AESCipher  # noqa: E402
from tests.servers.pgfailover import FailoverCluster  # noqa: E402

from a4c_projector.eventlog.store import open_event_store  # noqa: E402
from common import emit  # noqa: E402
from soaklib.check import check  # noqa: E402
from soaklib.check_store import connect  # noqa: E402
from soaklib.check_webhooks import repeats  # noqa: E402
from soaklib.facts import Ledger, SoakFacts, StoreFacts  # noqa: E402
from soaklib.faults import Faults, summary  # noqa: E402
from soaklib.feed import FeedConsumer  # noqa: E402
from soaklib.hooks import Hooks, settle  # noqa: E402
from soaklib.lag import LagProbe  # noqa: E402
from soaklib.load import Load  # noqa: E402
from soaklib.load_http import Http  # noqa: E402
from soaklib.stack import ZONE, SoakStack  # noqa: E402
from soaklib.temporal import bootstrap_timings  # noqa: E402

CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"
WARMUP_SECONDS = 8.0
SETTLE_SECONDS = 120.0
FEED_TIMEOUT = 10.0  # seconds one events page may take (as the load's requests)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="replays a run (default: random)")
    parser.add_argument("--rate", type=float, default=2.0, help="operations per second")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load and faults")
    parser.add_argument("--root", type=Path, default=None, help="working folder (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    root = args.root or Path(tempfile.mkdtemp(prefix="a4c-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        # A folder of its own, not under ``root``: the cluster runs as the postgres user,
        # who must reach it (a --root under pytest's private tmp_path would refuse it).
        with FailoverCluster(Path(tempfile.mkdtemp(prefix="a4c-soak-pg-"))) as cluster:
            # Encrypted as production stores it: addresses and names never in clear.
            cipher = {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": AESCipher.create_key(32)}
            store = StoreFacts(cluster.conninfo, cluster.store_env() | cipher)
            stack = SoakStack(root, store)
            try:
                stack.start()  # inside: a part that fails to start stops the others
                result = asyncio.run(soak(stack, cluster, seed, args.rate, args.duration))
            finally:
                stack.stop()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    result["root"] = str(root) if args.keep else None
    emit(result)
    return 1 if result["violation_count"] else 0


async def soak(
    stack: SoakStack, cluster: FailoverCluster, seed: int, rate: float, duration: float
) -> dict[str, Any]:
    started = time.monotonic()
    ledger = Ledger()
    probe = LagProbe(stack.store.conninfo)
    stop_probe = asyncio.Event()
    probe_task = asyncio.create_task(probe.run(stop_probe))
    load = Load(
        stack.api_urls, stack.api_key, stack.mail, random.Random(f"{seed}-load"), rate, ledger,
        dns_zone=ZONE, sso=stack.sso_setup(),
    )  # fmt: skip
    # Two webhook endpoints, created before the load (every event after them is theirs).
    hooks = Hooks(random.Random(f"{seed}-hooks"))
    http = Http(stack.api_urls, stack.api_key, ledger, FEED_TIMEOUT)
    await hooks.create(http)
    faults = Faults(
        stack, probe, random.Random(f"{seed}-faults"), stack.logs / "faults.jsonl", cluster,
        hooks,
    )  # fmt: skip
    faults_done = asyncio.Event()
    # Another service following the events feed through it all (its own Http: its
    # answers are judged like the load's).
    feed = FeedConsumer(http)
    stop_feed = asyncio.Event()
    feed_task = asyncio.create_task(feed.run(stop_feed))

    async def strike() -> None:
        try:
            await faults.run(duration, WARMUP_SECONDS)
        finally:
            faults_done.set()

    await asyncio.gather(load.run(duration, faults_done), strike())
    loaded = time.monotonic() - started
    violations = [f"{c.name} is not running at the end" for c in stack.children if not alive(c)]
    await load.settle(SETTLE_SECONDS)
    caught_up = await probe.wait_caught_up(SETTLE_SECONDS)
    stop_probe.set()
    await probe_task
    stop_feed.set()
    await feed_task
    drained = await feed.drain()
    await http.aclose()
    if not drained:
        violations.append("the events feed did not come to its end after the load")
    location = open_event_store(stack.store.env).location
    delivered = await asyncio.to_thread(
        settle,
        lambda: connect(dataclasses.replace(location, conninfo=stack.store.conninfo)),
        SETTLE_SECONDS,
    )
    if not delivered:
        violations.append("the webhook daemon did not deliver everything after the load")
    arrivals = hooks.arrivals()
    hooks.close()
    facts = SoakFacts(
        store=stack.store,
        temporal=stack.temporal,
        dns=stack.dns,
        mails=stack.mail.messages(),
        logs_dir=stack.logs,
        metrics=[scrape(url) for url in stack.metrics_urls()],
        secrets=stack.secrets | hooks.secrets,
        ledger=ledger,
        feed=feed.received,
        webhooks=arrivals,
    )
    found = await check(facts)
    violations += [f"{v.check}: {v.detail}" for v in found]
    violations += ledger.violations
    violations += [
        f"{r.kind} at {r.at}s ({r.target}): the projector's lag did not return under 1 s"
        for r in faults.records
        if r.recovery_s is None
    ]
    if not caught_up:
        violations.append("the projection did not catch up with the store after the load")
    timings = await bootstrap_timings(stack.temporal, faults.records)
    failovers = sorted(
        r.write_unavailable_s for r in faults.records if r.write_unavailable_s is not None
    )
    return {
        "bench": "soak",
        "seed": seed,
        "rate": rate,
        "duration_s": duration,
        "loaded_s": round(loaded, 1),
        "total_s": round(time.monotonic() - started, 1),
        "requests": ledger.requests,
        "unexpected": ledger.unexpected[:20],
        "unfinished": ledger.unfinished[:20],
        "onboardings": len(ledger.onboardings),
        "offboardings": offboardings(ledger),
        "sso": single_sign_ons(ledger),
        "mails": len(facts.mails),
        "feed": {"events": len(feed.received), "pages": feed.pages},
        "webhooks": {
            name: {
                "requests": len(got),
                "events": len({a.webhook_id for a in got}),
                "repeats": repeats(got),
            }
            for name, got in arrivals.items()
        },
        "faults": summary(faults.records),
        "failover_write_unavailable_s": {
            "p50": statistics.median(failovers) if failovers else None,
            "max": failovers[-1] if failovers else None,
        },
        "bootstraps": timings.summary(faults.records),
        "max_lag_s": round(probe.max_lag(), 3),
        "violation_count": len(violations),
        "violations": violations[:50],
    }


def offboardings(ledger: Ledger) -> dict[str, int]:
    """The offboardings the load planned, asked for (answered 2xx), saw end offboarded
    or kept (cancelled in the grace period), and started again after a failed run."""
    asked = [o for o in ledger.offboardings if 200 <= o.status < 300]
    return {
        "planned": len(ledger.offboardings),
        "asked": len(asked),
        "offboarded": sum(o.ended == "offboarded" for o in asked),
        "kept": sum(o.ended == "kept" for o in asked),
        "cancelled": sum(o.cancelled for o in asked),
        "restarted": sum(max(0, o.starts - 1) for o in asked),
    }


def single_sign_ons(ledger: Ledger) -> dict[str, int]:
    """The organizations the load gave their own provider: configured (PUT answered),
    e-mail domain verified, test sign-ins refused as planned, activated (seen active),
    deactivated (DELETE seen ending it), and the invitees who joined by signing in
    through their organization's provider."""
    return {
        "planned": len(ledger.sso),
        "configured": sum(t.configured for t in ledger.sso),
        "domains_verified": sum(t.domain_verified for t in ledger.sso),
        "failed_tests": sum(t.failed_tests for t in ledger.sso),
        "activated": sum(t.activated for t in ledger.sso),
        "deactivated": sum(t.deactivated for t in ledger.sso),
        "invitees_joined": sum(len(t.accepted_through) for t in ledger.sso),
    }


def alive(child: Any) -> bool:
    return child.process is not None and child.process.poll() is None


def scrape(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except OSError as exc:
        return f"# scrape of {url} failed: {exc}"


if __name__ == "__main__":
    sys.exit(main())
