"""BIND 9 for tests: a real ``named`` serving a zone that accepts TSIG-signed updates.

One server per test session on a free loopback port (UDP and TCP). ``named`` must be
installed (``scripts/setup.sh`` does it); if it is not, the fixture errors — never skips.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest

from tests.support import free_port

NAMED_CANDIDATES = ("/usr/sbin/named", "named")
TEST_ZONE = "test.a4c.internal."
KEY_NAME = "a4c-test"
KEY_ALGORITHM = "hmac-sha256"
START_TIMEOUT = 15.0


@dataclass(frozen=True)
class BindServer:
    """How to reach the test BIND and sign updates for its zone."""

    host: str
    port: int
    zone: str
    key_name: str
    secret: str
    algorithm: str
    directory: Path

    def fqdn(self, label: str) -> str:
        """An absolute name inside the test zone."""
        return f"{label}.{self.zone}"

    def add_record(self, fqdn: str, rdtype: str, data: str, ttl: int = 300) -> None:
        """Publish a record as someone else would (an operator, another tool, a domain's
        owner): a TSIG-signed update, not through any provider of a4c's."""
        keyring = dns.tsigkeyring.from_text({self.key_name: self.secret})
        update = dns.update.UpdateMessage(
            self.zone, keyring=keyring, keyalgorithm=dns.name.from_text(self.algorithm)
        )
        update.add(fqdn, ttl, rdtype, data)
        response = dns.query.tcp(update, self.host, port=self.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, response


def find_named() -> str:
    for candidate in NAMED_CANDIDATES:
        path = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if path:
            return path
    raise RuntimeError(
        "BIND 9 `named` is required for the DNS tests but was not found: "
        "run scripts/setup.sh or `apt-get install bind9 bind9-utils`"
    )


def write_config(
    directory: Path, host: str, port: int, secret: str, *, other_zones: Sequence[str] = ()
) -> Path:
    """``named.conf`` serving :data:`TEST_ZONE` and ``other_zones`` (customers' domains,
    say), each updatable with the ``a4c-test`` key."""
    zones = [TEST_ZONE.rstrip("."), *(z.rstrip(".") for z in other_zones)]
    for zone in zones:
        (directory / _zone_file(zone)).write_text(
            "$TTL 300\n"
            f"@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 86400 60\n"
            "@ IN NS ns1\n"
            f"ns1 IN A {host}\n"
        )
    stanzas = "".join(
        f"""zone "{zone}" {{
    type primary;
    file "{directory}/{_zone_file(zone)}";
    allow-update {{ key "{KEY_NAME}"; }};
}};
"""
        for zone in zones
    )
    conf = directory / "named.conf"
    conf.write_text(
        f"""
options {{
    directory "{directory}";
    pid-file "{directory}/named.pid";
    session-keyfile "{directory}/session.key";
    managed-keys-directory "{directory}";
    listen-on port {port} {{ {host}; }};
    listen-on-v6 {{ none; }};
    recursion no;
    allow-query {{ any; }};
    dnssec-validation no;
    notify no;
}};
controls {{ }};
key "{KEY_NAME}" {{ algorithm {KEY_ALGORITHM}; secret "{secret}"; }};
{stanzas}"""
    )
    return conf


def _zone_file(zone: str) -> str:
    return "zone.db" if zone == TEST_ZONE.rstrip(".") else f"{zone}.db"


def wait_for_soa(process: subprocess.Popen[bytes], host: str, port: int, log: Path) -> None:
    query = dns.message.make_query(TEST_ZONE, "SOA")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"named exited with {process.returncode}:\n{log.read_text()}")
        try:
            response = dns.query.udp(query, host, port=port, timeout=0.5)
        except (OSError, dns.exception.Timeout):
            time.sleep(0.1)
            continue
        if response.rcode() == dns.rcode.NOERROR and response.answer:
            return
        time.sleep(0.1)
    raise RuntimeError(
        f"named did not serve {TEST_ZONE} within {START_TIMEOUT}s:\n{log.read_text()}"
    )


@pytest.fixture(scope="session")
def bind_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BindServer]:
    """A running ``named`` for the whole session; updates need the ``a4c-test`` TSIG key."""
    named = find_named()
    directory = tmp_path_factory.mktemp("bind")
    directory.chmod(0o777)  # named may switch to the `bind` user and must write its journal
    host, port = "127.0.0.1", free_port()
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    conf = write_config(directory, host, port, secret)
    log = directory / "named.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [named, "-g", "-n", "1", "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=directory,
        )
    try:
        wait_for_soa(process, host, port, log)
        yield BindServer(host, port, TEST_ZONE, KEY_NAME, secret, KEY_ALGORITHM, directory)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
