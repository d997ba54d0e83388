"""The event store's configuration: which module, and how to reach PostgreSQL.

eventsourcing's ``PostgresFactory`` reads ``POSTGRES_*`` into the keyword arguments of
its connection pool. Code that opens its own connections to the same database (the
projector, ``a4c validate``) reads the connection variables here, the one place outside
eventsourcing that does, so a password, a password topic or a port means the same to
both. The result is libpq keywords, never a joined string: psycopg quotes each value
(``psycopg.connect(**keywords)``, ``psycopg.conninfo.make_conninfo``), so a password
holding spaces, quotes or ``x port=1`` stays one value.

Read here (eventsourcing 9.5's names): ``POSTGRES_HOST``, ``POSTGRES_PORT``,
``POSTGRES_DBNAME``, ``POSTGRES_USER``, ``POSTGRES_PASSWORD``,
``POSTGRES_GET_PASSWORD_TOPIC`` (``module:function`` returning a password, called for
every new connection: short-lived cloud IAM tokens), ``POSTGRES_CONNECT_TIMEOUT``
(whole seconds; eventsourcing waits that long for a pool connection, and every
connection, the pool's too, gives up on one host after it) and ``POSTGRES_SCHEMA``.

A replicated PostgreSQL: ``POSTGRES_HOST`` and ``POSTGRES_PORT`` may be comma-separated
lists (libpq's multi-host form: one port for all hosts, or one per host), tried in turn;
``POSTGRES_TARGET_SESSION_ATTRS`` (a4c's, libpq's ``target_session_attrs``; default
``read-write`` when more than one host is given) keeps only the primary. It applies to
eventsourcing's pool as well (:func:`configure_pool`), not through libpq's process-wide
``PGTARGETSESSIONATTRS``: a library must not change its host process's environment, and
one process may reach two databases. The pool's own
settings (``POSTGRES_POOL_SIZE``, ``..._MAX_OVERFLOW``, ``..._CONN_MAX_AGE``...) concern
only eventsourcing's pool. TLS: eventsourcing has no variable for it; libpq's
``PGSSLMODE``, ``PGSSLROOTCERT``, ``PGSSLCERT``... apply to every connection of the
process, eventsourcing's and ours alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from eventsourcing.utils import TopicError, resolve_topic, strtobool

from a4c_domain.errors import ConfigurationError

PERSISTENCE_MODULE_VAR = "PERSISTENCE_MODULE"
SQLITE_DBNAME_VAR = "SQLITE_DBNAME"
# The embedded default store: a SQLite file (relative to the working directory).
DEFAULT_PERSISTENCE_MODULE = "eventsourcing.sqlite"
DEFAULT_SQLITE_DBNAME = "a4c-events.sqlite"
# The eventsourcing variables every entry point hands to the event store (the worker's
# writes and the projector's reads must agree on all of them). Not ORIGINATOR_ID_TYPE,
# TRANSCODER_TOPIC or MAPPER_TOPIC: the domain's ids and codec are fixed.
STORE_PREFIXES = ("POSTGRES_", "SQLITE_", "CIPHER_")
STORE_NAMES = frozenset(
    {PERSISTENCE_MODULE_VAR, "COMPRESSOR_TOPIC", "SINGLE_ROW_TRACKING", "CREATE_TABLE"}
)

PersistenceModule = Literal["eventsourcing.sqlite", "eventsourcing.postgres"]
PERSISTENCE_MODULES: tuple[str, ...] = get_args(PersistenceModule)
PASSWORD_VAR = "POSTGRES_PASSWORD"  # noqa: S105 - the variable's name
PASSWORD_TOPIC_VAR = "POSTGRES_GET_PASSWORD_TOPIC"  # noqa: S105 - the variable's name
TIMEOUT_VAR = "POSTGRES_CONNECT_TIMEOUT"
HOST_VAR = "POSTGRES_HOST"
PORT_VAR = "POSTGRES_PORT"
SESSION_ATTRS_VAR = "POSTGRES_TARGET_SESSION_ATTRS"
# libpq's values for target_session_attrs (PostgreSQL 14+ clients).
SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")
# With several hosts, only the primary takes writes: connect to no other by default.
MULTI_HOST_SESSION_ATTRS = "read-write"
DEFAULT_PORT = "5432"
# Our own connections: long enough for a TLS handshake across a region, short enough
# that a wrong address is reported while the operator is still looking.
DEFAULT_CONNECT_TIMEOUT = 5


def is_store_variable(name: str) -> bool:
    return name in STORE_NAMES or name.startswith(STORE_PREFIXES)


@dataclass(frozen=True)
class PostgresConnection:
    """Where the PostgreSQL event store is and how to log in (the password is never shown)."""

    host: str  # one host, or libpq's comma-separated list
    port: str  # one port for every host, or one per host (comma-separated)
    dbname: str
    user: str
    schema: str
    connect_timeout: int
    password: str | None = field(default=None, repr=False)
    get_password: Callable[[], str] | None = field(default=None, repr=False, compare=False)
    target_session_attrs: str | None = None  # None: libpq's own default (any)

    @property
    def address(self) -> str:
        hosts, ports = self.host.split(","), self.port.split(",")
        return ",".join(f"{h}:{ports[min(i, len(ports) - 1)]}" for i, h in enumerate(hosts))

    def keywords(self, *, with_password: bool = True) -> dict[str, Any]:
        """libpq keywords; a password topic is asked now (its tokens may be short-lived)."""
        found: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            **self.pool_keywords(),
        }
        password = self.current_password() if with_password else None
        if password:  # none: trust, peer or ~/.pgpass, as libpq decides
            found["password"] = password
        return found

    def pool_keywords(self) -> dict[str, Any]:
        """What eventsourcing's pool does not pass to libpq itself (:func:`configure_pool`)."""
        found: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if self.target_session_attrs is not None:
            found["target_session_attrs"] = self.target_session_attrs
        return found

    def current_password(self) -> str | None:
        return self.get_password() if self.get_password is not None else self.password


def postgres_connection(env: Mapping[str, str]) -> PostgresConnection:
    """Read the connection variables; a missing or bad one raises ConfigurationError naming it.

    Pass the application's ``Environment`` to honour its prefixed names
    (``A4C_POSTGRES_HOST`` before ``POSTGRES_HOST``), as eventsourcing does.
    """

    def required(name: str) -> str:
        value = env.get(name)
        if not value:
            raise ConfigurationError(f"{name}: required when {PERSISTENCE_MODULE_VAR} is postgres")
        return value

    def whole(name: str, default: int, low: int, high: int) -> int:
        text = env.get(name) or str(default)
        if not text.strip().isdigit() or not low <= int(text) <= high:
            raise ConfigurationError(f"{name}: must be a whole number from {low} to {high}")
        return int(text)

    hosts = [h.strip() for h in required(HOST_VAR).split(",")]
    if not all(hosts):
        raise ConfigurationError(f"{HOST_VAR}: an empty host in the list")
    try:
        ports = port_list(env.get(PORT_VAR) or DEFAULT_PORT).split(",")
    except ValueError as exc:
        raise ConfigurationError(f"{PORT_VAR}: {exc}") from None
    if len(ports) not in (1, len(hosts)):
        raise ConfigurationError(
            f"{PORT_VAR}: one port for every host, or one per host in {HOST_VAR} "
            f"({len(hosts)} hosts, {len(ports)} ports)"
        )
    attrs = (env.get(SESSION_ATTRS_VAR) or "").strip() or None
    if attrs is None and len(hosts) > 1:
        attrs = MULTI_HOST_SESSION_ATTRS
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise ConfigurationError(f"{SESSION_ATTRS_VAR}: must be one of {', '.join(SESSION_ATTRS)}")
    get_password: Callable[[], str] | None = None
    topic = env.get(PASSWORD_TOPIC_VAR)
    if topic:
        try:
            get_password = resolve_topic(topic)
        except TopicError:
            raise ConfigurationError(f"{PASSWORD_TOPIC_VAR}: cannot import {topic!r}") from None
        if not callable(get_password):
            raise ConfigurationError(f"{PASSWORD_TOPIC_VAR}: {topic!r} is not a function")
    return PostgresConnection(
        host=",".join(hosts),
        port=",".join(ports),
        dbname=required("POSTGRES_DBNAME"),
        user=required("POSTGRES_USER"),
        schema=(env.get("POSTGRES_SCHEMA") or "").strip() or "public",
        connect_timeout=whole(TIMEOUT_VAR, DEFAULT_CONNECT_TIMEOUT, 1, 3600),
        password=None if topic else env.get(PASSWORD_VAR),
        get_password=get_password,
        target_session_attrs=attrs,
    )


def port_list(text: str) -> str:
    """``POSTGRES_PORT`` normalised: one port, or libpq's comma-separated list (one per
    host); ValueError naming the rule otherwise. The worker's settings check it too."""
    ports = [p.strip() for p in str(text).split(",")]
    if not all(p.isdigit() and 1 <= int(p) <= 65535 for p in ports):
        raise ValueError("each port must be a whole number from 1 to 65535")
    return ",".join(str(int(p)) for p in ports)


def configure_pool(factory: object, env: Mapping[str, str]) -> None:
    """Give eventsourcing's PostgreSQL pool (not yet open) what its own variables cannot:
    ``target_session_attrs`` and libpq's per-host ``connect_timeout``.

    eventsourcing builds its pool's libpq keywords from five variables; the pool
    (psycopg_pool) reads its ``kwargs`` again for every connection it opens, so adding
    to them before the first one is enough. Any other store (SQLite): nothing to do.
    """
    pool = getattr(getattr(factory, "datastore", None), "pool", None)
    kwargs = getattr(pool, "kwargs", None)
    if isinstance(kwargs, dict):
        kwargs.update(postgres_connection(env).pool_keywords())


# libpq's reasons for a failed connection, by the variable that fixes them.
CONNECT_FAILURES = (
    (re.compile(r'database "([^"]*)" does not exist'), "POSTGRES_DBNAME"),
    (re.compile(r'role "([^"]*)" does not exist'), "POSTGRES_USER"),
    (re.compile(r"password|authentication failed"), PASSWORD_VAR),
    (re.compile(r"resolve host|translate host name"), HOST_VAR),
    # Every host answered, none as target_session_attrs asks (no primary among them).
    (
        re.compile(r"session is read-only|server is in hot standby|not in hot standby"),
        SESSION_ATTRS_VAR,
    ),
    (re.compile(r"SSL"), "PGSSLMODE"),  # libpq's TLS variables (see the module's notes)
)


def connect_failure(connection: PostgresConnection, error: Exception) -> str:
    """Why connecting failed (the first line of libpq's ``error``), as one line naming
    the variable to fix, with no password in it: for every process that connects once
    itself rather than let eventsourcing's pool wait out its timeout."""
    text = str(error).strip()
    reason = text.splitlines()[0] if text else type(error).__name__
    if connection.password:  # libpq does not quote it; never let a future version
        reason = reason.replace(connection.password, "***")
    where = f"PostgreSQL at {connection.address}, database {connection.dbname!r}"
    unreachable = "POSTGRES_HOST/POSTGRES_PORT"
    if "timeout expired" in reason:
        seconds = f"{connection.connect_timeout} s ({TIMEOUT_VAR})"
        return f"{unreachable}: no answer from {where} within {seconds}"
    for pattern, variable in CONNECT_FAILURES:
        if pattern.search(reason):
            if variable == PASSWORD_VAR and connection.get_password is not None:
                variable = PASSWORD_TOPIC_VAR
            return f"{variable}: {where}: {reason}"
    return f"{unreachable}: cannot connect to {where}: {reason}"


# eventsourcing's yes/no variables: it raises a ValueError that names no variable. The
# defaults are a4c's: the lock-free insert path is on (OnboardingApplication.env), where
# eventsourcing's own default is off.
FLAG_DEFAULTS = {
    "CREATE_TABLE": True,
    "SINGLE_ROW_TRACKING": True,
    "POSTGRES_ENABLE_DB_FUNCTIONS": True,
    "POSTGRES_PRE_PING": False,
}


def store_flags(env: Mapping[str, str]) -> dict[str, bool]:
    """The yes/no store variables read as eventsourcing reads them; a bad one is named."""
    flags = {}
    for name, default in FLAG_DEFAULTS.items():
        text = env.get(name) or ""
        try:
            flags[name] = strtobool(text) if text else default
        except ValueError:
            raise ConfigurationError(f"{name}: must be yes or no, not {text!r}") from None
    return flags


def default_to_no_password(env: MutableMapping[str, str]) -> None:
    """Unset ``POSTGRES_PASSWORD`` means no password (trust, peer or ``~/.pgpass``).

    eventsourcing refuses to start without the variable or a password topic; libpq
    needs neither. An empty password is what libpq treats as none.
    """
    if env.get(PASSWORD_VAR) is None and not env.get(PASSWORD_TOPIC_VAR):
        env[PASSWORD_VAR] = ""
