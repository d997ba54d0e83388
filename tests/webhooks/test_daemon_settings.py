"""a4c-webhooks configuration: what is required, how durations read, what the outbound
policy follows from; a wrong setting exits 2 naming the variable, never a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from a4c_service.settings import SettingsError
from a4c_webhooks.schedule import DEFAULT_SCHEDULE
from a4c_webhooks.settings import DEFAULT_DISABLE_AFTER, load_settings
from a4c_worker.codec import PayloadKeys
from tests.webhooks.delivery_support import World, run_cli, secret_keys_text


def test_defaults_and_durations() -> None:
    keys = secret_keys_text()
    settings = load_settings({"WEBHOOK_SECRET_KEYS": keys})
    assert settings.webhook_retry_schedule == DEFAULT_SCHEDULE
    assert settings.webhook_disable_after == DEFAULT_DISABLE_AFTER == 5 * 86400
    assert settings.webhook_concurrency == 16
    policy = settings.outbound_policy
    assert (policy.allow_http, policy.allow_private, policy.timeout) == (False, False, 15.0)
    assert settings.secret_keys.ids == ["k1"]
    assert keys.split(":")[1] not in repr(settings)

    tuned = load_settings(
        {
            "WEBHOOK_SECRET_KEYS": keys,
            "WEBHOOKS_MODE": "Development",
            "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
            "WEBHOOK_RETRY_SCHEDULE": "0, 5s, 5m, 2h",
            "WEBHOOK_DISABLE_AFTER": "36h",
            "WEBHOOK_CONCURRENCY": "4",
        }
    )
    assert tuned.webhook_retry_schedule == (0, 5, 300, 7200)
    assert tuned.webhook_disable_after == 36 * 3600
    assert tuned.outbound_policy.allow_http and tuned.outbound_policy.allow_private
    assert tuned.webhook_concurrency == 4


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({}, "WEBHOOK_SECRET_KEYS"),
        ({"WEBHOOK_SECRET_KEYS": "plain"}, "WEBHOOK_SECRET_KEYS"),
        ({"WEBHOOK_RETRY_SCHEDULE": "0,soon"}, "WEBHOOK_RETRY_SCHEDULE"),
        ({"WEBHOOK_DISABLE_AFTER": "1d,2d"}, "WEBHOOK_DISABLE_AFTER"),
        ({"WEBHOOK_CONCURRENCY": "0"}, "WEBHOOK_CONCURRENCY"),
        ({"WEBHOOK_MAX_IN_FLIGHT_PER_OWNER": "0"}, "WEBHOOK_MAX_IN_FLIGHT_PER_OWNER"),
        ({"WEBHOOKS_MODE": "staging"}, "WEBHOOKS_MODE"),
    ],
)
def test_a_wrong_setting_names_its_variable(environ: dict[str, str], variable: str) -> None:
    full = {"WEBHOOK_SECRET_KEYS": secret_keys_text(), **environ}
    if not environ:
        full = {}
    with pytest.raises(SettingsError) as info:
        load_settings(full)
    assert info.value.variables == [variable]


def test_the_command_exits_2_naming_the_variable_and_never_the_key(world: World) -> None:
    key = "k1:" + "QUJD" * 3  # too short to be a key: refused
    code, _, err = run_cli({**world.env(), "WEBHOOK_SECRET_KEYS": key}, "streams")
    assert code == 2
    assert "WEBHOOK_SECRET_KEYS" in err and "QUJD" not in err
    code, _, err = run_cli({**world.env(), "WEBHOOK_RETRY_SCHEDULE": "never"}, "streams")
    assert code == 2 and "WEBHOOK_RETRY_SCHEDULE" in err


def test_sqlite_is_refused(tmp_path: Path) -> None:
    env = {
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        "WEBHOOK_SECRET_KEYS": secret_keys_text(),
    }
    code, _, err = run_cli(env, "streams")
    assert code == 2 and "PostgreSQL" in err


def test_streams_lists_nothing_on_a_healthy_store(world: World) -> None:
    code, _, err = run_cli(world.env(), "streams")
    assert code == 2 and "start a4c-projector first" in err  # no read models yet
    world.project()
    code, out, err = run_cli(world.env(), "streams")
    assert code == 0, err
    assert out.splitlines()[0].split() == [
        "state",
        "endpoint",
        "name",
        "organization",
        "since",
        "pending",
        "head",
        "attempts",
        "last",
    ]
    code, out, _ = run_cli(world.env(), "streams", "--format", "json")
    assert code == 0 and out.strip() == "[]"


def test_production_needs_the_payload_keys_development_does_not() -> None:
    """A disable's workflow input holds the organization's admins' addresses: in
    production they go to Temporal sealed, or the daemon does not start."""
    base = {"WEBHOOK_SECRET_KEYS": secret_keys_text()}
    assert [v for v, _ in load_settings(base).problems()] == ["TEMPORAL_PAYLOAD_KEYS"]
    development = load_settings({**base, "WEBHOOKS_MODE": "development"})
    assert development.problems() == []
    sealed = load_settings({**base, "TEMPORAL_PAYLOAD_KEYS": PayloadKeys.generate("p1").entry()})
    assert sealed.problems() == []


def test_run_refuses_production_without_payload_keys(world: World) -> None:
    env = {k: v for k, v in world.env().items() if k != "TEMPORAL_PAYLOAD_KEYS"}
    code, _, err = run_cli({**env, "WEBHOOKS_MODE": "production"}, "run")
    assert code == 2
    assert "TEMPORAL_PAYLOAD_KEYS" in err
