"""A secured Temporal for tests: Debian's nginx terminating TLS in front of the dev server.

The dev server speaks plain gRPC only; Temporal Cloud and secured clusters speak TLS and
authenticate a client by its certificate (mTLS) or by an API key. nginx (``grpc_pass``,
installed by scripts/setup.sh --tests) plays that part, with throwaway certificates made here
(``cryptography``), on two listeners:

- ``api_key_address``: TLS, and every call must carry ``authorization: Bearer <api_key>``
  (what the SDK sends for ``TEMPORAL_API_KEY``); any other is answered 401.
- ``mtls_address``: TLS with a client certificate signed by the test CA required.

The server certificate names ``SERVER_NAME`` only (not 127.0.0.1), so a client verifies it
only when told the name (``TEMPORAL_TLS_SERVER_NAME``). ``Pki.other_ca`` signed nothing
here: trusting it instead of the test CA must fail. If nginx is missing the fixture
errors, loudly: tests never skip for a missing server.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.testing import WorkflowEnvironment

from tests.support import free_port, wait_for

SERVER_NAME = "temporal.a4c.test"
# Only for the throwaway proxy; distinctive, so a leak check can search for it.
PROXY_API_KEY = "test-temporal-api-key-Zq7vK2-unique"
STARTUP_TIMEOUT = 20.0
# Longer than a worker's long poll (about a minute), so polls are not cut by the proxy.
POLL_TIMEOUT = "600s"


@dataclass(frozen=True)
class Pki:
    """PEM files: a test CA, the proxy's certificate, a client's, and an unrelated CA."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common_name: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert, ca_key = ca
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(folder: Path) -> Pki:
    """A CA, a server certificate for ``SERVER_NAME``, a client certificate, another CA."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca("a4c test CA")
    server_cert, server_key = _leaf(SERVER_NAME, ca, server=True)
    client_cert, client_key = _leaf("a4c-worker", ca, server=False)
    other_ca, _ = _ca("a4c unrelated CA")
    return Pki(
        ca=_write_cert(ca[0], folder / "ca.pem"),
        server_cert=_write_cert(server_cert, folder / "server.pem"),
        server_key=_write_key(server_key, folder / "server-key.pem"),
        client_cert=_write_cert(client_cert, folder / "client.pem"),
        client_key=_write_key(client_key, folder / "client-key.pem"),
        other_ca=_write_cert(other_ca, folder / "other-ca.pem"),
    )


@dataclass(frozen=True)
class TLSProxy:
    pki: Pki
    api_key_address: str  # TLS; the API key required
    mtls_address: str  # TLS; a client certificate required
    api_key: str
    access_log: Path

    def requests(self) -> list[str]:
        """The access log: one ``listener status path`` line per gRPC call."""
        return self.access_log.read_text().splitlines() if self.access_log.exists() else []


def find_nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError(
            "nginx is required for the Temporal TLS tests: scripts/setup.sh --tests installs it "
            "(apt-get install nginx)"
        )
    return found


def _config(folder: Path, pki: Pki, upstream: str, api_key_port: int, mtls_port: int) -> str:
    # Running as root, nginx's workers would drop to "nobody" and could not write here.
    user = "user root root;" if os.geteuid() == 0 else ""
    temp = folder / "temp"
    return f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    log_format calls '$server_port $status $request_uri';
    access_log {folder / "access.log"} calls;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    ssl_certificate {pki.server_cert};
    ssl_certificate_key {pki.server_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    grpc_read_timeout {POLL_TIMEOUT};
    grpc_send_timeout {POLL_TIMEOUT};
    client_body_timeout {POLL_TIMEOUT};
    http2_idle_timeout {POLL_TIMEOUT};
    server {{
        listen 127.0.0.1:{api_key_port} ssl http2;
        server_name {SERVER_NAME};
        # Refused as Temporal Cloud refuses a bad key: a gRPC UNAUTHENTICATED (16) status.
        if ($http_authorization != "Bearer {PROXY_API_KEY}") {{ return 401; }}
        error_page 401 = @unauthenticated;
        location @unauthenticated {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "invalid API key" always;
            return 200;
        }}
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
    server {{
        listen 127.0.0.1:{mtls_port} ssl http2;
        server_name {SERVER_NAME};
        ssl_client_certificate {pki.ca};
        ssl_verify_client on;
        # No or a bad client certificate (nginx's 496/495): a gRPC UNAUTHENTICATED status.
        error_page 495 496 = @no_certificate;
        location @no_certificate {{
            default_type application/grpc;
            add_header grpc-status 16 always;
            add_header grpc-message "a valid client certificate is required" always;
            return 200;
        }}
        location / {{ grpc_pass grpc://{upstream}; }}
    }}
}}
"""


@pytest.fixture(scope="session")
def tls_proxy(
    temporal_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TLSProxy]:
    """nginx on two free ports in front of the session's Temporal dev server."""
    nginx = find_nginx()
    folder = tmp_path_factory.mktemp("tlsproxy")
    (folder / "temp").mkdir()
    pki = make_pki(folder / "pki")
    api_key_port, mtls_port = free_port(), free_port()
    upstream = temporal_env.client.service_client.config.target_host
    conf = folder / "nginx.conf"
    conf.write_text(_config(folder, pki, upstream, api_key_port, mtls_port))
    checked = subprocess.run(
        [nginx, "-t", "-q", "-c", str(conf), "-p", str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if checked.returncode != 0:
        raise RuntimeError(f"nginx refused the proxy's configuration:\n{checked.stderr}")
    log = (folder / "nginx.out").open("wb")
    process = subprocess.Popen(
        [nginx, "-c", str(conf), "-p", str(folder)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not (folder / "nginx.pid").exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"nginx did not start:\n{(folder / 'error.log').read_text(errors='replace')}"
                )
            time.sleep(0.05)
        wait_for(lambda: _listening(api_key_port) and _listening(mtls_port), STARTUP_TIMEOUT)
        yield TLSProxy(
            pki=pki,
            api_key_address=f"127.0.0.1:{api_key_port}",
            mtls_address=f"127.0.0.1:{mtls_port}",
            api_key=PROXY_API_KEY,
            access_log=folder / "access.log",
        )
    finally:
        process.terminate()  # the master stops its workers and exits
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0
