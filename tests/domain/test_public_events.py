"""The public form of the events: every event class has an entry, and nothing secret leaks.

Two checks fail loudly when the domain grows: an event class without an entry in
``PUBLIC_FORMS`` (public or explicitly internal), and a public body with a field named
like a secret (a hash, a cipher, a provider's record or message id, the cause metadata)
or holding a token, a token's hash or a provider id as a value. Each check is shown
failing on a deliberately wrong input, so it cannot pass by finding nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from a4c_domain import (
    ALL_ORGANIZATIONS,
    DomainClaim,
    EmailDomainClaim,
    EmailDomainVerification,
    Invitation,
    OnboardingApplication,
    Organization,
    SSOConnection,
    event_id,
    hash_token,
)
from a4c_domain.base import DomainAggregate
from a4c_domain.public_events import (
    PUBLIC_EVENT_TYPES,
    PUBLIC_EVENTS_VERSION,
    PUBLIC_FORMS,
    Internal,
    Public,
    PublicEvent,
    form_of,
    organization_id_of,
    public_body,
    public_form,
)
from a4c_domain.webhook_endpoint import WebhookEndpoint
from tests.domain.support import FakeClock, events, sqlite_store
from tests.support import TOKEN_SECRET

AGGREGATES = (
    Organization,
    Invitation,
    DomainClaim,
    WebhookEndpoint,
    SSOConnection,
    EmailDomainVerification,
    EmailDomainClaim,
)
# Names a public field must never have: what lets someone accept, decrypt or reach into
# a provider, and the bookkeeping that is nobody else's business.
FORBIDDEN_NAME = re.compile(
    r"secret|hash|cipher|password|key|token(?!_generation)|record_id|message_id|metadata|cause",
    re.IGNORECASE,
)
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
MESSAGE_ID = "provider-message-7f3a"
ORGANIZATION_MAIL_ID = "<welcome.acme.5f1c2e8d9a0b3c4d@mail.example.com>"  # hashes whom
RECORD_ID = "provider-record-91c2"


def event_classes() -> list[type[DomainAggregate.Event]]:
    """Every event class of the aggregates: each one a stored event can have.

    (Each aggregate's own ``Event`` and ``Created`` are the bases eventsourcing defines
    for it; no event of those classes is ever recorded, since every aggregate's
    ``__init__`` records its own named creation event.)
    """
    found = []
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if (
                isinstance(value, type)
                and issubclass(value, DomainAggregate.Event)
                and name not in ("Event", "Created")
            ):
                found.append(value)
    return found


def unmapped(classes: Iterable[type]) -> list[str]:
    return [c.__qualname__ for c in classes if c not in PUBLIC_FORMS]


def test_every_event_class_has_a_public_form_entry() -> None:
    classes = event_classes()
    assert unmapped(classes) == []
    assert set(PUBLIC_FORMS) == set(classes)  # and no entry for a class that is gone
    assert len(classes) == 33  # the finder sees them all: 9 + 7 + 1 + 7 + 6 + 2 + 1


def test_a_class_without_an_entry_is_found_and_refused() -> None:
    class Renamed(Organization.Event):  # what adding an event and forgetting it looks like
        pass

    assert unmapped([*event_classes(), Renamed]) == [Renamed.__qualname__]
    with pytest.raises(LookupError, match="has no public form entry"):
        form_of(Renamed)


def test_types_are_unique_named_after_their_subject_and_internal_ones_say_why() -> None:
    public = [f for f in PUBLIC_FORMS.values() if isinstance(f, Public)]
    assert len({f.type for f in public}) == len(public) == len(PUBLIC_EVENT_TYPES) == 15
    for event_class, form in PUBLIC_FORMS.items():
        aggregate = event_class.__qualname__.split(".")[0]
        if isinstance(form, Public):
            assert re.fullmatch(r"(organization|invitation)\.[a-z_]+", form.type)
            assert form.kind == aggregate.lower(), form.type
        else:
            assert isinstance(form, Internal) and form.why
    internal = {c for c, f in PUBLIC_FORMS.items() if isinstance(f, Internal)}

    def events_of(aggregate: type) -> set[type]:
        return {c for c in vars(aggregate).values() if isinstance(c, type) and c in PUBLIC_FORMS}

    webhook_settings = events_of(WebhookEndpoint)
    assert len(webhook_settings) == 7  # sealed secrets ride in them: never a feed item
    sso_settings = events_of(SSOConnection)
    assert len(sso_settings) == 6  # sealed client secrets too
    email_domains = events_of(EmailDomainVerification) | events_of(EmailDomainClaim)
    assert internal == {
        Organization.InvitationIssued,
        DomainClaim.Claimed,
        *webhook_settings,
        *sso_settings,
        *email_domains,
    }


def test_each_data_field_is_an_attribute_of_its_event_and_none_is_named_like_a_secret() -> None:
    for event_class, form in PUBLIC_FORMS.items():
        if isinstance(form, Public):
            annotations: dict[str, Any] = {}
            for klass in reversed(event_class.__mro__):
                annotations.update(getattr(klass, "__annotations__", {}))
            for name in form.data.model_fields:
                assert name in annotations, f"{form.type}.{name} is not on {event_class}"
                assert not FORBIDDEN_NAME.search(name), f"{form.type}.{name}"


# --- every type, from events a real application stored ---------------------------------


def field_paths(value: Any, path: str = "") -> Iterator[str]:
    """The path of every field of a JSON document, nested ones included."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield f"{path}.{key}"
            yield from field_paths(item, f"{path}.{key}")
    elif isinstance(value, list):
        for item in value:
            yield from field_paths(item, path)


def leaks(body: str, secrets: Iterable[str]) -> list[str]:
    """What is wrong with a public body: fields named like a secret, secret values."""
    found = []
    document = json.loads(body)
    for path in field_paths(document["data"]):
        if FORBIDDEN_NAME.search(path.rsplit(".", 1)[-1]):
            found.append(f"field {path}")
    for secret in secrets:
        if secret in body:
            found.append(f"value {secret[:6]}…")
    return found


def run_every_command(tmp_path: Path) -> tuple[OnboardingApplication, list[str]]:
    """An application that recorded every event class; the secrets it handled."""
    clock = FakeClock()
    app = sqlite_store(str(tmp_path / "events.sqlite")).open(clock)
    acme = app.register_organization(
        name="Acme", slug="acme", org_type="provider", domain="acme.example.com", tags=["x"]
    )
    app.configure_dns(
        organization_id=acme.id,
        fqdn="acme.example.com",
        target="lb.example.com",
        record_id=RECORD_ID,
    )
    app.verify_dns(organization_id=acme.id)
    app.activate(organization_id=acme.id)
    person = {"role": "admin", "first_name": "Ada", "last_name": "Lovelace"}
    ada = app.invite(organization_id=acme.id, email="ada@example.com", **person)  # type: ignore[arg-type]
    scope = ALL_ORGANIZATIONS
    secrets = [app.invitation_token(ada.id, scope)]
    app.record_email_sent(
        organization_id=scope, invitation_id=ada.id, token_generation=1, message_id=MESSAGE_ID
    )
    app.record_email_failed(
        organization_id=scope, invitation_id=ada.id, token_generation=1, reason="bounced"
    )
    app.reissue_token(organization_id=scope, invitation_id=ada.id, token_generation=2)
    secrets.append(app.invitation_token(ada.id, scope))
    app.accept_invitation(
        organization_id=scope, invitation_id=ada.id, token=secrets[-1], user_id="idp|ada"
    )
    bob = app.invite(organization_id=acme.id, email="bob@example.com", **person)  # type: ignore[arg-type]
    app.revoke_invitation(organization_id=scope, invitation_id=bob.id, reason="typo")
    cy = app.invite(organization_id=acme.id, email="cy@example.com", **person)  # type: ignore[arg-type]
    secrets.append(app.invitation_token(cy.id, scope))
    clock.advance(timedelta(days=30))
    app.expire_invitation(organization_id=scope, invitation_id=cy.id)
    beta = app.register_organization(name="Beta", slug="beta", org_type="partner")
    app.remove_dns(organization_id=beta.id)
    app.deactivate(organization_id=beta.id, reason="cancelled", failed_step="dns")
    app.record_organization_email_sent(
        organization_id=acme.id, kind="welcome", message_id=ORGANIZATION_MAIL_ID
    )
    gamma = app.register_organization(name="Gamma", slug="gamma", org_type="partner")
    app.offboard(organization_id=gamma.id, reason="customer left")
    secrets += [hash_token(token) for token in secrets]
    return app, [*secrets, TOKEN_SECRET, MESSAGE_ID, RECORD_ID, ORGANIZATION_MAIL_ID, "5f1c2e8d"]


def public_stream(app: OnboardingApplication) -> list[tuple[Any, PublicEvent | None]]:
    """Each stored event and its public form, organizations found as a consumer of the
    store would: from the events themselves."""
    slugs: dict[UUID, str] = {}
    invitations: dict[UUID, UUID] = {}
    mapped = []
    for event in events(app):
        if isinstance(event, Organization.Registered):
            slugs[event.originator_id] = event.slug
        organization = organization_id_of(event)
        if isinstance(event, Invitation.Invited):
            invitations[event.originator_id] = event.organization_id
        if organization is None:
            organization = invitations.get(event.originator_id, UUID(int=0))
        form = public_form(
            event, organization_id=organization, organization_slug=slugs.get(organization, "?")
        )
        mapped.append((event, form))
    return mapped


def test_every_public_type_from_a_real_store_without_a_secret(tmp_path: Path) -> None:
    app, secrets = run_every_command(tmp_path)
    try:
        stream = public_stream(app)
    finally:
        app.close()
    published = [(e, p) for e, p in stream if p is not None]
    assert {p.type for _, p in published} == PUBLIC_EVENT_TYPES  # every type, seen
    assert {type(e) for e, p in stream if p is None} == {
        Organization.InvitationIssued,
        DomainClaim.Claimed,
    }
    for event, public in published:
        body = public.model_dump_json()
        written = public_body(
            event,
            organization_id=public.organization.id,
            organization_slug=public.organization.slug,
        )
        assert written == body  # the fast writer and the model agree, byte for byte
        assert leaks(body, secrets) == [], (public.type, body)
        assert PublicEvent.model_validate_json(body) == public
        document = json.loads(body)
        assert list(document) == [
            "id",
            "type",
            "schema_version",
            "occurred_at",
            "organization",
            "subject",
            "data",
        ]
        assert document["schema_version"] == PUBLIC_EVENTS_VERSION == 1
        assert document["id"] == str(event_id(event.originator_id, event.originator_version))
        assert RFC3339_UTC.match(document["occurred_at"])
        assert document["subject"] == {
            "kind": public.type.split(".")[0],
            "id": str(event.originator_id),
            "version": event.originator_version,
        }
        assert document["organization"]["slug"] in ("acme", "beta", "gamma")
    by_type = {p.type: json.loads(p.model_dump_json())["data"] for _, p in published}
    assert by_type["invitation.invited"]["email"] in (
        "ada@example.com",
        "bob@example.com",
        "cy@example.com",
    )
    assert by_type["invitation.accepted"] == {"user_id": "idp|ada"}
    assert by_type["organization.dns_configured"] == {
        "fqdn": "acme.example.com",
        "target": "lb.example.com",
    }
    assert by_type["invitation.email_sent"] == {"token_generation": 1}
    assert RFC3339_UTC.match(by_type["invitation.token_reissued"]["expires_at"])
    # Personal data beyond the invited address stays out.
    assert not any("Lovelace" in p.model_dump_json() for _, p in published)


def test_the_leak_check_catches_a_leaky_form(tmp_path: Path) -> None:
    """A form that copied the token hash is caught by name and by value."""
    app, secrets = run_every_command(tmp_path)
    try:
        invited = next(e for e in events(app) if isinstance(e, Invitation.Invited))
    finally:
        app.close()
    leaky = json.dumps({"data": {"token_hash": invited.token_hash}})
    assert leaks(leaky, secrets) == ["field .token_hash", f"value {invited.token_hash[:6]}…"]
    renamed = json.dumps({"data": {"checksum": invited.token_hash}})
    assert leaks(renamed, secrets) == [f"value {invited.token_hash[:6]}…"]


def test_the_model_refuses_what_is_not_a_public_event() -> None:
    valid: dict[str, Any] = {
        "id": str(UUID(int=1)),
        "type": "organization.activated",
        "schema_version": 1,
        "occurred_at": "2026-12-07T08:00:00.123456Z",
        "organization": {"id": str(UUID(int=2)), "slug": "acme"},
        "subject": {"kind": "organization", "id": str(UUID(int=2)), "version": 3},
        "data": {},
    }
    event = PublicEvent.model_validate(valid)
    assert event.occurred_at == datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=UTC)
    assert json.loads(event.model_dump_json()) == valid
    for wrong in (
        {"type": "organization.renamed"},
        {"schema_version": 2},
        {"extra": 1},
        {"occurred_at": "2026-12-07T08:00:00"},  # no zone
        {"subject": {"kind": "claim", "id": str(UUID(int=2)), "version": 1}},
    ):
        with pytest.raises(ValidationError):
            PublicEvent.model_validate({**valid, **wrong})
    with pytest.raises(ValidationError):
        event.type = "organization.registered"  # type: ignore[misc]  # frozen
