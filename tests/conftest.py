"""Shared fixtures: each real server is a plugin module under tests/servers (PostgreSQL
with ``fresh_schema``, Temporal, BIND, SMTP, uvicorn's ``serve_asgi``, Chromium's
``browser``/``page``, the OpenID provider ``oidc_provider``, nginx terminating TLS in
front of Temporal ``tls_proxy``); the token secret, ``free_port`` and ``wait_for`` are
in tests/support.py; an empty event store on each backend (``store``) and an
application on it (``app``) in tests/stores.py."""

import logging
from collections.abc import Iterator

import pytest

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.bind",
    "tests.servers.smtp",
    "tests.servers.temporal",
    "tests.servers.http",
    "tests.servers.browser",
    "tests.servers.oidc",
    "tests.servers.tlsproxy",
    "tests.stores",
]


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """An entry point run in-process (``cli.main``) points the root logger at the
    stderr pytest captured for that test; later tests' threads (aiosmtpd's) would then
    log to a closed stream. Put the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
