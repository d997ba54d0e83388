""".env.example lists every variable of every process, once, with its default.

The expected list is derived, never written down here: every field of WorkerSettings,
ProjectorSettings and ApiSettings (by the name its ``load_settings`` reads), every
event-store variable eventsourcing's factories declare, and the tool's data folder. A
field with a default is set to it (checked by loading the file through each process's
own ``load_settings`` and comparing with the class's defaults, so ``30`` and ``30.0``
agree); a field without one is a commented ``# NAME=``. A failure prints the lines to
add.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from a4c_api.settings import ApiSettings
from a4c_api.settings import load_settings as load_api
from a4c_domain.persistence import FLAG_DEFAULTS, SESSION_ATTRS_VAR, is_store_variable
from a4c_projector.settings import ProjectorSettings
from a4c_projector.settings import load_settings as load_projector
from a4c_service.logs import LOG_FORMAT_VAR
from a4c_tool.cli import DATA_DIR_VAR
from a4c_webhooks.settings import WebhookSettings
from a4c_webhooks.settings import load_settings as load_webhooks
from a4c_worker.codec import PayloadKeys
from a4c_worker.codec_server import CodecServerSettings
from a4c_worker.config import WorkerSettings
from a4c_worker.config import load_settings as load_worker

EXAMPLE = Path(__file__).resolve().parents[1] / ".env.example"
# "NAME=value" (set) or "# NAME=value" (unset); prose comments never start with NAME=.
LINE = re.compile(r"^(?P<unset># )?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")
# Not a variable: the worker's other store variables, gathered from the environment.
NOT_VARIABLES = {"persistence_extra"}


def variables(cls: type[BaseSettings]) -> Iterator[tuple[str, str]]:
    """(variable, field) for each field of ``cls``, by the name its load_settings reads."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    for field in cls.model_fields:
        if field in NOT_VARIABLES:
            continue
        # LOG_FORMAT is shared: the projector and the API read it without a prefix.
        name = LOG_FORMAT_VAR if field == "log_format" else f"{prefix}{field.upper()}"
        yield name, field


SETTINGS: tuple[type[BaseSettings], ...] = (
    WorkerSettings,
    ProjectorSettings,
    ApiSettings,
    CodecServerSettings,
    WebhookSettings,
)


def store_variables() -> set[str]:
    """Every event-store variable eventsourcing's factories (and its cipher) declare,
    and the one a4c adds (a4c_domain.persistence)."""
    declared: set[str] = {AESCipher.CIPHER_KEY, SESSION_ATTRS_VAR}
    for factory in (InfrastructureFactory, PostgresFactory, SQLiteFactory):
        for attribute in dir(factory):
            value = getattr(factory, attribute)
            if attribute.isupper() and isinstance(value, str) and is_store_variable(value):
                declared.add(value)
    return declared


def example() -> dict[str, tuple[bool, str]]:
    """Each variable of .env.example: (set, value), the value as a shell reads it."""
    found: dict[str, tuple[bool, str]] = {}
    for row in EXAMPLE.read_text().splitlines():
        match = LINE.match(row)
        if match is None:
            continue
        name = match["name"]
        assert name not in found, f"{name} is listed twice"
        value = shlex.split(match["value"])
        found[name] = (match["unset"] is None, value[0] if value else "")
    return found


def set_values() -> dict[str, str]:
    return {name: value for name, (is_set, value) in example().items() if is_set}


def missing_lines(expected: dict[str, Any], listed: dict[str, tuple[bool, str]]) -> list[str]:
    return [
        f"# {name}=" if default is None else f"{name}={default}"
        for name, default in sorted(expected.items())
        if name not in listed
    ]


def defaults() -> dict[str, Any]:
    """Every settings variable with its default (None: no default)."""
    found: dict[str, Any] = {}
    for cls in SETTINGS:
        for name, field in variables(cls):
            default = cls.model_fields[field].get_default(call_default_factory=True)
            # A required field (the daemon's key ring) has no default either.
            found[name] = None if default is PydanticUndefined else default
    return found


def test_every_settings_field_is_listed_with_its_kind_of_default() -> None:
    listed = example()
    expected = defaults()
    missing = missing_lines(expected, listed)
    assert missing == [], "add to .env.example:\n" + "\n".join(missing)
    for name, default in expected.items():
        is_set, value = listed[name]
        if default is None:
            assert (is_set, value) == (False, ""), f"{name} has no default: list it as '# {name}='"
        else:
            assert is_set, f"{name} has a default ({default!r}): list it set to it"


def test_every_event_store_variable_is_listed_and_nothing_unknown() -> None:
    listed = example()
    store = store_variables()
    assert {"POSTGRES_POOL_SIZE", "SQLITE_DBNAME", "CIPHER_TOPIC"} <= store
    missing = sorted(store - listed.keys())
    assert missing == [], "add to .env.example: " + ", ".join(missing)
    known = defaults().keys() | store | {DATA_DIR_VAR}
    unknown = sorted(listed.keys() - known)
    assert unknown == [], f"no process reads {unknown}"
    # The yes/no store variables a4c reads itself show its defaults.
    for name, default in FLAG_DEFAULTS.items():
        assert listed[name] == (False, "yes" if default else "no"), name


def load_worker_in_development(env: dict[str, str]) -> WorkerSettings:
    # The worker's default mode, production, also needs TEMPORAL_PAYLOAD_KEYS, a secret
    # with no default; WORKFLOW_MODE's own line is checked here.
    assert env["WORKFLOW_MODE"] == WorkerSettings.model_fields["workflow_mode"].default
    return load_worker({**env, "WORKFLOW_MODE": "development"}, scope="client")


def load_api_in_development(env: dict[str, str]) -> ApiSettings:
    # The API's default mode, production, refuses to start without a session secret and a
    # provider, which have no defaults; API_MODE's own line is checked apart.
    assert env["API_MODE"] == ApiSettings.model_fields["api_mode"].default
    return load_api({**env, "API_MODE": "development"})


# The daemon's key ring has no default (it is a secret): the same one is given to both.
WEBHOOK_KEYS = PayloadKeys.generate("k1").entry()


def load_webhooks_with_keys(env: dict[str, str]) -> WebhookSettings:
    return load_webhooks({**env, "WEBHOOK_SECRET_KEYS": WEBHOOK_KEYS})


@pytest.mark.parametrize(
    ("cls", "load", "changed"),
    [
        (WorkerSettings, load_worker_in_development, {"workflow_mode": "development"}),
        (ProjectorSettings, load_projector, {}),
        (ApiSettings, load_api_in_development, {"api_mode": "development"}),
        (WebhookSettings, load_webhooks_with_keys, {"webhook_secret_keys": WEBHOOK_KEYS}),
    ],
    ids=["worker", "projector", "api", "webhooks"],
)
def test_the_listed_values_are_each_process_defaults(
    cls: type[BaseSettings], load: Any, changed: dict[str, str]
) -> None:
    """Loaded as the process loads its environment, the file changes nothing."""
    loaded = load(set_values())
    assert loaded.model_dump() == cls.model_validate(changed).model_dump()


def test_a_value_other_than_the_default_is_caught() -> None:
    """The comparison above really reads the file's values."""
    changed = set_values() | {"PROJECTOR_BATCH_SIZE": "7"}
    assert load_projector(changed).model_dump() != ProjectorSettings.model_validate({}).model_dump()
