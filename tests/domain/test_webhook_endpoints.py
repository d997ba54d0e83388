"""Webhook endpoint commands: create (again: a no-op, deleted: reinstated), conflict,
change, rotate, disable, enable, delete; scope isolation; refusals naming each field;
and any sequence of commands replaying to the same state with the same ids."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from a4c_domain import (
    ALL_ORGANIZATIONS,
    OnboardingApplication,
    WebhookEndpoint,
    WebhookEndpointView,
    webhook_endpoint_id,
)
from a4c_domain.errors import (
    A4CError,
    InvalidCommand,
    InvalidScope,
    WebhookEndpointConflict,
    WebhookEndpointDeleted,
    WebhookEndpointNotFound,
)
from a4c_domain.public_events import PUBLIC_EVENT_TYPES
from a4c_domain.webhook_command_models import Description, EndpointName, EventTypes, WebhookURL
from tests.domain.support import (
    T0,
    FakeClock,
    assert_noop,
    assert_refused,
    events,
    notification_count,
    sqlite_store,
    without_position,
)

ACME = UUID("00000000-0000-4000-8000-000000000001")
OTHER = UUID("00000000-0000-4000-8000-000000000002")
TYPES = sorted(PUBLIC_EVENT_TYPES)


def endpoint_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "owner_id": ACME,
        "name": "billing",
        "url": "https://hooks.example.com/a4c",
        "event_types": [TYPES[1], TYPES[0]],
        "organization_id": None,
        "description": "Billing sync",
        "secret": "k1:AAAA",
    }
    fields.update(overrides)
    return fields


def settings_of(view: WebhookEndpointView) -> dict[str, Any]:
    return {
        "url": view.url,
        "event_types": None if view.event_types is None else list(view.event_types),
        "organization_id": view.organization_id,
        "description": view.description,
    }


@pytest.fixture
def added(app: OnboardingApplication) -> WebhookEndpointView:
    return app.add_webhook_endpoint(**endpoint_fields())


def _stored(app: OnboardingApplication, endpoint_id: UUID) -> WebhookEndpoint:
    endpoint: object = app.repository.get(endpoint_id)
    assert isinstance(endpoint, WebhookEndpoint)
    return endpoint


# --- create, no-op, conflict, reinstate ---------------------------------------------------


def test_add_records_the_endpoint_under_its_deterministic_id(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    assert added.id == webhook_endpoint_id(ACME, "billing")
    assert added.position is not None
    assert added.owner_id == ACME
    assert added.event_types == tuple(TYPES[:2])  # sorted
    assert added.organization_id == ACME  # an organization's endpoint: its own events
    assert (added.status, added.version, added.disabled_reason) == ("enabled", 1, None)
    assert not hasattr(added, "secret") and "k1:AAAA" not in repr(added)
    assert _stored(app, added.id).secret == "k1:AAAA"  # sealed text, as given
    assert app.get_webhook_endpoint(ACME, added.id) == added.model_copy(update={"position": None})


def test_platform_endpoints_have_ids_of_their_own(app: OnboardingApplication) -> None:
    platform = app.add_webhook_endpoint(**endpoint_fields(owner_id=None, organization_id=OTHER))
    assert (
        platform.id == webhook_endpoint_id(None, "billing") != webhook_endpoint_id(ACME, "billing")
    )
    assert platform.organization_id == OTHER
    everything = app.add_webhook_endpoint(**endpoint_fields(owner_id=None, name="all"))
    assert everything.organization_id is None


def test_the_same_add_again_is_a_no_op_whatever_the_secret(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    fields = endpoint_fields(secret="k1:BBBB", event_types=[TYPES[0], TYPES[1], TYPES[0]])
    assert_noop(app, app.add_webhook_endpoint, added, **fields)
    assert _stored(app, added.id).secret == "k1:AAAA"  # the first secret stands
    # Given as its owner (organization_id = owner) is the same setting too.
    assert_noop(app, app.add_webhook_endpoint, added, **endpoint_fields(organization_id=ACME))


def test_add_with_other_settings_is_a_conflict_naming_them(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    error = assert_refused(
        app,
        WebhookEndpointConflict,
        app.add_webhook_endpoint,
        **endpoint_fields(url="https://elsewhere.example.com/", event_types=None),
    )
    assert isinstance(error, WebhookEndpointConflict)
    assert sorted(error.differences) == ["event_types", "url"]
    assert "k1:" not in str(error)


def test_a_deleted_endpoint_is_reinstated_by_adding_it_again(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    app.disable_webhook_endpoint(scope=ACME, endpoint_id=added.id, reason="paused")
    deleted = app.delete_webhook_endpoint(scope=ACME, endpoint_id=added.id)
    assert deleted.status == "deleted"
    back = app.add_webhook_endpoint(
        **endpoint_fields(url="https://new.example.com/", secret="k1:C")
    )
    assert back.id == added.id and back.position is not None
    assert (back.status, back.url, back.disabled_reason) == (
        "enabled",
        "https://new.example.com/",
        None,
    )
    stored = _stored(app, added.id)
    assert (stored.secret, stored.previous_secret) == ("k1:C", None)
    assert type(events(app)[-1]).__name__ == "Reinstated"


# --- change, rotate, disable, enable, delete ------------------------------------------------


def test_change_replaces_the_settings_and_the_same_change_is_a_no_op(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    new: dict[str, Any] = {
        "url": "http://hooks.example.com:8080/v2?x=1",
        "event_types": None,
        "organization_id": None,
        "description": "  all of them  ",
    }
    changed = app.change_webhook_endpoint(scope=ACME, endpoint_id=added.id, **new)
    assert changed.position is not None and changed.version == 2
    assert settings_of(changed) == {**new, "organization_id": ACME, "description": "all of them"}
    assert_noop(app, app.change_webhook_endpoint, changed, scope=ACME, endpoint_id=added.id, **new)


def test_an_organizations_endpoint_filters_on_no_other_organization(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    error = assert_refused(
        app,
        InvalidCommand,
        app.change_webhook_endpoint,
        scope=ALL_ORGANIZATIONS,
        endpoint_id=added.id,
        **{**settings_of(added), "organization_id": OTHER},
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["organization_id"]


def test_rotate_keeps_the_previous_secret_and_again_is_a_no_op(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    until = T0 + timedelta(hours=24)
    fields: dict[str, Any] = {
        "scope": ACME,
        "endpoint_id": added.id,
        "secret": "k1:NEW",
        "previous_secret_expires_at": until,
    }
    rotated = app.rotate_webhook_secret(**fields)
    assert rotated.position is not None
    stored = _stored(app, added.id)
    assert (stored.secret, stored.previous_secret, stored.previous_secret_expires_at) == (
        "k1:NEW",
        "k1:AAAA",
        until,
    )
    assert_noop(app, app.rotate_webhook_secret, rotated, **fields)


def test_disable_enable_delete_and_their_repeats(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    target: dict[str, Any] = {"scope": ALL_ORGANIZATIONS, "endpoint_id": added.id}
    off = app.disable_webhook_endpoint(**target, reason="410 Gone", automatic=True)
    assert (off.status, off.disabled_reason, off.disabled_automatically) == (
        "disabled",
        "410 Gone",
        True,
    )
    assert_noop(app, app.disable_webhook_endpoint, off, **target, reason="another reason")
    on = app.enable_webhook_endpoint(**target)
    assert (on.status, on.disabled_reason, on.disabled_automatically) == ("enabled", None, False)
    assert_noop(app, app.enable_webhook_endpoint, on, **target)
    gone = app.delete_webhook_endpoint(**target)
    assert gone.status == "deleted"
    assert_noop(app, app.delete_webhook_endpoint, gone, **target)
    for refused, extra in (
        (app.enable_webhook_endpoint, {}),
        (app.disable_webhook_endpoint, {"reason": "x"}),
        (app.rotate_webhook_secret, {"secret": "k1:Z", "previous_secret_expires_at": T0}),
        (app.change_webhook_endpoint, settings_of(added)),
    ):
        assert_refused(app, WebhookEndpointDeleted, refused, **target, **extra)
    assert app.get_webhook_endpoint(ALL_ORGANIZATIONS, added.id).status == "deleted"


# --- scope ------------------------------------------------------------------------------


def _not_found_text(app: OnboardingApplication, scope: Any, endpoint_id: UUID) -> str:
    with pytest.raises(WebhookEndpointNotFound) as info:
        app.get_webhook_endpoint(scope, endpoint_id)
    return str(info.value)


def test_out_of_scope_is_exactly_not_found(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    platform = app.add_webhook_endpoint(**endpoint_fields(owner_id=None, name="ops"))
    never = webhook_endpoint_id(OTHER, "billing")
    # Another organization's endpoint, and the platform's, read as one never created.
    for scope, endpoint_id in ((OTHER, added.id), (ACME, platform.id)):
        text = _not_found_text(app, scope, endpoint_id)
        assert text == str(WebhookEndpointNotFound(endpoint_id))
        assert text.replace(str(endpoint_id), str(never)) == _not_found_text(app, scope, never)
    calls: list[tuple[Any, dict[str, Any]]] = [
        (app.change_webhook_endpoint, settings_of(added)),
        (app.rotate_webhook_secret, {"secret": "k1:X", "previous_secret_expires_at": T0}),
        (app.disable_webhook_endpoint, {"reason": "x"}),
        (app.enable_webhook_endpoint, {}),
        (app.delete_webhook_endpoint, {}),
    ]
    for call, extra in calls:
        error = assert_refused(
            app, WebhookEndpointNotFound, call, scope=OTHER, endpoint_id=added.id, **extra
        )
        assert str(error) == str(WebhookEndpointNotFound(added.id))
    # A caller that forgot its scope is refused, never widened to every organization.
    with pytest.raises(InvalidScope):
        app.get_webhook_endpoint(None, added.id)  # type: ignore[arg-type]
    refused = assert_refused(
        app,
        InvalidCommand,
        app.enable_webhook_endpoint,
        scope="all organizations",
        endpoint_id=added.id,
    )
    assert isinstance(refused, InvalidCommand) and refused.fields[0].startswith("scope")


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"name": "Billing"}, ["name"]),
        ({"name": "-x"}, ["name"]),
        ({"name": "a" * 64}, ["name"]),
        ({"url": "ftp://example.com/"}, ["url"]),
        ({"url": "https:/example.com"}, ["url"]),
        ({"url": "https://user:pw@example.com/"}, ["url"]),
        ({"url": "https://example.com/#frag"}, ["url"]),
        ({"url": "https://example.com:99999/"}, ["url"]),
        ({"url": "https://exa mple.com/"}, ["url"]),
        ({"url": "https://例え.jp/"}, ["url"]),
        ({"url": "https://example.com/" + "a" * 2048}, ["url"]),
        ({"event_types": []}, ["event_types"]),
        ({"event_types": ["organization.nope"]}, ["event_types"]),
        ({"description": "x" * 501}, ["description"]),
        ({"description": "a\x00b"}, ["description"]),
        ({"secret": ""}, ["secret"]),
        ({"secret": "k1:\nAAAA"}, ["secret"]),
        ({"secret": "k" * 513}, ["secret"]),
        ({"organization_id": OTHER}, ["organization_id"]),
        (
            {"name": "", "url": "nope", "event_types": "x", "secret": None},
            ["event_types", "name", "secret", "url"],
        ),
    ],
)
def test_bad_input_is_refused_naming_each_field(
    app: OnboardingApplication, overrides: dict[str, Any], fields: list[str]
) -> None:
    error = assert_refused(
        app, InvalidCommand, app.add_webhook_endpoint, **endpoint_fields(**overrides)
    )
    assert isinstance(error, InvalidCommand)
    assert sorted({f.split(".")[0] for f in error.fields}) == fields
    assert "k1:" not in str(error) and "pw@" not in str(error)


def test_missing_and_unknown_keywords_are_refused_like_bad_input(
    app: OnboardingApplication, added: WebhookEndpointView
) -> None:
    fields = endpoint_fields(color="red")
    del fields["secret"]
    error = assert_refused(app, InvalidCommand, app.add_webhook_endpoint, **fields)
    assert isinstance(error, InvalidCommand) and sorted(error.fields) == ["color", "secret"]
    naive = T0.replace(tzinfo=None)
    error = assert_refused(
        app,
        InvalidCommand,
        app.rotate_webhook_secret,
        scope=ACME,
        endpoint_id=added.id,
        secret="k1:X",
        previous_secret_expires_at=naive,
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["previous_secret_expires_at"]
    error = assert_refused(
        app,
        InvalidCommand,
        app.disable_webhook_endpoint,
        scope=ACME,
        endpoint_id=added.id,
        reason=" ",
    )
    assert isinstance(error, InvalidCommand) and error.fields == ["reason"]


# --- property: any sequence replays to the same state, with the same ids -----------------

NAMES = ["a", "b"]
OWNERS: list[UUID | None] = [ACME, None]
URLS = ["https://one.example.com/", "http://two.example.com:8080/x"]
SCOPES: list[Any] = [ACME, OTHER, ALL_ORGANIZATIONS]


steps = st.one_of(
    st.builds(
        lambda owner, name, url, types, secret: (
            "add_webhook_endpoint",
            endpoint_fields(owner_id=owner, name=name, url=url, event_types=types, secret=secret),
        ),
        st.sampled_from(OWNERS),
        st.sampled_from(NAMES),
        st.sampled_from(URLS),
        st.sampled_from([None, TYPES[:1], TYPES[:3]]),
        st.sampled_from(["k1:A", "k1:B"]),
    ),
    st.tuples(
        st.just("change_webhook_endpoint"),
        st.builds(
            lambda owner, name, scope, url: {
                "scope": scope,
                "endpoint_id": webhook_endpoint_id(owner, name),
                "url": url,
                "event_types": None,
                "organization_id": None,
                "description": "",
            },
            st.sampled_from(OWNERS),
            st.sampled_from(NAMES),
            st.sampled_from(SCOPES),
            st.sampled_from(URLS),
        ),
    ),
    *(
        st.tuples(
            st.just(method),
            st.builds(
                lambda owner, name, scope, extra=extra: {
                    "scope": scope,
                    "endpoint_id": webhook_endpoint_id(owner, name),
                    **extra,
                },
                st.sampled_from(OWNERS),
                st.sampled_from(NAMES),
                st.sampled_from(SCOPES),
            ),
        )
        for method, extra in (
            ("rotate_webhook_secret", {"secret": "k1:R", "previous_secret_expires_at": T0}),
            ("disable_webhook_endpoint", {"reason": "failing", "automatic": True}),
            ("enable_webhook_endpoint", {}),
            ("delete_webhook_endpoint", {}),
        )
    ),
)


def _run(path: Path, sequence: list[tuple[str, dict[str, Any]]]) -> tuple[list[str], Any]:
    store = sqlite_store(str(path))
    try:
        app = store.open(FakeClock())
        outcomes: list[str] = []
        views: dict[UUID, WebhookEndpointView] = {}
        for method, fields in sequence:
            before = notification_count(app)
            try:
                view = getattr(app, method)(**fields)
            except A4CError as exc:
                assert notification_count(app) == before  # a refusal stores nothing
                outcomes.append(type(exc).__name__)
                continue
            assert (view.position is None) == (notification_count(app) == before)
            views[view.id] = view
            outcomes.append("ok")
        live = {k: without_position(v) for k, v in views.items()}
        reopened = store.open(FakeClock())
        replayed = {
            k: without_position(reopened.get_webhook_endpoint(ALL_ORGANIZATIONS, k)) for k in views
        }
        assert replayed == live
        for method, fields in sequence:  # every command again: each is applied or refused
            count = notification_count(reopened)
            try:
                getattr(reopened, method)(**fields)
            except A4CError:
                assert notification_count(reopened) == count
        fingerprint = [(e.originator_id, e.event_id, type(e).__qualname__) for e in events(app)]
        return outcomes, (live, fingerprint)
    finally:
        store.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(steps, max_size=12))
def test_any_sequence_replays_to_the_same_state_and_ids(
    sequence: list[tuple[str, dict[str, Any]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        first = _run(Path(tmp) / "one.sqlite", sequence)
        second = _run(Path(tmp) / "two.sqlite", sequence)
    assert first[0] == second[0]
    (live_one, ids_one), (live_two, ids_two) = first[1], second[1]
    assert ids_one == ids_two  # deterministic aggregate and event ids
    strip = {"created_on", "modified_on"}
    assert [{k: v for k, v in view.items() if k not in strip} for view in live_one.values()] == [
        {k: v for k, v in view.items() if k not in strip} for view in live_two.values()
    ]


def test_unknown_ids_are_not_found(app: OnboardingApplication) -> None:
    assert_refused(
        app,
        WebhookEndpointNotFound,
        app.enable_webhook_endpoint,
        scope=ALL_ORGANIZATIONS,
        endpoint_id=uuid4(),
    )


# --- the JSON Schema of each field says exactly what its validator accepts ------------

URL_PARTS = "hHtTpPsS:/?#@[]%.-_~!$'\"\\ \t\n\x00é0123456789abcXYZ"
urls = st.one_of(
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                ["https://", "http://", "HTTPS://", "ftp://", "https:/", "h.example.com", "[::1]",
                 ":443", ":65535", ":65536", ":0080", ":", "/", "/p?q=1", "?x", "#f", "u:p@",
                 "@", "é", " ", "%41", "\\", "\n"]
            ),
            max_size=6,
        ),
    ),
    st.text(alphabet=URL_PARTS, max_size=30),
    st.just("https://a.example/" + "x" * 2031),
    st.just("https://a.example/" + "x" * 2030),
)  # fmt: skip
names = st.one_of(st.from_regex(r"\A[a-z0-9-]{1,64}\Z"), st.text(max_size=8))
# Only code points this Python's Unicode tables know (as tests/domain/test_command_schemas
# does): one unassigned here may be a letter to the schema's newer regex tables (U+31350).
descriptions = st.one_of(
    st.text(alphabet=" \t\n\x00\x85\u200babc", max_size=8),
    st.text(st.characters(exclude_categories=("Cn", "Cs")), max_size=8),
    st.text(alphabet="ab ", min_size=495, max_size=505),
)
type_lists = st.lists(st.sampled_from([*TYPES[:3], "nope", ""]), max_size=len(TYPES) + 1)


def _verdicts(field_type: Any, value: Any) -> tuple[bool, bool]:
    adapter: TypeAdapter[Any] = TypeAdapter(field_type)
    allowed = jsonschema_rs.validator_for(adapter.json_schema(), validate_formats=True).is_valid(
        value
    )
    try:
        adapter.validate_python(value)
    except ValidationError:
        return allowed, False
    return allowed, True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url=urls, name=names, description=descriptions, types=type_lists)
def test_field_schemas_agree_with_their_validators(
    url: str, name: str, description: str, types: list[str]
) -> None:
    for field_type, value in (
        (WebhookURL, url),
        (EndpointName, name),
        (Description, description),
        (EventTypes, types),
    ):
        allowed, accepted = _verdicts(field_type, value)
        assert allowed == accepted, (field_type, value)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com",
        "http://127.0.0.1:8080/x?y=1",
        "HTTPS://[::1]:443/",
        "https://a.example:65535?q",
    ],
)
def test_urls_that_pass(url: str) -> None:
    assert _verdicts(WebhookURL, url) == (True, True)
