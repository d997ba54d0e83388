"""An organization's single sign-on connection: a configuration is tried, tested, then put
in force; until then, and when it is abandoned, the one in force stays. A step for a
configuration that was replaced is refused; the same step again is a no-op; secrets are
stored sealed, as given, and never shown. Any sequence of commands agrees with a
reference model and replays to the same state and ids."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from a4c_domain import OnboardingApplication, SSOConnection, SSOConnectionView, sso_connection_id
from a4c_domain.errors import (
    A4CError,
    InvalidCommand,
    OrganizationInactive,
    OrganizationNotFound,
    SSOConfigurationNotPending,
    SSOConnectionNotFound,
    SSONotTested,
)
from tests.domain.support import (
    FakeClock,
    assert_noop,
    assert_refused,
    events,
    notification_count,
    org_fields,
    sqlite_store,
    without_position,
)

ISSUER = "https://idp.acme.example/realms/staff"
OTHER_ISSUER = "https://login.other.example"
SUBJECT = "248289761001"


def configuration(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "issuer": ISSUER,
        "client_id": "a4c-sso",
        "client_secret": "k1:SEALED-1",
    }
    fields.update(overrides)
    return fields


@pytest.fixture
def org(app: OnboardingApplication) -> UUID:
    return app.register_organization(**org_fields()).id


def _stored(app: OnboardingApplication, org: UUID) -> SSOConnection:
    connection: object = app.repository.get(sso_connection_id(org))
    assert isinstance(connection, SSOConnection)
    return connection


def _activate_first(app: OnboardingApplication, org: UUID) -> SSOConnectionView:
    app.configure_sso(organization_id=org, **configuration())
    app.record_sso_test(
        organization_id=org, generation=1, subject=SUBJECT, email_domain="acme.example"
    )
    return app.activate_sso(organization_id=org, generation=1)


def test_a_configuration_is_pending_until_tested_and_activated(
    app: OnboardingApplication, org: UUID
) -> None:
    tried = app.configure_sso(organization_id=org, **configuration())
    assert tried.id == sso_connection_id(org) and tried.position is not None
    assert (tried.status, tried.generation, tried.pending_generation) == ("inactive", 1, 1)
    assert (tried.pending_issuer, tried.pending_client_id) == (ISSUER, "a4c-sso")
    assert not tried.pending_tested and tried.active_issuer is None
    assert "k1:SEALED-1" not in repr(tried) and "secret" not in " ".join(
        SSOConnectionView.model_fields
    )
    assert _stored(app, org).pending_client_secret == "k1:SEALED-1"  # sealed, as given

    assert_refused(app, SSONotTested, app.activate_sso, organization_id=org, generation=1)
    tested = app.record_sso_test(
        organization_id=org, generation=1, subject=SUBJECT, email_domain="Acme.Example."
    )
    assert tested.pending_tested and tested.tested_email_domain == "acme.example"
    active = app.activate_sso(organization_id=org, generation=1)
    assert (active.status, active.active_generation, active.active_issuer) == ("active", 1, ISSUER)
    assert active.pending_generation is None and active.pending_issuer is None
    assert _stored(app, org).active_client_secret == "k1:SEALED-1"
    assert [type(e).__name__ for e in events(app)][-3:] == ["Configured", "Tested", "Activated"]
    assert app.get_sso_connection(org) == active.model_copy(update={"position": None})


def test_each_step_again_is_a_no_op(app: OnboardingApplication, org: UUID) -> None:
    tried = app.configure_sso(organization_id=org, **configuration())
    assert_noop(app, app.configure_sso, tried, organization_id=org, **configuration())
    test: dict[str, Any] = {"organization_id": org, "generation": 1, "email_domain": "acme.example"}
    tested = app.record_sso_test(**test, subject=SUBJECT)
    assert_noop(app, app.record_sso_test, tested, **test, subject="someone-else")
    active = app.activate_sso(organization_id=org, generation=1)
    assert_noop(app, app.activate_sso, active, organization_id=org, generation=1)
    assert_noop(app, app.record_sso_test, active, **test, subject=SUBJECT)  # retried late
    # The configuration in force, with nothing being tried: nothing to try again.
    assert_noop(app, app.configure_sso, active, organization_id=org, **configuration())
    off = app.deactivate_sso(organization_id=org, reason="moving providers")
    assert_noop(app, app.deactivate_sso, off, organization_id=org, reason="again")


def test_reconfiguring_keeps_the_active_one_in_force_until_the_new_one_is_activated(
    app: OnboardingApplication, org: UUID
) -> None:
    _activate_first(app, org)
    new = configuration(issuer=OTHER_ISSUER, client_secret="k1:SEALED-2")
    tried = app.configure_sso(organization_id=org, **new)
    assert (tried.status, tried.active_issuer, tried.active_generation) == ("active", ISSUER, 1)
    assert (tried.pending_generation, tried.pending_issuer) == (2, OTHER_ISSUER)
    # Replaced before its test: the test of the second is refused for the third.
    third = app.configure_sso(organization_id=org, **configuration(client_id="third"))
    assert third.generation == 3 and third.pending_client_id == "third"
    for step, extra in (
        (app.record_sso_test, {"subject": SUBJECT, "email_domain": "acme.example"}),
        (app.activate_sso, {}),
    ):
        error = assert_refused(
            app, SSOConfigurationNotPending, step, organization_id=org, generation=2, **extra
        )
        assert "configuration 2 is not the one being tried" in str(error)
    assert app.get_sso_connection(org).active_issuer == ISSUER


def test_an_abandoned_configuration_leaves_the_active_one(
    app: OnboardingApplication, org: UUID
) -> None:
    _activate_first(app, org)
    app.configure_sso(organization_id=org, **configuration(issuer=OTHER_ISSUER))
    dropped = app.abandon_sso_configuration(
        organization_id=org, generation=2, reason="test sign-in timed out"
    )
    assert (dropped.status, dropped.active_issuer, dropped.pending_generation) == (
        "active",
        ISSUER,
        None,
    )
    assert dropped.abandon_reason == "test sign-in timed out"
    assert_noop(
        app,
        app.abandon_sso_configuration,
        dropped,
        organization_id=org,
        generation=2,
        reason="cancelled",
    )
    assert_refused(
        app, SSOConfigurationNotPending, app.activate_sso, organization_id=org, generation=2
    )
    # Abandoning the one in force is no way to end it: a no-op, it stays.
    assert_noop(
        app, app.abandon_sso_configuration, dropped, organization_id=org, generation=1, reason="x"
    )


def test_deactivating_ends_the_active_one_and_leaves_a_pending_one(
    app: OnboardingApplication, org: UUID
) -> None:
    _activate_first(app, org)
    app.configure_sso(organization_id=org, **configuration(issuer=OTHER_ISSUER))
    off = app.deactivate_sso(organization_id=org, reason="the organization left")
    assert (off.status, off.active_generation, off.active_issuer) == ("inactive", None, None)
    assert off.pending_generation == 2 and off.deactivation_reason == "the organization left"
    assert _stored(app, org).active_client_secret is None
    # The same configuration as the one ended is tried again as a new one.
    back = app.configure_sso(organization_id=org, **configuration())
    assert back.generation == 3


def test_an_organization_that_is_gone_or_deactivated_gets_no_new_configuration(
    app: OnboardingApplication, org: UUID
) -> None:
    assert_refused(
        app, OrganizationNotFound, app.configure_sso, organization_id=uuid4(), **configuration()
    )
    _activate_first(app, org)
    app.configure_sso(organization_id=org, **configuration(issuer=OTHER_ISSUER))
    app.deactivate(organization_id=org, reason="offboarded")
    assert_refused(
        app, OrganizationInactive, app.configure_sso, organization_id=org, **configuration()
    )
    assert_refused(app, OrganizationInactive, app.activate_sso, organization_id=org, generation=2)
    # What undoing needs stays allowed.
    app.abandon_sso_configuration(organization_id=org, generation=2, reason="offboarded")
    assert app.deactivate_sso(organization_id=org, reason="offboarded").status == "inactive"


def test_an_organization_without_a_connection_is_not_found(
    app: OnboardingApplication, org: UUID
) -> None:
    with pytest.raises(SSOConnectionNotFound):
        app.get_sso_connection(org)
    assert_refused(app, SSOConnectionNotFound, app.activate_sso, organization_id=org, generation=1)
    assert_refused(app, SSOConnectionNotFound, app.deactivate_sso, organization_id=org, reason="x")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"issuer": "https://idp.example.com/?tenant=1"}, "issuer"),
        ({"issuer": "https://idp.example.com/#x"}, "issuer"),
        ({"issuer": "ftp://idp.example.com"}, "issuer"),
        ({"issuer": "https://user:pw@idp.example.com"}, "issuer"),
        ({"client_id": " "}, "client_id"),
        ({"client_id": "a\x00b"}, "client_id"),
        ({"client_secret": "not sealed"}, "client_secret"),
        ({"client_secret": ""}, "client_secret"),
    ],
)
def test_bad_configurations_are_refused_naming_the_field(
    app: OnboardingApplication, org: UUID, overrides: dict[str, Any], field: str
) -> None:
    error = assert_refused(
        app, InvalidCommand, app.configure_sso, organization_id=org, **configuration(**overrides)
    )
    assert isinstance(error, InvalidCommand) and error.fields == [field]
    assert "pw@" not in str(error) and "not sealed" not in str(error)


def test_a_test_names_a_domain_never_an_address(app: OnboardingApplication, org: UUID) -> None:
    app.configure_sso(organization_id=org, **configuration())
    error = assert_refused(
        app,
        InvalidCommand,
        app.record_sso_test,
        organization_id=org,
        generation=1,
        subject=SUBJECT,
        email_domain="ada@acme.example",
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["email_domain"]


# --- any sequence: a reference model, replay, deterministic ids ------------------------

ORG_SLUG = "acme"
CONFIGS = [configuration(client_id=f"client-{n}", client_secret=f"k1:S{n}") for n in range(3)]
steps = st.one_of(
    st.tuples(st.just("configure_sso"), st.sampled_from(CONFIGS)),
    st.tuples(
        st.just("record_sso_test"),
        st.builds(
            lambda g: {"generation": g, "subject": SUBJECT, "email_domain": "acme.example"},
            st.integers(1, 6),
        ),
    ),
    st.tuples(st.just("activate_sso"), st.builds(lambda g: {"generation": g}, st.integers(1, 6))),
    st.tuples(
        st.just("abandon_sso_configuration"),
        st.builds(lambda g: {"generation": g, "reason": "failed"}, st.integers(1, 6)),
    ),
    st.tuples(st.just("deactivate_sso"), st.just({"reason": "off"})),
)


class Reference:
    """What the rules say, written plainly: (generation, config) pending and active."""

    def __init__(self) -> None:
        self.generation = 0
        self.pending: tuple[int, dict[str, Any], bool] | None = None  # (gen, config, tested)
        self.active: tuple[int, dict[str, Any]] | None = None

    def apply(self, method: str, fields: dict[str, Any]) -> str:
        generation = fields.get("generation")
        if method == "configure_sso":
            if self.generation == 0:
                self.generation, self.pending = 1, (1, fields, False)
            elif (self.pending and self.pending[1] == fields) or (
                self.pending is None and self.active and self.active[1] == fields
            ):
                pass
            else:
                self.generation += 1
                self.pending = (self.generation, fields, False)
            return "ok"
        if self.generation == 0:
            return "SSOConnectionNotFound"
        if method == "record_sso_test":
            if self.pending and self.pending[0] == generation:
                self.pending = (self.pending[0], self.pending[1], True)
            elif not (self.active and self.active[0] == generation):
                return "SSOConfigurationNotPending"
        elif method == "activate_sso":
            if self.active and self.active[0] == generation:
                return "ok"
            if not (self.pending and self.pending[0] == generation):
                return "SSOConfigurationNotPending"
            if not self.pending[2]:
                return "SSONotTested"
            self.active, self.pending = (self.pending[0], self.pending[1]), None
        elif method == "abandon_sso_configuration":
            if self.pending and self.pending[0] == generation:
                self.pending = None
        elif method == "deactivate_sso":
            self.active = None
        return "ok"


def _run(path: Path, sequence: list[tuple[str, dict[str, Any]]]) -> tuple[Any, ...]:
    store = sqlite_store(str(path))
    try:
        app = store.open(FakeClock())
        org = app.register_organization(**org_fields(slug=ORG_SLUG)).id
        reference = Reference()
        for method, fields in sequence:
            expected = reference.apply(method, fields)
            before = notification_count(app)
            try:
                view = getattr(app, method)(organization_id=org, **fields)
            except A4CError as exc:
                assert notification_count(app) == before  # a refusal stores nothing
                assert type(exc).__name__ == expected
                continue
            assert expected == "ok"
            assert (view.position is None) == (notification_count(app) == before)
            active = reference.active
            assert view.active_generation == (active and active[0])
            assert view.active_client_id == (active and active[1]["client_id"])
            pending = reference.pending
            assert view.pending_generation == (pending and pending[0])
            assert view.pending_tested == bool(pending and pending[2])
        state = None
        if reference.generation:
            state = without_position(app.get_sso_connection(org))
            reopened = store.open(FakeClock())
            assert without_position(reopened.get_sso_connection(org)) == state
        fingerprint = [(e.originator_id, e.event_id, type(e).__qualname__) for e in events(app)]
        strip = {"created_on", "modified_on"}
        return fingerprint, state and {k: v for k, v in state.items() if k not in strip}
    finally:
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(steps, max_size=12))
def test_any_sequence_follows_the_rules_and_replays_to_the_same_state_and_ids(
    sequence: list[tuple[str, dict[str, Any]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = _run(Path(tmp) / "one.sqlite", sequence)
        second = _run(Path(tmp) / "two.sqlite", sequence)
    assert first == second


def test_the_worker_reads_a_configurations_client_with_its_sealed_secret_only_by_generation(
    app: OnboardingApplication, org: UUID
) -> None:
    with pytest.raises(SSOConnectionNotFound):
        app.get_sso_client_credentials(org, 1)
    _activate_first(app, org)
    app.configure_sso(organization_id=org, **configuration(client_secret="k1:SEALED-2"))
    active = app.get_sso_client_credentials(org)  # None: the one in force
    tried = app.get_sso_client_credentials(org, 2)
    assert (active.generation, active.sealed_client_secret) == (1, "k1:SEALED-1")
    assert (tried.generation, tried.issuer, tried.sealed_client_secret) == (
        2,
        ISSUER,
        "k1:SEALED-2",
    )
    assert "SEALED" not in repr(tried)  # a credentials object may end up in a log line
    with pytest.raises(SSOConfigurationNotPending):
        app.get_sso_client_credentials(org, 3)
    # The views callers get never hold it.
    assert "SEALED" not in repr(app.get_sso_connection(org))
