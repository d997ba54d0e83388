"""Organization commands: happy paths, the idempotency contract, conflicts, invariants."""

from __future__ import annotations

from uuid import UUID

import pytest

from a4c_domain import OnboardingApplication, Organization, organization_id
from a4c_domain.errors import (
    DNSAlreadyRemoved,
    DNSNotConfigured,
    DNSNotVerified,
    InvalidCommand,
    OrganizationConflict,
    OrganizationInactive,
    OrganizationNotFound,
)
from a4c_domain.views import OrganizationView
from tests.domain.support import (
    Store,
    assert_noop,
    assert_refused,
    events,
    notification_count,
    org_fields,
)

DNS = {"fqdn": "acme.orgs.example.com", "target": "lb.example.com", "record_id": "rec-1"}


def register_with_domain(app: OnboardingApplication) -> OrganizationView:
    return app.register_organization(**org_fields(domain="acme.orgs.example.com"))


def test_register_happy_path_and_repeat(app: OnboardingApplication) -> None:
    view = app.register_organization(**org_fields(tags=["b", "a", "b"]))
    assert view.id == organization_id("acme")
    assert (view.version, view.status, view.dns_status) == (1, "registered", "none")
    assert view.tags == ("a", "b")
    assert view.position is not None and view.position >= 1
    assert [type(e) for e in events(app)] == [Organization.Registered]
    assert_noop(app, app.register_organization, view, **org_fields(tags=["a", "b"]))
    assert app.get_organization(view.id) == view.model_copy(update={"position": None})
    assert app.get_organization_by_slug("acme").id == view.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Other Corp"}, "name"),
        ({"org_type": "partner"}, "org_type"),
        ({"tags": ["x"]}, "tags"),
        ({"domain": "acme.example.org"}, "domain"),
    ],
)
def test_register_conflicting_content(
    app: OnboardingApplication, change: dict[str, object], field: str
) -> None:
    app.register_organization(**org_fields())
    error = assert_refused(
        app, OrganizationConflict, app.register_organization, **org_fields(**change)
    )
    assert isinstance(error, OrganizationConflict)
    assert list(error.differences) == [field]


def test_a_slug_never_belongs_to_two_organizations(store: Store) -> None:
    first, second = store.open(), store.open()
    view = first.register_organization(**org_fields())
    assert_refused(
        second, OrganizationConflict, second.register_organization, **org_fields(name="Evil")
    )
    assert second.register_organization(**org_fields()).id == view.id
    registered = [e for e in events(first) if isinstance(e, Organization.Registered)]
    assert [e.slug for e in registered] == ["acme"]


def test_register_child_requires_a_live_parent(app: OnboardingApplication) -> None:
    missing = UUID(int=7)
    assert_refused(
        app,
        OrganizationNotFound,
        app.register_organization,
        **org_fields(slug="child", parent_id=missing),
    )
    parent = app.register_organization(**org_fields())
    child = app.register_organization(**org_fields(slug="child", parent_id=parent.id))
    assert child.parent_id == parent.id
    assert_refused(
        app,
        OrganizationConflict,
        app.register_organization,
        **org_fields(slug="child", parent_id=None),
    )
    app.deactivate(organization_id=parent.id, reason="closed")
    assert_refused(
        app,
        OrganizationInactive,
        app.register_organization,
        **org_fields(slug="child2", parent_id=parent.id),
    )


def test_dns_lifecycle_and_activation(app: OnboardingApplication) -> None:
    org = register_with_domain(app)
    assert_refused(app, DNSNotVerified, app.activate, organization_id=org.id)
    assert_refused(app, DNSNotConfigured, app.verify_dns, organization_id=org.id)

    configured = app.configure_dns(organization_id=org.id, **DNS)
    assert (configured.dns_status, configured.fqdn, configured.version) == (
        "configured",
        DNS["fqdn"],
        2,
    )
    assert_noop(app, app.configure_dns, configured, organization_id=org.id, **DNS)
    error = assert_refused(
        app,
        OrganizationConflict,
        app.configure_dns,
        organization_id=org.id,
        **{**DNS, "target": "other.example.com"},
    )
    assert isinstance(error, OrganizationConflict) and set(error.differences) == {"target"}
    assert_refused(app, DNSNotVerified, app.activate, organization_id=org.id)

    verified = app.verify_dns(organization_id=org.id)
    assert verified.dns_status == "verified"
    assert_noop(app, app.verify_dns, verified, organization_id=org.id)
    assert_noop(app, app.configure_dns, verified, organization_id=org.id, **DNS)

    active = app.activate(organization_id=org.id)
    assert active.status == "active"
    assert_noop(app, app.activate, active, organization_id=org.id)
    assert [type(e).__name__ for e in events(app)] == [
        "Registered",
        "Claimed",  # the domain, saved with the registration
        "DNSConfigured",
        "DNSVerified",
        "Activated",
    ]


def test_activation_without_domain_needs_no_dns(app: OnboardingApplication) -> None:
    org = app.register_organization(**org_fields())
    active = app.activate(organization_id=org.id)
    assert (active.status, active.dns_status) == ("active", "none")


def test_remove_dns_is_a_final_compensation(app: OnboardingApplication) -> None:
    org = register_with_domain(app)
    app.configure_dns(organization_id=org.id, **DNS)
    removed = app.remove_dns(organization_id=org.id)
    assert (removed.dns_status, removed.position is not None) == ("removed", True)
    assert_noop(app, app.remove_dns, removed, organization_id=org.id)
    # A late retry of the configuration that was removed must not resurrect it...
    assert_noop(app, app.configure_dns, removed, organization_id=org.id, **DNS)
    # ...and a different record cannot be configured after the compensation.
    assert_refused(
        app,
        DNSAlreadyRemoved,
        app.configure_dns,
        organization_id=org.id,
        **{**DNS, "record_id": "rec-2"},
    )
    assert_refused(app, DNSNotConfigured, app.verify_dns, organization_id=org.id)
    assert_refused(app, DNSNotVerified, app.activate, organization_id=org.id)
    removed_events = [e for e in events(app) if isinstance(e, Organization.DNSRemoved)]
    assert [(e.fqdn, e.record_id) for e in removed_events] == [(DNS["fqdn"], "rec-1")]


def test_removal_before_configuration_is_recorded(app: OnboardingApplication) -> None:
    """Compensation may run before the configure step finished (a zombie attempt still
    out there): the removal is recorded, so that configuration cannot land after it."""
    org = register_with_domain(app)
    removed = app.remove_dns(organization_id=org.id)
    assert (removed.dns_status, removed.fqdn, removed.version) == ("removed", None, 2)
    assert_noop(app, app.remove_dns, removed, organization_id=org.id)
    assert_refused(app, DNSAlreadyRemoved, app.configure_dns, organization_id=org.id, **DNS)
    (event,) = [e for e in events(app) if isinstance(e, Organization.DNSRemoved)]
    assert (event.fqdn, event.record_id) == (None, None)


def test_nothing_but_compensation_after_deactivation(app: OnboardingApplication) -> None:
    org = register_with_domain(app)
    app.configure_dns(organization_id=org.id, **DNS)
    down = app.deactivate(organization_id=org.id, reason="dns failed", failed_step="verify_dns")
    assert (down.status, down.deactivation_reason, down.failed_step) == (
        "deactivated",
        "dns failed",
        "verify_dns",
    )
    for command, fields in [
        (app.verify_dns, {}),
        (app.activate, {}),
        (app.configure_dns, DNS),
    ]:
        assert_refused(app, OrganizationInactive, command, organization_id=org.id, **fields)
    assert_noop(
        app,
        app.deactivate,
        down,
        organization_id=org.id,
        reason="dns failed",
        failed_step="verify_dns",
    )
    error = assert_refused(
        app, OrganizationConflict, app.deactivate, organization_id=org.id, reason="other"
    )
    assert isinstance(error, OrganizationConflict)
    assert set(error.differences) == {"reason", "failed_step"}
    # The remaining compensation still works after deactivation.
    removed = app.remove_dns(organization_id=org.id)
    assert (removed.status, removed.dns_status) == ("deactivated", "removed")


def test_deactivate_an_active_organization(app: OnboardingApplication) -> None:
    org = app.register_organization(**org_fields())
    app.activate(organization_id=org.id)
    down = app.deactivate(organization_id=org.id, reason="customer left")
    assert down.status == "deactivated"
    assert_refused(app, OrganizationInactive, app.activate, organization_id=org.id)


@pytest.mark.parametrize(
    "command",
    ["configure_dns", "verify_dns", "remove_dns", "activate", "deactivate"],
)
def test_commands_on_a_missing_organization(app: OnboardingApplication, command: str) -> None:
    fields: dict[str, object] = {"organization_id": organization_id("nobody")}
    if command == "configure_dns":
        fields.update(DNS)
    if command == "deactivate":
        fields["reason"] = "x"
    assert_refused(app, OrganizationNotFound, getattr(app, command), **fields)
    with pytest.raises(OrganizationNotFound):
        app.get_organization(organization_id("nobody"))
    assert notification_count(app) == 0


def test_lookup_by_invalid_slug_is_a_typed_error(app: OnboardingApplication) -> None:
    with pytest.raises(InvalidCommand) as info:
        app.get_organization_by_slug("Not A Slug")
    assert info.value.fields == ["slug"]


def test_a_mail_about_the_organization_is_recorded_once_even_after_deactivation(
    app: OnboardingApplication,
) -> None:
    org = app.register_organization(**org_fields())
    sent = app.record_organization_email_sent(
        organization_id=org.id, kind="welcome", message_id="<welcome.1@mail.example.com>"
    )
    assert sent.version == 2
    assert app.organization_email_sent(org.id, "<welcome.1@mail.example.com>")
    assert not app.organization_email_sent(org.id, "<welcome.2@mail.example.com>")
    assert_noop(
        app,
        app.record_organization_email_sent,
        sent,
        organization_id=org.id,
        kind="welcome",
        message_id="<welcome.1@mail.example.com>",
    )
    # The failure and offboarding mails go out once the organization is deactivated.
    app.deactivate(organization_id=org.id, reason="bootstrap failed", failed_step="verify_dns")
    after = app.record_organization_email_sent(
        organization_id=org.id, kind="provisioning_failed", message_id="<failed.1@m.example.com>"
    )
    assert after.position is not None
    mails = [e for e in events(app) if isinstance(e, Organization.EmailSent)]
    recorded = [(e.kind, e.message_id) for e in mails]
    assert recorded == [
        ("welcome", "<welcome.1@mail.example.com>"),
        ("provisioning_failed", "<failed.1@m.example.com>"),
    ]


def test_a_mail_of_no_known_kind_or_for_no_organization_is_refused(
    app: OnboardingApplication,
) -> None:
    org = app.register_organization(**org_fields())
    with pytest.raises(InvalidCommand) as info:
        app.record_organization_email_sent(
            organization_id=org.id,
            kind="newsletter",  # type: ignore[arg-type]  # what an untyped caller may send
            message_id="<m@x.example>",
        )
    assert info.value.fields == ["kind"]
    assert_refused(
        app,
        OrganizationNotFound,
        app.record_organization_email_sent,
        organization_id=organization_id("nobody"),
        kind="welcome",
        message_id="<m@x.example>",
    )
