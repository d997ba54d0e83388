"""No token, key or address where DESIGN forbids it.

What is looked for (the *needles*), each with a label that names it without quoting it:

- every invitation token, taken from the accept links in the mails the sink received,
  and its accept proof (:func:`a4c_worker.contracts.accept_proof`): "no token, in any
  form that lets someone accept";
- every value of ``facts.secrets``, and the payload keys' key material;
- every invitee's e-mail address (the ledger's and the store's).

Where (the *haystacks*) and which needles each may not hold:

================================  ==========  ==========  ==============================
place                             tokens      secrets     addresses
================================  ==========  ==========  ==============================
event store rows (raw state)      forbidden   forbidden   forbidden: encrypted at rest
read-model tables (every one)     forbidden   forbidden   allowed: ``invitations`` and
                                                          ``members`` serve them
workflow histories (raw, sealed)  forbidden   forbidden   forbidden: only sealed payloads
                                                          and search attributes (never an
                                                          address) are stored
log files                         forbidden   forbidden   forbidden (logs name a domain)
metrics texts                     forbidden   forbidden   forbidden (fixed label sets)
mails                             allowed     forbidden   allowed (their links, their
                                                          recipients)
================================  ==========  ==========  ==============================

(DESIGN: "Personal data (addresses, names) is encrypted wherever it rests: the event
store and Temporal history"; docs/operating.md: search attributes never hold an address;
the worker's logs name the recipient's domain only, ``tests/api/test_v1_bounced_address.py``.)
An address in a raw event row therefore means the soak ran without the store's cipher
(``CIPHER_TOPIC``/``CIPHER_KEY``), as production must not.

Scans are linear in the haystack: tokens and proofs are found as runs of their alphabet
and looked up in a set, addresses by one pattern; only the few secrets are searched
one by one. Large files are read in chunks.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from temporalio.client import Client

from a4c_worker.codec import PayloadKeys, PayloadKeysError
from a4c_worker.contracts import accept_proof
from soaklib.check import Violation
from soaklib.check_mail import message_id
from soaklib.check_model import CHECK_SUFFIX
from soaklib.check_store import StoreReading
from soaklib.check_workflows import connect as connect_temporal
from soaklib.facts import SoakFacts

TOKEN_IN_LINK = re.compile(r"[?&]token=([A-Za-z0-9_-]{16,})")
TOKEN_RUN = re.compile(rb"[A-Za-z0-9_-]{16,}")
PROOF_RUN = re.compile(rb"[0-9a-f]{64,}")
# An address as it may be written: plain, or URL-encoded (``%40``) in a logged URL.
ADDRESS = re.compile(rb"[a-z0-9_.+-]+(?:@|%40)[a-z0-9-]+(?:\.[a-z0-9-]+)+")
CHUNK = 8 << 20
OVERLAP = 1024  # longer than any needle: a match across a chunk boundary is still seen
PARALLEL = 16


@dataclass
class Needles:
    """What must appear nowhere, by value, each with a label that never quotes it."""

    tokens: dict[bytes, str] = field(default_factory=dict)
    proofs: dict[bytes, str] = field(default_factory=dict)
    secrets: dict[bytes, str] = field(default_factory=dict)
    addresses: dict[bytes, str] = field(default_factory=dict)

    @classmethod
    def of(cls, facts: SoakFacts) -> Needles:
        needles = cls()
        for mail in facts.mails:
            for token in tokens_in(mail_text(mail)):
                label = f"the invitation token mailed as {message_id(mail) or 'a mail'}"
                needles.tokens[token.encode()] = label
                needles.proofs[accept_proof(token).encode()] = f"the accept proof of {label[4:]}"
        for name, value in facts.secrets.items():
            if value:
                needles.secrets[value.encode()] = f"the secret {name}"
        try:
            keys = PayloadKeys.parse(facts.temporal.payload_keys).keys
        except PayloadKeysError:
            keys = ()
        for key in keys:
            encoded = base64.b64encode(key.secret)
            needles.secrets[encoded] = f"the payload key {key.id}"
        for onboarding in facts.ledger.onboardings:
            for address in onboarding.invitees:
                needles.add_address(address, f"an invitee's address (onboarding {onboarding.slug})")
        return needles

    def add_address(self, address: str, label: str) -> None:
        self.addresses.setdefault(address.strip().lower().encode(), label)

    def redact(self, error: BaseException) -> str:
        """An error's text with every needle replaced (addresses compared lower-case)."""
        text = f"{type(error).__name__}: {error}"
        for needle in (*self.tokens, *self.proofs, *self.secrets):
            text = text.replace(needle.decode(), "***")
        for address in self.addresses:
            text = re.sub(re.escape(address.decode()), "***", text, flags=re.IGNORECASE)
        return text

    def find(self, data: bytes, *, addresses: bool, after: int = 0) -> Iterator[str]:
        """The label of every needle in ``data``, once per occurrence ending past
        ``after`` (a chunk's overlap with the one before is not counted twice)."""
        for table, runs in ((self.tokens, TOKEN_RUN), (self.proofs, PROOF_RUN)):
            lengths = {len(n) for n in table}
            for run in runs.finditer(data) if table else ():
                text, at = run.group(), run.start()
                for size in lengths:
                    for start in range(len(text) - size + 1):
                        label = table.get(text[start : start + size])
                        if label is not None and at + start + size > after:
                            yield label
        yield from self.find_secrets(data, after=after)
        if addresses and self.addresses:
            for match in ADDRESS.finditer(data.lower()):
                label = self.addresses.get(match.group().replace(b"%40", b"@"))
                if label is not None and match.end() > after:
                    yield label

    def find_secrets(self, data: bytes, *, after: int = 0) -> Iterator[str]:
        """The label of every secret in ``data`` (as :meth:`find`, secrets only)."""
        for secret, label in self.secrets.items():
            start = data.find(secret)
            while start >= 0:
                if start + len(secret) > after:
                    yield label
                start = data.find(secret, start + 1)


def mail_text(mail: EmailMessage) -> str:
    """Every text part of ``mail``, decoded (a link may be quoted-printable on the wire)."""
    parts = []
    for part in mail.walk():
        if part.get_content_maintype() == "text" and isinstance(part, EmailMessage):
            parts.append(str(part.get_content()))
    return "\n".join(parts)


def tokens_in(text: str) -> list[str]:
    """The tokens of the accept links in ``text``, each once (a mail's text and HTML parts
    carry the same link)."""
    return list(dict.fromkeys(TOKEN_IN_LINK.findall(text.replace("&amp;", "&"))))


class Findings:
    """Occurrences by (needle, place); one violation each, however many occurrences."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], tuple[int, str]] = {}

    def add(self, labels: Iterable[str], place: str, example: str) -> None:
        for label in labels:
            count, first = self.seen.get((label, place), (0, example))
            self.seen[(label, place)] = (count + 1, first)

    def violations(self) -> list[Violation]:
        return [
            Violation("leaks", f"{label} found {count}x in {place} (first: {first})")
            for (label, place), (count, first) in sorted(self.seen.items())
        ]


async def check_leaks(facts: SoakFacts, store: StoreReading, needles: Needles) -> list[Violation]:
    for key, invitation in store.invitations.items():
        needles.add_address(str(invitation["email"]), f"the address of invitation {key}")
    findings = Findings()
    blind = [
        Violation(
            "leaks",
            f"invitation mail {message_id(m)} holds no accept link: its token cannot be looked for",
        )
        for m in facts.mails
        if message_id(m).startswith("<invitation.") and not tokens_in(mail_text(m))
    ]
    await asyncio.to_thread(_scan_store, store, needles, findings)
    await _scan_histories(facts, needles, findings)
    await asyncio.to_thread(scan_logs, facts.logs_dir, needles, findings)
    for number, text in enumerate(facts.metrics, 1):
        findings.add(needles.find(text.encode(), addresses=True), "the metrics", f"text #{number}")
    for mail in facts.mails:  # a mail carries its token and its recipient, by design
        findings.add(needles.find_secrets(mail.as_bytes()), "the mails", message_id(mail))
        findings.add(needles.find_secrets(mail_text(mail).encode()), "the mails", message_id(mail))
    return blind + findings.violations()


def _scan_store(store: StoreReading, needles: Needles, findings: Findings) -> None:
    for row in store.events:
        labels = needles.find(row.topic.encode() + b"\n" + row.state, addresses=True)
        example = f"aggregate {row.originator_id} version {row.originator_version}"
        findings.add(labels, "the event store", example)
    with store.connect(autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = %s AND table_type = 'BASE TABLE'",
                (store.location.schema,),
            ).fetchall()
            if r[0] != store.location.events_table and not r[0].endswith(CHECK_SUFFIX)
        ]
        for table in sorted(tables):
            with conn.cursor(name=f"scan_{table}"[:60]) as cursor:
                cursor.itersize = 2000
                with conn.transaction():
                    for number, (text,) in enumerate(
                        cursor.execute(f'SELECT t::text FROM "{table}" t')
                    ):
                        labels = needles.find(str(text).encode(), addresses=False)
                        findings.add(labels, f"the read-model table {table}", f"row {number + 1}")


async def _scan_histories(facts: SoakFacts, needles: Needles, findings: Findings) -> None:
    """Every run's history as Temporal stores it: payloads still sealed."""
    client = await connect_temporal(facts.temporal)
    limit = asyncio.Semaphore(PARALLEL)

    async def one(workflow_id: str, run_id: str | None) -> None:
        async with limit:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        for event in history.events:
            labels = needles.find(event.SerializeToString(), addresses=True)
            findings.add(labels, "workflow histories", f"{workflow_id} event {event.event_id}")

    runs = [(e.id, e.run_id) async for e in _executions(client, facts.temporal.task_queue)]
    await asyncio.gather(*(one(w, r) for w, r in runs))


async def _executions(client: Client, task_queue: str) -> AsyncIterator[WorkflowRun]:
    async for execution in client.list_workflows(f"TaskQueue = '{task_queue}'"):
        yield WorkflowRun(execution.id, execution.run_id)


@dataclass(frozen=True)
class WorkflowRun:
    id: str
    run_id: str | None


def scan_logs(logs_dir: Path, needles: Needles, findings: Findings) -> None:
    for path in sorted(p for p in logs_dir.rglob("*") if p.is_file()):
        place = f"the log file {path.relative_to(logs_dir)}"
        with path.open("rb") as file:
            offset, tail = 0, b""
            while chunk := file.read(CHUNK):
                found = needles.find(tail + chunk, addresses=True, after=len(tail))
                findings.add(found, place, f"near byte {offset - len(tail)}")
                offset += len(chunk)
                tail = chunk[-OVERLAP:]
