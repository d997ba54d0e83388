"""Settings from the environment, the same way in every process.

An entry point hands :func:`read_settings` the environment as a mapping (tests pass plain
dicts) and gets a validated model, or a :class:`SettingsError` listing every mistake as
``(VARIABLE, problem)``: ``SMTP_HOST: required when EMAIL_PROVIDER is smtp``, never a
stack trace and never the value (it may be a secret).

A choice is read in any case, blanks around it ignored: a model folds its choices'
fields with ``_lowercase = field_validator(<fields>, mode="before")(lowercase)`` (and
:func:`uppercase` for the log level). Not as ``Annotated[Mode, BeforeValidator(...)]``:
typing caches ``Annotated`` by equal arguments, and two Literals of the same values in
another order are equal, so a model would get the other's order in its messages.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError

from a4c_domain.commands import field_errors
from a4c_domain.errors import ConfigurationError

# How ``validate-config`` shows a secret.
MASK = "**********"

Model = TypeVar("Model", bound=BaseModel)


class SettingsError(ConfigurationError):
    """One or more settings are wrong; ``problems`` lists ``(VARIABLE, message)`` pairs."""

    def __init__(self, problems: Iterable[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{var}: {msg}" for var, msg in self.problems))

    @property
    def variables(self) -> list[str]:
        return [var for var, _ in self.problems]


def lowercase(value: Any) -> Any:
    """A text setting stripped and in lower case; anything else as it is."""
    return value.strip().lower() if isinstance(value, str) else value


def uppercase(value: Any) -> Any:
    """A text setting stripped and in upper case; anything else as it is."""
    return value.strip().upper() if isinstance(value, str) else value


def variable_name(field: str) -> str:
    """Field ``x_y`` is variable ``X_Y`` (unless a process says otherwise)."""
    return field.upper()


def read_settings(
    model: type[Model],
    environ: Mapping[str, str],
    *,
    variable: Callable[[str], str] = variable_name,
    empty_is_unset: bool = False,
    derived: Mapping[str, Any] | None = None,
) -> Model:
    """``model`` validated from each field's ``variable`` in ``environ`` (only there: not
    ``os.environ``), with the ``derived`` fields, which no variable sets; empty values
    count as unset when ``empty_is_unset``. :class:`SettingsError` names every wrong
    variable."""
    values: dict[str, Any] = {}
    for field in model.model_fields:
        value = environ.get(variable(field))
        if value is not None and not (empty_is_unset and value == ""):
            values[field] = value
    values.update(derived or {})
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(field_problems(exc, variable)) from None


def field_problems(
    exc: ValidationError, variable: Callable[[str], str] = variable_name
) -> list[tuple[str, str]]:
    """``(VARIABLE, message)`` in the operator's terms (``field_errors``' wording)."""
    problems = []
    for error in field_errors(exc):
        field = error["field"].split(".")[0]
        name = variable(field) if field != "(command)" else "configuration"
        message = "required" if error["message"] == "is required" else error["message"]
        problems.append((name, message))
    return problems


def displayed(name: str, value: Any) -> Any:
    """A setting as ``validate-config`` prints it: secrets masked, PEM text abbreviated
    (a certificate is not secret, but a page of base64 helps nobody)."""
    if isinstance(value, SecretStr):
        return MASK
    if name.endswith("_data") and isinstance(value, str):
        return f"(PEM, {len(value)} characters)"
    return value


__all__ = [
    "MASK",
    "SettingsError",
    "displayed",
    "field_problems",
    "lowercase",
    "read_settings",
    "uppercase",
    "variable_name",
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere
