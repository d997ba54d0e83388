"""The projector's fast decoder gives exactly the mapper's events, on PostgreSQL.

For every event type of both aggregates — written by the domain's own commands, plus a
stored v1 ``Organization.Registered`` that must be upcast — in a plain store, an
encrypted and compressed one, and through the read-model rows of a whole catch-up.
Rows the fast path must not decode itself (nested typed values, foreign transcoders)
still come out right, through the mapper.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import JSONTranscoder, Mapper, StoredEvent

from a4c_domain import ALL_ORGANIZATIONS, OnboardingApplication, Organization, organization_id
from a4c_projector.eventlog.decoding import EventDecoder
from a4c_projector.eventlog.source import Notification
from a4c_projector.maintenance.compare import snapshot_rows
from a4c_projector.readmodel.tables import TableSet
from tests.projector.conftest import Store, make_pg_store

ALL_TOPICS = {
    f"a4c_domain.{module}:{name}"
    for module, names in {
        "claims": ("DomainClaim.Claimed",),
        "organization": (
            "Organization.Registered",
            "Organization.DNSConfigured",
            "Organization.DNSVerified",
            "Organization.DNSRemoved",
            "Organization.Activated",
            "Organization.Deactivated",
            "Organization.Offboarded",
            "Organization.InvitationIssued",
            "Organization.EmailSent",
        ),
        "invitation": (
            "Invitation.Invited",
            "Invitation.EmailSent",
            "Invitation.EmailFailed",
            "Invitation.TokenReissued",
            "Invitation.Accepted",
            "Invitation.Revoked",
            "Invitation.Expired",
        ),
    }.items()
    for name in names
}
ENCRYPTED = {
    "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
    "CIPHER_KEY": AESCipher.create_key(32),
    "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
}


def write_every_event_type(store: Store) -> None:
    """Each event type at least once, by the domain's commands, and one v1 event."""
    app = store.app
    org = app.register_organization(
        name="Every Ltd",
        slug="every",
        org_type="partner",
        tags=["b", "a"],
        domain="every.example.com",
    )
    app.configure_dns(
        organization_id=org.id,
        fqdn="every.example.com",
        target="ingress.example.com",
        record_id="r-1",
    )
    app.verify_dns(organization_id=org.id)
    app.activate(organization_id=org.id)
    other = app.register_organization(name="Gone Ltd", slug="gone", org_type="provider")
    app.remove_dns(organization_id=other.id)
    app.deactivate(organization_id=other.id, reason="cancelled", failed_step="activate")
    app.record_organization_email_sent(
        organization_id=other.id, kind="provisioning_failed", message_id="<failed.1@m.example>"
    )
    left = app.register_organization(name="Left Ltd", slug="left", org_type="provider")
    app.offboard(organization_id=left.id, reason="contract ended")
    invitations = [
        app.invite(
            organization_id=org.id,
            email=f"user{n}@every.example.com",
            role="member",
            first_name="Ann",
            last_name="Lee",
        )
        for n in range(4)
    ]
    # The fourth stays pending: an Invited with nothing after it.
    first, second, third, _ = (i.id for i in invitations)
    app.record_email_failed(
        organization_id=ALL_ORGANIZATIONS,
        invitation_id=first,
        token_generation=1,
        reason="mailbox full",
    )
    app.reissue_token(organization_id=ALL_ORGANIZATIONS, invitation_id=first, token_generation=2)
    app.record_email_sent(
        organization_id=ALL_ORGANIZATIONS, invitation_id=first, token_generation=2, message_id="m-2"
    )
    app.accept_invitation(
        organization_id=ALL_ORGANIZATIONS,
        invitation_id=first,
        token=app.invitation_token(first, ALL_ORGANIZATIONS),
        user_id="user-1",
    )
    app.revoke_invitation(organization_id=ALL_ORGANIZATIONS, invitation_id=second, reason="left")
    later = OnboardingApplication(store.env, clock=lambda: datetime.now(UTC) + timedelta(days=9))
    try:
        later.expire_invitation(organization_id=ALL_ORGANIZATIONS, invitation_id=third)
    finally:
        later.close()
    write_v1_registered(app)


def write_v1_registered(app: OnboardingApplication) -> None:
    """A stored v1 ``Registered`` (no tags, no domain, no class_version): upcast on read."""
    state = app.mapper.to_stored_event(
        Organization.Registered(  # type: ignore[call-arg]  # @event fields: unseen by mypy
            originator_id=organization_id("legacy"),
            originator_version=1,
            timestamp=datetime(2024, 5, 1, tzinfo=UTC),
            originator_topic="a4c_domain.organization:Organization",
            metadata={"correlation_id": "migrated"},
            name="Legacy Ltd",
            slug="legacy",
            org_type="partner",
            parent_id=None,
            tags=[],
            domain=None,
        )
    )
    plain = app.mapper.transcoder.decode(_unwrap(app.mapper, state.state))
    for v2_only in ("tags", "domain", "class_version"):
        del plain[v2_only]
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=state.originator_id,
                originator_version=1,
                topic=state.topic,
                state=_wrap(app.mapper, app.mapper.transcoder.encode(plain)),
            )
        ]
    )


def _unwrap(mapper: Mapper[Any], state: bytes) -> bytes:
    if mapper.cipher is not None:
        state = mapper.cipher.decrypt(state)
    return state if mapper.compressor is None else mapper.compressor.decompress(state)


def _wrap(mapper: Mapper[Any], state: bytes) -> bytes:
    if mapper.compressor is not None:
        state = mapper.compressor.compress(state)
    return state if mapper.cipher is None else mapper.cipher.encrypt(state)


def stored_notifications(store: Store) -> list[Notification]:
    found = store.app.recorder.select_notifications(start=1, limit=10_000)
    return [
        Notification(n.id, UUID(str(n.originator_id)), n.originator_version, n.topic, n.state, None)
        for n in found
    ]


def assert_same_events(decoder: EventDecoder, notifications: list[Notification]) -> None:
    for notification in notifications:
        fast = decoder.decode(notification)
        slow = decoder.mapper.to_domain_event(
            StoredEvent(
                notification.originator_id,
                notification.originator_version,
                notification.topic,
                notification.state,
            )
        )
        assert type(fast) is type(slow), notification
        assert vars(fast) == vars(slow), notification


@pytest.fixture(params=["plain", "encrypted"])
def full_store(request: pytest.FixtureRequest, pg_schema: str) -> Iterator[Store]:
    store = make_pg_store(pg_schema, **(ENCRYPTED if request.param == "encrypted" else {}))
    try:
        write_every_event_type(store)
        yield store
    finally:
        store.app.close()


def test_every_event_type_decodes_as_the_mapper_decodes_it(full_store: Store) -> None:
    notifications = stored_notifications(full_store)
    assert {n.topic for n in notifications} == ALL_TOPICS
    decoder = EventDecoder(full_store.store.mapper)
    assert decoder.fast
    assert_same_events(decoder, notifications)
    (legacy,) = [n for n in notifications if n.originator_id == organization_id("legacy")]
    assert b"tags" not in _unwrap(decoder.mapper, legacy.state)
    upcast = decoder.decode(legacy)
    assert (upcast.tags, upcast.domain, upcast.name) == ([], None, "Legacy Ltd")


def test_a_catch_up_writes_the_rows_the_mapper_path_writes(full_store: Store) -> None:
    def project(suffix: str, fast: bool) -> dict[str, Any]:
        projector = full_store.projector(projection="p" + suffix, tables=TableSet(suffix))
        projector.decoder.fast = fast
        try:
            projector.catch_up()
            return snapshot_rows(projector.db, TableSet(suffix))
        finally:
            projector.close()

    fast_rows, mapper_rows = project("__fast", True), project("__mapper", False)
    assert fast_rows == mapper_rows
    assert len(fast_rows["organizations"]) == 4 and len(fast_rows["invitations"]) == 4


def test_rows_the_fast_path_must_not_decode_go_through_the_mapper() -> None:
    """A typed value below the top level, a stray ``_type_`` key: the mapper's result."""
    mapper: Mapper[Any] = Mapper(transcoder=_transcoder())
    decoder = EventDecoder(mapper)
    event = Organization.Registered(  # type: ignore[call-arg]  # @event fields: unseen by mypy
        originator_id=organization_id("nested"),
        originator_version=1,
        timestamp=datetime(2025, 1, 2, tzinfo=UTC),
        originator_topic="a4c_domain.organization:Organization",
        metadata={"correlation_id": "c"},
        name="Nested",
        slug="nested",
        org_type="partner",
        parent_id=organization_id("parent"),
        tags=[{"_type_": "x"}, {"at": datetime(2025, 1, 3, tzinfo=UTC)}],
        domain=None,
    )
    stored = mapper.to_stored_event(event)
    assert isinstance(stored.originator_id, UUID)
    assert stored.state.count(b'"_type_"') == 4  # timestamp, parent_id, a stray, a nested
    notification = Notification(1, stored.originator_id, 1, stored.topic, stored.state, None)
    assert decoder._decode_fast(notification) is None
    assert_same_events(decoder, [notification])
    assert decoder.decode(notification).tags[1]["at"] == datetime(2025, 1, 3, tzinfo=UTC)


def test_a_foreign_transcoder_or_mapper_is_left_to_the_mapper() -> None:
    class OtherTranscoder(JSONTranscoder):
        pass

    assert not EventDecoder(Mapper(transcoder=OtherTranscoder())).fast
    assert EventDecoder(Mapper(transcoder=_transcoder(), compressor=ZlibCompressor())).fast


@pytest.mark.parametrize("state", [b"{", b'{"metadata": {}} trailing', b' {"metadata": {}}'])
def test_an_undecodable_row_fails_with_the_mappers_error(state: bytes) -> None:
    mapper: Mapper[Any] = Mapper(transcoder=_transcoder())
    topic = "a4c_domain.organization:Organization.Activated"
    broken = Notification(7, organization_id("x"), 1, topic, state, None)
    if state.startswith(b" "):  # leading whitespace is valid JSON: the mapper's event
        assert_same_events(EventDecoder(mapper), [broken])
        return
    with pytest.raises(Exception, match="Failed to deserialise") as raised:
        EventDecoder(mapper).decode(broken)
    assert type(raised.value).__name__ == "MapperDeserialisationError"


def _transcoder() -> JSONTranscoder:
    from eventsourcing.persistence import DatetimeAsISO, UUIDAsHex

    transcoder = JSONTranscoder()
    transcoder.register(UUIDAsHex())
    transcoder.register(DatetimeAsISO())
    return transcoder
