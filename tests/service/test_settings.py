"""One settings loader for every process (a4c_service.settings): the mapping only, every
mistake by variable, never the value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr, field_validator

from a4c_api.settings import load_settings as load_api
from a4c_domain.errors import ConfigurationError
from a4c_projector.settings import load_settings as load_projector
from a4c_service.settings import SettingsError, lowercase, read_settings, uppercase
from a4c_webhooks.settings import load_settings as load_webhooks
from a4c_worker.config import load_settings as load_worker


class Example(BaseModel):
    port: int = Field(default=80, ge=1)
    token: SecretStr | None = None
    extra: dict[str, str] = Field(default_factory=dict)


def test_only_the_mapping_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8080")
    assert read_settings(Example, {}).port == 80
    assert read_settings(Example, {"PORT": "81"}).port == 81


def test_every_mistake_is_named_by_its_variable_without_its_value() -> None:
    with pytest.raises(SettingsError) as caught:
        read_settings(
            Example,
            {"APP_PORT": "0", "APP_TOKEN": "", "PORT": "1"},
            variable=lambda field: f"APP_{field.upper()}",
        )
    assert caught.value.problems == [("APP_PORT", "must be greater than or equal to 1")]
    assert isinstance(caught.value, ConfigurationError)


def test_empty_values_are_unset_when_asked_and_derived_fields_come_from_no_variable() -> None:
    environ = {"PORT": "", "EXTRA": "from a variable"}
    with pytest.raises(SettingsError) as caught:
        read_settings(Example, environ)
    assert caught.value.variables == ["PORT", "EXTRA"]
    settings = read_settings(Example, environ, empty_is_unset=True, derived={"extra": {"a": "b"}})
    assert (settings.port, settings.extra) == (80, {"a": "b"})


LOADERS: dict[str, tuple[Callable[[Mapping[str, str]], Any], dict[str, str], str]] = {
    "projector": (load_projector, {"PROJECTOR_BATCH_SIZE": "lots"}, "PROJECTOR_BATCH_SIZE"),
    "api": (load_api, {"API_MODE": "development", "API_PORT": "lots"}, "API_PORT"),
    "worker": (load_worker, {"WORKFLOW_MODE": "mock", "HEALTH_PORT": "lots"}, "HEALTH_PORT"),
}


@pytest.mark.parametrize("process", sorted(LOADERS))
def test_every_process_reports_its_settings_the_same_way(process: str) -> None:
    load, environ, variable = LOADERS[process]
    with pytest.raises(SettingsError) as caught:
        load(environ | {"LOG_FORMAT": "xml"})
    assert caught.value.problems == [
        (variable, "must be a valid integer, unable to parse string as an integer"),
        ("LOG_FORMAT", "must be 'json' or 'text'"),
    ]
    assert "lots" not in str(caught.value) and "xml" not in str(caught.value)


CHOICES: dict[str, tuple[Callable[[Mapping[str, str]], Any], dict[str, str], str, str]] = {
    "projector": (load_projector, {"PROJECTOR_LOG_LEVEL": " warning "}, "log_level", "WARNING"),
    "api": (load_api, {"API_MODE": " Development "}, "api_mode", "development"),
    "webhooks": (
        load_webhooks,
        {"WEBHOOK_SECRET_KEYS": "k1:" + "A" * 43 + "=", "WEBHOOKS_MODE": "DEVELOPMENT"},
        "webhooks_mode",
        "development",
    ),
}


@pytest.mark.parametrize("process", sorted(CHOICES))
def test_a_choice_is_read_in_any_case_blanks_around_it_ignored(process: str) -> None:
    """Each process folds its choices with the same validators (Lowercase, Uppercase)."""
    load, environ, field, expected = CHOICES[process]
    settings = load(environ | {"LOG_FORMAT": " TEXT"})
    assert (getattr(settings, field), settings.log_format) == (expected, "text")


class Folded(BaseModel):
    mode: Literal["on", "off"] = "off"
    level: Literal["INFO", "DEBUG"] = "INFO"
    port: int = 80

    _lowercase = field_validator("mode", "port", mode="before")(lowercase)
    _uppercase = field_validator("level", mode="before")(uppercase)


class Reordered(BaseModel):
    """The same choices as Folded's in another order: its messages keep its order."""

    mode: Literal["off", "on"] = "off"

    _lowercase = field_validator("mode", mode="before")(lowercase)


def test_lowercase_and_uppercase_fold_text_only() -> None:
    settings = read_settings(Folded, {"MODE": " On", "LEVEL": "debug ", "PORT": "81"})
    assert (settings.mode, settings.level, settings.port) == ("on", "DEBUG", 81)
    assert Folded.model_validate({"port": 82}).port == 82  # not text: left as it is
    for model, message in ((Folded, "must be 'on' or 'off'"), (Reordered, "must be 'off' or 'on'")):
        with pytest.raises(SettingsError) as caught:
            read_settings(model, {"MODE": "maybe"})
        assert caught.value.problems == [("MODE", message)]


@pytest.mark.parametrize("process", ["api", "webhooks"])
def test_the_api_and_the_daemon_read_the_webhook_key_ring_alike(process: str) -> None:
    """One rule for ``WEBHOOK_SECRET_KEYS`` (a4c_webhooks.settings.SecretKeysText): a ring
    that opens, its mistakes named by key id, never by key."""
    load, environ = (
        (load_api, {"API_MODE": "development"})
        if process == "api"
        else (
            load_webhooks,
            {},
        )
    )
    with pytest.raises(SettingsError) as caught:
        load(environ | {"WEBHOOK_SECRET_KEYS": "k1:not-base64!"})
    assert caught.value.problems == [("WEBHOOK_SECRET_KEYS", "key 'k1' is not base64")]
    assert "not-base64" not in str(caught.value)
    ring = load(environ | {"WEBHOOK_SECRET_KEYS": "k1:" + "A" * 43 + "="}).webhook_secret_keys
    assert ring is not None and ring.get_secret_value().startswith("k1:")


def test_each_process_names_its_own_choices_in_its_own_order() -> None:
    """The API's and the daemon's modes are the same two values in another order."""
    with pytest.raises(SettingsError) as api:
        load_api({"API_MODE": "staging"})
    keys = "k1:" + "A" * 43 + "="
    with pytest.raises(SettingsError) as webhooks:
        load_webhooks({"WEBHOOK_SECRET_KEYS": keys, "WEBHOOKS_MODE": "staging"})
    assert ("API_MODE", "must be 'development' or 'production'") in api.value.problems
    assert webhooks.value.problems == [("WEBHOOKS_MODE", "must be 'production' or 'development'")]
