"""The Temporal connection each setting resolves to (pure: no server; files under tmp_path).

Every process reads the same variables (``TemporalSettings``): the worker's and a4c-api's
loaders are both exercised, so a variable cannot work for one and not the other.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from temporalio.service import TLSConfig
from tests.servers.tlsproxy import SERVER_NAME, Pki, make_pki
from tests.support import TOKEN_SECRET

from a4c_api.settings import ApiSettings
from a4c_api.settings import load_settings as load_api_settings
from a4c_domain.errors import ConfigurationError
from a4c_service.logs import JSONFormatter
from a4c_worker.config import SettingsError, WorkerSettings
from a4c_worker.config import load_settings as load_worker_settings
from a4c_worker.connection import (
    DEFAULT_ADDRESS,
    MASK,
    TemporalConnection,
    TemporalSettings,
    connect_failure,
)

API_KEY = "tmprl-api-key-Hq93-unique"
Loader = Callable[[Mapping[str, str]], TemporalSettings]


def worker_loader(environ: Mapping[str, str]) -> WorkerSettings:
    # Development: production would also ask for the payload keys.
    return load_worker_settings({"WORKFLOW_MODE": "development", **environ}, "client")


def api_loader(environ: Mapping[str, str]) -> ApiSettings:
    # Development: production would also ask for a provider, a session secret...
    return load_api_settings({"API_MODE": "development", **environ})


LOADERS = [
    pytest.param(worker_loader, id="worker"),
    pytest.param(api_loader, id="api"),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def connection(environ: Mapping[str, str], load: Loader = worker_loader) -> TemporalConnection:
    return load(environ).temporal_connection()


def problem(environ: Mapping[str, str], load: Loader = worker_loader) -> tuple[str, str]:
    """The one problem loading ``environ`` reports, as ``(VARIABLE, message)``."""
    with pytest.raises(SettingsError) as caught:
        load(environ)
    assert isinstance(caught.value, ConfigurationError)
    [found] = [p for p in caught.value.problems if p[0].startswith("TEMPORAL_")]
    return found


# --- what each setting resolves to ------------------------------------------------------


@pytest.mark.parametrize("load", LOADERS)
def test_nothing_set_is_the_local_dev_server_in_plain_text(load: Loader) -> None:
    resolved = connection({}, load)
    assert resolved.client_options() == {
        "target_host": DEFAULT_ADDRESS,
        "namespace": "default",
        "tls": False,
    }
    assert resolved.tls_mode == "off"
    assert resolved.describe() == "localhost:7233 namespace=default tls=off"


@pytest.mark.parametrize("load", LOADERS)
def test_address_and_namespace(load: Loader) -> None:
    resolved = connection(
        {"TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "onboarding"}, load
    )
    assert resolved.client_options() == {
        "target_host": "temporal.internal:7233",
        "namespace": "onboarding",
        "tls": False,
    }


@pytest.mark.parametrize("load", LOADERS)
def test_an_api_key_is_sent_and_turns_tls_on(load: Loader) -> None:
    resolved = connection(
        {
            "TEMPORAL_ADDRESS": "acme.a1b2c.tmprl.cloud:7233",
            "TEMPORAL_NAMESPACE": "acme.a1b2c",
            "TEMPORAL_API_KEY": API_KEY,
        },
        load,
    )
    assert resolved.client_options() == {
        "target_host": "acme.a1b2c.tmprl.cloud:7233",
        "namespace": "acme.a1b2c",
        "tls": True,  # the system's CAs, as Temporal Cloud needs
        "api_key": API_KEY,
    }
    assert resolved.tls_mode == "tls"
    assert API_KEY not in repr(resolved) + resolved.describe() + str(resolved.masked())
    assert resolved.masked()["api_key"] == MASK


def test_tls_false_keeps_an_api_key_in_plain_text() -> None:
    # A plain-text proxy inside the cluster network that checks keys: allowed, explicit.
    resolved = connection({"TEMPORAL_API_KEY": API_KEY, "TEMPORAL_TLS": "false"})
    assert resolved.client_options()["tls"] is False
    assert resolved.client_options()["api_key"] == API_KEY


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_tls_true_alone_verifies_with_the_system_cas(value: str) -> None:
    resolved = connection({"TEMPORAL_TLS": value})
    assert resolved.tls == TLSConfig()
    assert resolved.tls_mode == "tls"
    assert resolved.masked()["tls_server_ca"] == "system"


@pytest.mark.parametrize("load", LOADERS)
def test_server_ca_and_server_name(load: Loader, pki: Pki) -> None:
    resolved = connection(
        {
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
            "TEMPORAL_TLS_SERVER_NAME": SERVER_NAME,
        },
        load,
    )
    assert resolved.tls == TLSConfig(server_root_ca_cert=pki.ca.read_bytes(), domain=SERVER_NAME)
    assert (resolved.tls_mode, resolved.masked()["tls_server_ca"]) == ("tls", "custom")
    assert resolved.masked()["tls_server_name"] == SERVER_NAME


@pytest.mark.parametrize("load", LOADERS)
def test_client_certificate_and_key_files_make_mtls(load: Loader, pki: Pki) -> None:
    resolved = connection(
        {
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        },
        load,
    )
    assert resolved.tls == TLSConfig(
        server_root_ca_cert=pki.ca.read_bytes(),
        client_cert=pki.client_cert.read_bytes(),
        client_private_key=pki.client_key.read_bytes(),
    )
    assert resolved.tls_mode == "mtls"
    assert "PRIVATE KEY" not in repr(resolved)  # the key's bytes are in .tls, never shown


def test_pem_text_in_variables_instead_of_files(pki: Pki) -> None:
    key = pki.client_key.read_text()
    settings = worker_loader(
        {
            "TEMPORAL_TLS_SERVER_CA_CERT_DATA": pki.ca.read_text(),
            "TEMPORAL_TLS_CLIENT_CERT_DATA": pki.client_cert.read_text(),
            "TEMPORAL_TLS_CLIENT_KEY_DATA": key,
        }
    )
    resolved = settings.temporal_connection()
    assert isinstance(resolved.tls, TLSConfig)
    assert resolved.tls.client_private_key == key.encode()
    assert resolved.tls_mode == "mtls"
    shown = settings.masked()
    assert shown["TEMPORAL_TLS_CLIENT_KEY_DATA"] == MASK
    assert shown["TEMPORAL_TLS_CLIENT_CERT_DATA"].startswith("(PEM, ")
    assert key not in json.dumps(shown, default=str)


def test_empty_values_count_as_unset(pki: Pki) -> None:
    # A manifest's "TEMPORAL_TLS_CLIENT_KEY_PATH: ''" means no client key, as the SDK reads it.
    resolved = connection(
        {"TEMPORAL_TLS_CLIENT_KEY_PATH": "", "TEMPORAL_API_KEY": "", "TEMPORAL_TLS": ""},
        api_loader,
    )
    assert resolved.client_options()["tls"] is False
    assert "api_key" not in resolved.client_options()


# --- profiles ---------------------------------------------------------------------------


def profiles(folder: Path, pki: Pki) -> Path:
    path = folder / "temporal.toml"
    path.write_text(
        f"""
[profile.default]
address = "localhost:7233"

[profile.cloud]
address = "acme.a1b2c.tmprl.cloud:7233"
namespace = "acme.a1b2c"
api_key = "{API_KEY}"

[profile.onprem]
address = "temporal.internal:7233"
namespace = "onboarding"
[profile.onprem.tls]
server_name = "{SERVER_NAME}"
server_ca_cert_path = "{pki.ca}"
client_cert_path = "{pki.client_cert}"
client_key_path = "{pki.client_key}"
[profile.onprem.grpc_meta]
x-tenant = "tenant-secret-header"
"""
    )
    return path


@pytest.mark.parametrize("load", LOADERS)
def test_a_profile_of_the_config_file(load: Loader, tmp_path: Path, pki: Pki) -> None:
    file = profiles(tmp_path, pki)
    cloud = connection({"TEMPORAL_CONFIG_FILE": str(file), "TEMPORAL_PROFILE": "cloud"}, load)
    assert cloud.client_options() == {
        "target_host": "acme.a1b2c.tmprl.cloud:7233",
        "namespace": "acme.a1b2c",
        "tls": True,
        "api_key": API_KEY,
    }
    assert cloud.describe() == (
        "acme.a1b2c.tmprl.cloud:7233 namespace=acme.a1b2c tls=tls api-key profile=cloud"
    )
    onprem = connection({"TEMPORAL_CONFIG_FILE": str(file), "TEMPORAL_PROFILE": "onprem"}, load)
    assert onprem.tls == TLSConfig(
        domain=SERVER_NAME,
        server_root_ca_cert=pki.ca.read_bytes(),
        client_cert=pki.client_cert.read_bytes(),
        client_private_key=pki.client_key.read_bytes(),
    )
    assert onprem.client_options()["rpc_metadata"] == {"x-tenant": "tenant-secret-header"}
    assert onprem.masked()["grpc_meta"] == {"x-tenant": MASK}


def test_without_a_profile_the_default_one_is_used(tmp_path: Path, pki: Pki) -> None:
    resolved = connection({"TEMPORAL_CONFIG_FILE": str(profiles(tmp_path, pki))})
    assert (resolved.target_host, resolved.profile) == ("localhost:7233", "default")


def test_variables_override_the_profile(tmp_path: Path, pki: Pki) -> None:
    resolved = connection(
        {
            "TEMPORAL_CONFIG_FILE": str(profiles(tmp_path, pki)),
            "TEMPORAL_PROFILE": "cloud",
            "TEMPORAL_NAMESPACE": "acme-staging.a1b2c",
        }
    )
    # The namespace from the variable; what it does not set (address, key) from the profile.
    assert resolved.namespace == "acme-staging.a1b2c"
    assert resolved.target_host == "acme.a1b2c.tmprl.cloud:7233"
    assert resolved.api_key is not None


# --- mistakes, each naming its variable ----------------------------------------------------


@pytest.mark.parametrize("load", LOADERS)
def test_tls_must_be_a_boolean(load: Loader) -> None:
    variable, _ = problem({"TEMPORAL_TLS": "maybe"}, load)
    assert variable == "TEMPORAL_TLS"


@pytest.mark.parametrize("load", LOADERS)
@pytest.mark.parametrize(
    "variable",
    [
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
    ],
)
def test_a_missing_certificate_file(load: Loader, variable: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    assert problem({variable: str(missing)}, load) == (variable, f"{missing}: no such file")


@pytest.mark.parametrize("load", LOADERS)
def test_a_client_key_without_its_certificate(load: Loader, pki: Pki) -> None:
    variable, message = problem({"TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key)}, load)
    assert variable == "TEMPORAL_TLS_CLIENT_CERT_PATH"
    assert "required with TEMPORAL_TLS_CLIENT_KEY_PATH" in message


def test_a_client_certificate_without_its_key(pki: Pki) -> None:
    variable, message = problem({"TEMPORAL_TLS_CLIENT_CERT_DATA": pki.client_cert.read_text()})
    assert variable == "TEMPORAL_TLS_CLIENT_KEY_PATH"
    assert "required with TEMPORAL_TLS_CLIENT_CERT_DATA" in message


def test_a_file_and_pem_text_for_the_same_thing(pki: Pki) -> None:
    variable, message = problem(
        {
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
            "TEMPORAL_TLS_SERVER_CA_CERT_DATA": pki.ca.read_text(),
        }
    )
    assert variable == "TEMPORAL_TLS_SERVER_CA_CERT_PATH"
    assert "TEMPORAL_TLS_SERVER_CA_CERT_DATA" in message


def test_tls_false_with_tls_settings_is_a_contradiction(pki: Pki) -> None:
    variable, message = problem(
        {"TEMPORAL_TLS": "false", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca)}
    )
    assert variable == "TEMPORAL_TLS"
    assert "TEMPORAL_TLS_SERVER_CA_CERT_PATH" in message


def test_disabling_host_verification_is_refused() -> None:
    variable, message = problem({"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "true"})
    assert variable == "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"
    assert "TEMPORAL_TLS_SERVER_NAME" in message  # what to do instead
    assert connection({"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION": "false"}).tls is False


@pytest.mark.parametrize("load", LOADERS)
def test_an_unknown_profile(load: Loader, tmp_path: Path, pki: Pki) -> None:
    file = profiles(tmp_path, pki)
    assert problem({"TEMPORAL_CONFIG_FILE": str(file), "TEMPORAL_PROFILE": "nope"}, load) == (
        "TEMPORAL_PROFILE",
        f"no profile 'nope' in {file}",
    )


def test_a_profile_without_a_config_file() -> None:
    # The SDK's default location is never read (a server must not pick up someone's home).
    variable, message = problem({"TEMPORAL_PROFILE": "cloud"})
    assert variable == "TEMPORAL_PROFILE"
    assert "TEMPORAL_CONFIG_FILE" in message


def test_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "temporal.toml"
    assert problem({"TEMPORAL_CONFIG_FILE": str(missing)}) == (
        "TEMPORAL_CONFIG_FILE",
        f"{missing}: no such file",
    )


def test_a_broken_config_file_does_not_echo_its_lines(tmp_path: Path) -> None:
    file = tmp_path / "temporal.toml"
    file.write_text(f'[profile.default]\napi_key = "{API_KEY}\n')  # unterminated string
    with pytest.raises(SettingsError) as caught:
        worker_loader({"TEMPORAL_CONFIG_FILE": str(file)})
    assert caught.value.variables == ["TEMPORAL_CONFIG_FILE"]
    assert "TOML parse error" in str(caught.value)
    assert API_KEY not in str(caught.value)


def test_a_profile_naming_a_missing_file(tmp_path: Path) -> None:
    file = tmp_path / "temporal.toml"
    file.write_text(
        f'[profile.default.tls]\nclient_cert_path = "{tmp_path}/c.pem"\n'
        f'client_key_path = "{tmp_path}/k.pem"\n'
    )
    variable, message = problem({"TEMPORAL_CONFIG_FILE": str(file)})
    assert variable == "TEMPORAL_CONFIG_FILE"
    assert f"{tmp_path}/c.pem: no such file (tls.client_cert_path of profile default)" == message


def test_every_mistake_is_reported_by_the_api_loader_too(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        api_loader({"TEMPORAL_TLS_CLIENT_CERT_PATH": str(tmp_path / "x.pem")})
    assert caught.value.variables == ["TEMPORAL_TLS_CLIENT_CERT_PATH"]


# --- never shown -----------------------------------------------------------------------


def test_validate_config_masks_the_api_key_and_client_key(pki: Pki) -> None:
    key_pem = pki.client_key.read_text()
    environ = {
        "A4C_TOKEN_SECRET": TOKEN_SECRET,
        "WORKFLOW_MODE": "mock",
        "TEMPORAL_API_KEY": API_KEY,
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_DATA": key_pem,
    }
    for shown in (load_worker_settings(environ).masked(), api_loader(environ).masked()):
        assert shown["TEMPORAL_API_KEY"] == MASK
        assert shown["TEMPORAL_TLS_CLIENT_KEY_DATA"] == MASK
        assert shown["resolved"]["temporal"]["tls"] == "mtls"
        assert shown["resolved"]["temporal"]["api_key"] == MASK
        rendered = json.dumps(shown, default=str)
        assert API_KEY not in rendered
        assert "PRIVATE KEY" not in rendered


def test_settings_and_connection_in_logs_show_no_secret(pki: Pki) -> None:
    settings = worker_loader(
        {
            "TEMPORAL_API_KEY": API_KEY,
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        }
    )
    resolved = settings.temporal_connection()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    log = logging.getLogger("test.connection.secrets")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        log.info("%r %s %r", settings, resolved, resolved, extra={"connection": resolved})
    finally:
        log.removeHandler(handler)
    rendered = stream.getvalue()
    assert "tls" in rendered
    assert API_KEY not in rendered
    assert "PRIVATE KEY" not in rendered


# --- connect failures in the operator's terms --------------------------------------------

SDK_ERRORS: list[tuple[dict[str, Any], str, str]] = [
    (
        {"tls": True},
        "Server connection error: ... InvalidCertificate(UnknownIssuer) ...",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    ),
    (
        {"tls": True},
        "InvalidCertificate(NotValidForNameContext { expected: IpAddress(...) })",
        "TEMPORAL_TLS_SERVER_NAME",
    ),
    ({"tls": True}, "error: InvalidMessage(InvalidContentType)", "TEMPORAL_TLS=false"),
    ({}, "Os { code: 111, kind: ConnectionRefused }", "TEMPORAL_ADDRESS"),
    (
        {"tls": True, "api_key": API_KEY},
        'Status { code: Unauthenticated, message: "invalid API key" }',
        "refused the API key (TEMPORAL_API_KEY)",
    ),
    (
        {"tls": TLSConfig(client_cert=b"c", client_private_key=b"k")},
        "Status { code: PermissionDenied }",
        "refused the client certificate",
    ),
    ({"tls": True}, "Status { code: Unauthenticated }", "TEMPORAL_TLS_CLIENT_CERT_PATH and"),
    ({}, "h2 protocol error: http2 error ... FRAME_SIZE_ERROR", "TEMPORAL_TLS=true"),
]


@pytest.mark.parametrize(("options", "sdk_says", "hint"), SDK_ERRORS)
def test_connect_failures_name_what_to_fix(
    options: dict[str, Any], sdk_says: str, hint: str
) -> None:
    api_key = options.pop("api_key", None)
    resolved = TemporalConnection(
        target_host="t:7233", api_key=None if api_key is None else SecretStr(api_key), **options
    )
    message = connect_failure(resolved, RuntimeError(f"Failed client connect: {sdk_says}"))
    assert message.startswith(f"cannot reach Temporal at {resolved.describe()}: ")
    assert hint in message
    assert sdk_says in message  # the SDK's words stay, for whoever digs further
    assert API_KEY not in message
