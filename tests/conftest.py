"""Shared fixtures: each real server is a plugin module under tests/servers."""

pytest_plugins = [
    "tests.servers.postgres",
    "tests.servers.bind",
    "tests.servers.smtp",
    "tests.servers.temporal",
]
