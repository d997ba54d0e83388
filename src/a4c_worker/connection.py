"""How every a4c process reaches Temporal: the SDK's environment configuration, checked.

The worker, the operator commands, ``a4c`` and a4c-api all connect through
:meth:`TemporalSettings.temporal_connection`. Its variables are the ones Temporal's own
tools read (``temporalio.envconfig``: ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS*``, ``TEMPORAL_PROFILE`` of ``TEMPORAL_CONFIG_FILE``),
plus a4c's ``TEMPORAL_PAYLOAD_KEYS`` (:mod:`a4c_worker.codec`). Unlike the SDK, values
come only from the settings passed in (never ``os.environ``), a profile file is read only
when ``TEMPORAL_CONFIG_FILE`` names it (never a developer's home folder), and each
mistake the SDK would ignore is a :class:`~a4c_domain.errors.ConfigurationError` naming
the variable, raised when the settings are loaded, before anything connects.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from temporalio.envconfig import ClientConfigProfile, ClientConfigTLS

from a4c_service.settings import MASK
from a4c_worker.codec import PAYLOAD_KEYS_VARIABLE, PLAIN, PayloadKeys, PayloadKeysError
from a4c_worker.temporal_connection import (
    DEFAULT_ADDRESS,
    DEFAULT_NAMESPACE,
    TemporalConnection,
    connect_failure,
)

# The TLS sources: (field, variable naming the file, variable holding the PEM text).
_SOURCES = {
    "server_root_ca_cert": ("TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_DATA"),
    "client_cert": ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_CERT_DATA"),
    "client_private_key": ("TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_CLIENT_KEY_DATA"),
}
# What a profile file calls them (its ``[profile.NAME.tls]`` keys), for messages.
_PROFILE_KEYS = {
    "server_root_ca_cert": "server_ca_cert",
    "client_cert": "client_cert",
    "client_private_key": "client_key",
}


class TemporalConfigError(ValueError):
    """One Temporal setting is wrong: ``variable`` names it, the message says why."""

    def __init__(self, variable: str, problem: str) -> None:
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


class TemporalSettings(BaseSettings):
    """The connection variables, shared by every process's settings class (field ``x_y``
    is variable ``X_Y``). Address and namespace keep their defaults as fields; a profile's
    values are used where the variable is not set."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    temporal_address: str = Field(default=DEFAULT_ADDRESS, min_length=3)
    temporal_namespace: str = Field(default=DEFAULT_NAMESPACE, min_length=1)
    # Temporal Cloud's API key: sent as ``authorization: Bearer ...``; turns TLS on.
    temporal_api_key: SecretStr | None = None
    # Unset: TLS when an API key or any TLS_* setting is given; false: never.
    temporal_tls: bool | None = None
    temporal_tls_server_name: str | None = None
    temporal_tls_server_ca_cert_path: str | None = None
    temporal_tls_server_ca_cert_data: str | None = None
    temporal_tls_client_cert_path: str | None = None
    temporal_tls_client_cert_data: str | None = None
    temporal_tls_client_key_path: str | None = None
    temporal_tls_client_key_data: SecretStr | None = None
    # Read so it can be refused: the Python SDK cannot skip host verification.
    temporal_tls_disable_host_verification: bool | None = None
    temporal_profile: str | None = None
    temporal_config_file: str | None = None
    # ``id:base64key,...``: the first seals every payload, each opens (a4c_worker.codec).
    temporal_payload_keys: SecretStr | None = None

    @classmethod
    def variables(cls) -> frozenset[str]:
        """Every connection variable (what a process that brings its own server, the dev
        stack, keeps from reaching its children)."""
        return frozenset(name.upper() for name in TemporalSettings.model_fields)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values passed in: entry points read the environment, never this class."""
        return (init_settings,)

    @field_validator(
        "temporal_api_key",
        "temporal_tls",
        "temporal_tls_server_name",
        "temporal_tls_server_ca_cert_path",
        "temporal_tls_server_ca_cert_data",
        "temporal_tls_client_cert_path",
        "temporal_tls_client_cert_data",
        "temporal_tls_client_key_path",
        "temporal_tls_client_key_data",
        "temporal_tls_disable_host_verification",
        "temporal_profile",
        "temporal_config_file",
        "temporal_payload_keys",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``TEMPORAL_TLS_CLIENT_KEY_PATH=`` in a manifest means "none", as the SDK reads it."""
        return None if isinstance(value, str) and not value.strip() else value

    def temporal_problems(self) -> list[tuple[str, str]]:
        """``(VARIABLE, problem)`` for the connection settings; empty when they connect."""
        try:
            self.temporal_connection()
        except TemporalConfigError as exc:
            return [(exc.variable, exc.problem)]
        return []

    def temporal_connection(self) -> TemporalConnection:
        """The resolved connection: these variables over the profile over the defaults.

        Reads the profile file and the certificate files (configuration, read when the
        settings are loaded); :class:`TemporalConfigError` names the variable to fix.
        """
        config_file = self.temporal_config_file
        payload_keys = self.payload_keys()
        if self.temporal_tls_disable_host_verification:
            raise TemporalConfigError(
                "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION",
                "not supported by the Temporal Python SDK; set TEMPORAL_TLS_SERVER_NAME to the "
                "name in the server's certificate instead",
            )
        if self.temporal_profile is not None and config_file is None:
            raise TemporalConfigError(
                "TEMPORAL_PROFILE",
                "names a profile of TEMPORAL_CONFIG_FILE, which is not set",
            )
        if config_file is not None and not Path(config_file).is_file():
            raise TemporalConfigError("TEMPORAL_CONFIG_FILE", f"{config_file}: no such file")
        for path_var, data_var in _SOURCES.values():
            path = self._variable(path_var)
            if path is not None and self._variable(data_var) is not None:
                raise TemporalConfigError(path_var, f"set either {path_var} or {data_var}")
            if path is not None and not Path(path).is_file():
                raise TemporalConfigError(path_var, f"{path}: no such file")
        if self.temporal_tls is False:
            given = [name for name in self._tls_variables() if self._variable(name) is not None]
            if given:
                raise TemporalConfigError(
                    "TEMPORAL_TLS", f"is false, but {', '.join(given)} asks for TLS"
                )

        try:
            profile = ClientConfigProfile.load(
                self.temporal_profile,
                config_source=Path(config_file) if config_file else None,
                disable_file=config_file is None,
                override_env_vars=self._explicit_variables(),
            )
        except RuntimeError as exc:  # the SDK's ConfigError
            raise _profile_error(str(exc), self.temporal_profile, config_file) from None
        self._check_pair(profile.tls, from_file=config_file is not None)
        try:
            options = profile.to_client_connect_config()  # reads the certificate files
        except OSError as exc:  # present but unreadable (permissions)
            raise TemporalConfigError(self._file_variable(exc.filename), str(exc)) from None
        return TemporalConnection(
            target_host=options.get("target_host") or self.temporal_address,
            namespace=options.get("namespace") or self.temporal_namespace,
            tls=options.get("tls", False),
            api_key=SecretStr(options["api_key"]) if "api_key" in options else None,
            rpc_metadata=dict(options.get("rpc_metadata") or {}),
            profile=(self.temporal_profile or "default") if config_file else None,
            config_file=config_file,
            payload_keys=payload_keys,
        )

    def payload_keys(self) -> PayloadKeys | None:
        """The parsed ``TEMPORAL_PAYLOAD_KEYS`` (None if unset); what is wrong with them
        as a :class:`TemporalConfigError` naming the variable, never quoting a key."""
        if self.temporal_payload_keys is None:
            return None
        try:
            return PayloadKeys.parse(self.temporal_payload_keys.get_secret_value())
        except PayloadKeysError as exc:
            raise TemporalConfigError(PAYLOAD_KEYS_VARIABLE, str(exc)) from None

    def warn_if_payloads_in_clear(self, log: logging.Logger) -> None:
        """Say at start, in production, that ``plain`` first seals nothing: it is the first
        step of switching sealing on (docs/operating.md), so it is allowed, but not a
        state to stay in unnoticed."""
        keys = self.payload_keys()
        if keys is not None and not keys.seals:
            log.warning(
                "%s starts with %r: payloads are written to Temporal in clear (keys %s only "
                "open them) until %r is removed from it",
                PAYLOAD_KEYS_VARIABLE,
                PLAIN,
                ", ".join(key.id for key in keys.keys),
                PLAIN,
            )

    # --- helpers ------------------------------------------------------------------------

    def _variable(self, name: str) -> str | None:
        value = getattr(self, name.lower())
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return None if value is None else str(value)

    @staticmethod
    def _tls_variables() -> list[str]:
        """The settings that ask for TLS (certificates, server name; not the refused switch)."""
        return [
            name.upper()
            for name in TemporalSettings.model_fields
            if "_tls_" in name and name != "temporal_tls_disable_host_verification"
        ]

    def _file_variable(self, filename: object) -> str:
        """The variable that named ``filename`` (else the profile file named it)."""
        for path_var, _ in _SOURCES.values():
            path = self._variable(path_var)
            if path is not None and str(Path(path)) == str(filename):
                return path_var
        return "TEMPORAL_CONFIG_FILE"

    def _explicit_variables(self) -> dict[str, str]:
        """What was set, as the SDK's variables: a field's default must not hide the
        profile's value (``TEMPORAL_ADDRESS`` unset, the profile's address is used)."""
        found: dict[str, str] = {}
        for name in TemporalSettings.model_fields:
            if name in ("temporal_profile", "temporal_config_file"):
                continue  # passed as arguments: the SDK would read them from env otherwise
            if name == "temporal_payload_keys":
                continue  # a4c's own: the SDK's configuration knows nothing of it
            if name == "temporal_tls_disable_host_verification":
                continue  # true is refused; false must not switch TLS on (the SDK would)
            value = getattr(self, name)
            if name not in self.model_fields_set or value is None:
                continue
            if isinstance(value, SecretStr):
                found[name.upper()] = value.get_secret_value()
            elif isinstance(value, bool):
                found[name.upper()] = "true" if value else "false"
            else:
                found[name.upper()] = str(value)
        return found

    def _check_pair(self, tls: ClientConfigTLS | None, *, from_file: bool) -> None:
        """A client key without its certificate (or the reverse) is a mistake, not "no
        mTLS"; files named by a profile must exist (the SDK would fail at connect)."""
        if tls is None:
            return
        has_cert, has_key = tls.client_cert is not None, tls.client_private_key is not None
        if has_cert != has_key:
            missing = "client_cert" if has_key else "client_private_key"
            given = "client_private_key" if has_key else "client_cert"
            path_var, data_var = _SOURCES[missing]
            given_var = next(
                (name for name in _SOURCES[given] if self._variable(name) is not None),
                f"the profile's tls.{_PROFILE_KEYS[given]}_path",
            )
            where = f", or the profile's tls.{_PROFILE_KEYS[missing]}_path" if from_file else ""
            raise TemporalConfigError(
                path_var,
                f"required with {given_var}: mTLS needs both the client certificate and "
                f"its key (or {data_var}{where})",
            )
        for source_field in _SOURCES:
            source = getattr(tls, source_field)
            if isinstance(source, Path) and not source.is_file():
                # The variables' files were checked already: this one is the profile's.
                setting = f"tls.{_PROFILE_KEYS[source_field]}_path"
                raise TemporalConfigError(
                    "TEMPORAL_CONFIG_FILE",
                    f"{source}: no such file ({setting} of profile "
                    f"{self.temporal_profile or 'default'})",
                )


def _profile_error(
    message: str, profile: str | None, config_file: str | None
) -> TemporalConfigError:
    """The SDK's ConfigError in the operator's terms. Only its first line: a TOML parse
    error quotes the offending line, which may hold an API key."""
    first = message.strip().splitlines()[0] if message.strip() else "invalid"
    if "not found" in first and first.startswith("Profile"):
        return TemporalConfigError(
            "TEMPORAL_PROFILE", f"no profile {profile or 'default'!r} in {config_file}"
        )
    if "Cannot specify both" in first:
        variable = first.split("both", 1)[1].split()[0]
        return TemporalConfigError(variable, first.split(": ", 1)[-1])
    return TemporalConfigError("TEMPORAL_CONFIG_FILE", f"{config_file}: {first}")


# The connection itself is a4c_worker.temporal_connection's, the mask a4c_service's;
# importers reach them here too.
__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_NAMESPACE",
    "MASK",
    "TemporalConfigError",
    "TemporalConnection",
    "TemporalSettings",
    "connect_failure",
]
