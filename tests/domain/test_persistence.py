"""The event store's connection settings: read once, as eventsourcing reads them.

The PostgreSQL half runs on the real local server (trust auth for 127.0.0.1).
"""

from __future__ import annotations

import pytest
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment

from a4c_domain import OnboardingApplication
from a4c_domain.errors import ConfigurationError
from a4c_domain.persistence import configure_pool, postgres_connection
from tests.servers.postgres import postgres_env
from tests.support import TOKEN_SECRET


def issued_password() -> str:
    """A ``POSTGRES_GET_PASSWORD_TOPIC`` target."""
    return "from the topic"


def test_trust_auth_needs_no_postgres_password(pg_schema: str) -> None:
    env = postgres_env(pg_schema)
    del env["POSTGRES_PASSWORD"]
    app = OnboardingApplication(env, token_secret=TOKEN_SECRET)
    try:
        org = app.register_organization(name="Trust", slug="trust", org_type="provider")
        assert org.position == 1
    finally:
        app.close()


@pytest.mark.parametrize(
    "extra",
    [
        {"POSTGRES_PASSWORD": "x port=1 'q' \\ a=b", "POSTGRES_CONNECT_TIMEOUT": "9"},
        {"POSTGRES_GET_PASSWORD_TOPIC": f"{__name__}:issued_password"},
        {"A4C_POSTGRES_HOST": "db.example", "A4C_POSTGRES_PASSWORD": "prefixed"},
        {},
    ],
)
def test_the_connection_is_what_eventsourcing_connects_to(extra: dict[str, str]) -> None:
    env = {**postgres_env("s1"), "POSTGRES_PORT": "6543", **extra}
    if "POSTGRES_GET_PASSWORD_TOPIC" in extra:
        del env["POSTGRES_PASSWORD"]
    environment = Environment(OnboardingApplication.name, env)
    ours = postgres_connection(environment)
    pool = PostgresFactory(environment).datastore.pool  # builds the pool, connects nothing
    assert isinstance(pool.kwargs, dict | None)  # psycopg_pool also allows a callable
    theirs = {k: v for k, v in (pool.kwargs or {}).items() if k != "row_factory"}
    if pool.get_password_func is not None:
        assert ours.get_password is pool.get_password_func
        theirs["password"] = pool.get_password_func()
    keywords = ours.keywords()
    assert theirs == {
        "host": keywords["host"],
        "port": str(keywords["port"]),
        "dbname": keywords["dbname"],
        "user": keywords["user"],
        "password": keywords.get("password", ""),
    }
    if "POSTGRES_CONNECT_TIMEOUT" in extra:
        assert keywords["connect_timeout"] == pool.timeout == 9
    assert ours.schema == "s1"
    assert "x port=1" not in repr(ours) and "prefixed" not in repr(ours)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("POSTGRES_HOST", ""),
        ("POSTGRES_PORT", "5432x"),
        ("POSTGRES_PORT", "70000"),
        ("POSTGRES_CONNECT_TIMEOUT", "0"),
        ("POSTGRES_GET_PASSWORD_TOPIC", "no.such.module:f"),
        ("POSTGRES_GET_PASSWORD_TOPIC", f"{__name__}:TOKEN_SECRET"),
    ],
)
def test_a_bad_connection_setting_is_named(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{variable}: ") as caught:
        postgres_connection({**postgres_env("s1"), variable: value})
    assert TOKEN_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("host", "port", "attrs", "expected"),
    [
        ("db", "", "", ("db", "5432", None)),
        ("a,b", "6543", "", ("a,b", "6543", "read-write")),  # one port for both
        ("a, b", "1,2", "", ("a,b", "1,2", "read-write")),
        ("a,b", "1,2", "any", ("a,b", "1,2", "any")),  # an explicit choice wins
        ("db", "5432", "read-write", ("db", "5432", "read-write")),
    ],
)
def test_several_hosts_reach_the_primary(
    host: str, port: str, attrs: str, expected: tuple[str, str, str | None]
) -> None:
    env = {**postgres_env("s1"), "POSTGRES_HOST": host, "POSTGRES_PORT": port}
    env["POSTGRES_TARGET_SESSION_ATTRS"] = attrs
    connection = postgres_connection(env)
    keywords = connection.keywords()
    assert (keywords["host"], keywords["port"], keywords.get("target_session_attrs")) == expected
    assert connection.address.count(":") == host.count(",") + 1


def test_eventsourcing_pool_gets_the_same_session_attrs_and_timeout() -> None:
    env = {**postgres_env("s1"), "POSTGRES_HOST": "a,b", "POSTGRES_PORT": "1,2"}
    environment = Environment(OnboardingApplication.name, {**env, "POSTGRES_CONNECT_TIMEOUT": "3"})
    factory = PostgresFactory(environment)  # builds the pool, connects nothing
    configure_pool(factory, environment)
    kwargs = factory.datastore.pool.kwargs
    assert isinstance(kwargs, dict)
    assert kwargs["target_session_attrs"] == "read-write"
    assert kwargs["connect_timeout"] == 3
    assert (kwargs["host"], kwargs["port"]) == ("a,b", "1,2")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("POSTGRES_PORT", "1,70000", "each port"),
        ("POSTGRES_PORT", "1,2,3", "3 ports"),
        ("POSTGRES_PORT", "1,", "each port"),
        ("POSTGRES_HOST", "a,,b", "empty host"),
        ("POSTGRES_TARGET_SESSION_ATTRS", "writable", "one of"),
    ],
)
def test_a_bad_host_list_is_named(variable: str, value: str, message: str) -> None:
    env = {**postgres_env("s1"), "POSTGRES_HOST": "a,b", "POSTGRES_PORT": "1,2", variable: value}
    with pytest.raises(ConfigurationError, match=f"^{variable}: .*{message}"):
        postgres_connection(env)
