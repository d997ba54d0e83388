"""One settings loader for every process (a4c_service.settings): the mapping only, every
mistake by variable, never the value."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from pydantic import BaseModel, Field, SecretStr

from a4c_api.settings import load_settings as load_api
from a4c_domain.errors import ConfigurationError
from a4c_projector.settings import load_settings as load_projector
from a4c_service.settings import SettingsError, read_settings
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
