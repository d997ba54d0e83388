"""The event store and the read models, read once for every check.

The store is opened as the projector opens it (:func:`open_event_store`: the same
mapper, so upcasting and the cipher apply), but over the soak's own conninfo (multi-host,
``target_session_attrs=read-write``): whichever node is the primary after a failover.
Every statement is bounded (``statement_timeout``), so a stuck database ends the check,
not the soak.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import Mapper, StoredEvent

from a4c_domain import Invitation, Organization
from a4c_projector.dialects.location import Location
from a4c_projector.eventlog.store import open_event_store
from a4c_projector.readmodel.tracking import DEFAULT_PROJECTION
from soaklib.facts import StoreFacts

STATEMENT_TIMEOUT_MS = 60_000
PROJECTION_VAR = "PROJECTION"  # the projector's setting (a4c_projector.settings)


@dataclass(frozen=True)
class EventRow:
    """One stored event as the database holds it (``state`` raw: sealed by the cipher)."""

    notification_id: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes

    @property
    def kind(self) -> str:
        """The event's class name (``Invitation.EmailSent`` -> ``EmailSent``)."""
        return self.topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


@dataclass(frozen=True)
class EmailSentFact:
    invitation_id: UUID
    token_generation: int
    message_id: str


@dataclass(frozen=True)
class OrganizationMailFact:
    """A mail about an organization recorded as sent (welcome, provisioning failed...)."""

    organization_id: UUID
    kind: str
    message_id: str


@dataclass
class StoreReading:
    location: Location
    mapper: Mapper[Any]
    projection: str
    events: list[EventRow]
    # Read-model rows by id, as dicts of column -> value (the live tables).
    organizations: dict[UUID, dict[str, Any]]
    invitations: dict[UUID, dict[str, Any]]
    members: dict[UUID, dict[str, Any]]
    sso_connections: dict[UUID, dict[str, Any]] = field(default_factory=dict)  # by org id
    email_domains: dict[UUID, dict[str, Any]] = field(default_factory=dict)
    emails_sent: list[EmailSentFact] = field(default_factory=list)
    organization_mails: list[OrganizationMailFact] = field(default_factory=list)
    undecodable: list[str] = field(default_factory=list)  # "<aggregate> v<version>"

    def connect(self, **options: Any) -> psycopg.Connection[Any]:
        """A connection of its own (none is held between checks)."""
        return connect(self.location, **options)


def connect(location: Location, **options: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(
        location.conninfo,
        options=f"-c search_path={location.schema} -c statement_timeout={STATEMENT_TIMEOUT_MS}",
        application_name="a4c-soak-check",
        **options,
    )


def read_store(facts: StoreFacts) -> StoreReading:
    opened = open_event_store(facts.env)
    location = dataclasses.replace(opened.location, conninfo=facts.conninfo)
    with connect(location, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            f"FROM {location.qualified_events_table} ORDER BY notification_id"
        ).fetchall()
        events = [EventRow(int(r[0]), UUID(str(r[1])), int(r[2]), r[3], bytes(r[4])) for r in rows]
        organizations = _rows(conn, "organizations", "id")
        invitations = _rows(conn, "invitations", "id")
        members = _rows(conn, "members", "invitation_id")
        sso_connections = _rows(conn, "sso_connections", "organization_id")
        email_domains = _rows(conn, "email_domains", "id")
    reading = StoreReading(
        location=location,
        mapper=opened.mapper,
        projection=facts.env.get(PROJECTION_VAR) or DEFAULT_PROJECTION,
        events=events,
        organizations=organizations,
        invitations=invitations,
        members=members,
        sso_connections=sso_connections,
        email_domains=email_domains,
    )
    _decode_mail_facts(reading)
    return reading


def aggregates(reading: StoreReading, class_name: str) -> dict[UUID, Any]:
    """Every aggregate of the class ``class_name`` (``SSOConnection``...), rebuilt from
    its stored events by id, as the application would (cipher and upcasting applied)."""
    found: dict[UUID, Any] = {}
    for row in reading.events:
        if row.topic.rsplit(":", 1)[-1].split(".")[0] != class_name:
            continue
        event: Any = reading.mapper.to_domain_event(_stored(row))
        found[row.originator_id] = event.mutate(found.get(row.originator_id))
    return found


def _stored(row: Any) -> StoredEvent:
    """A row of the store as eventsourcing's mapper reads it."""
    return StoredEvent(
        originator_id=row.originator_id,
        originator_version=row.originator_version,
        topic=row.topic,
        state=row.state,
    )


def _rows(conn: psycopg.Connection[Any], table: str, key: str) -> dict[UUID, dict[str, Any]]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        found = cur.execute(f'SELECT * FROM "{table}"').fetchall()
    return {UUID(str(row[key])): row for row in found}


def _decode_mail_facts(reading: StoreReading) -> None:
    """The ``EmailSent`` events of invitations and organizations, decoded (their message
    ids are sealed with the rest)."""
    for row in reading.events:
        if row.kind != "EmailSent":
            continue
        try:
            event = reading.mapper.to_domain_event(_stored(row))
        except Exception:  # reported by the mail check, named by id only
            reading.undecodable.append(f"{row.originator_id} v{row.originator_version}")
            continue
        if isinstance(event, Organization.EmailSent):
            reading.organization_mails.append(
                OrganizationMailFact(row.originator_id, event.kind, event.message_id)
            )
            continue
        assert isinstance(event, Invitation.EmailSent)
        reading.emails_sent.append(
            EmailSentFact(row.originator_id, event.token_generation, event.message_id)
        )
