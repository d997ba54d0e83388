"""A container health check for one a4c process: ``python healthcheck.py <process>``.

``<process>`` is ``worker``, ``projector``, ``api`` or ``webhooks``. One image runs any
of the four processes, one per container, each answering ``/health`` on its own port;
the image has no ``HEALTHCHECK`` (Kubernetes ignores it and probes each process itself,
deploy/k8s/), so a runtime that wants one (Compose) names the process it runs and this
asks that process's port only: a projector container is never reported healthy because
some other port answers, nor unhealthy because the worker's is closed.
Standard library only, so a check costs a bare interpreter start. Exit 0 healthy, 1 not,
2 usage.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping

# Each process's listening address, as its own settings read it (WorkerSettings,
# ProjectorSettings, ApiSettings, WebhookSettings; tests/e2e/test_deploy.py checks the
# names).
PROCESSES = {
    "worker": ("HEALTH_HOST", "HEALTH_PORT"),
    "projector": ("PROJECTOR_HTTP_HOST", "PROJECTOR_HTTP_PORT"),
    "api": ("API_HOST", "API_PORT"),
    "webhooks": ("WEBHOOK_HTTP_HOST", "WEBHOOK_HTTP_PORT"),
}
# A process listening on every address is asked on loopback.
ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
TIMEOUT_SECONDS = 2.0


def health_url(environ: Mapping[str, str], process: str) -> str | None:
    """Where ``process`` answers ``/health``; None when its port variable is not set."""
    host_var, port_var = PROCESSES[process]
    port = environ.get(port_var, "")
    if not port.isdigit():
        return None
    host = environ.get(host_var, "").strip()
    host = ANY_ADDRESS.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/health"


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROCESSES:
        print(f"usage: healthcheck.py {'|'.join(PROCESSES)}", file=sys.stderr)
        return 2
    url = health_url(os.environ, argv[0])
    if url is None:
        print(f"{PROCESSES[argv[0]][1]} is not set to a port", file=sys.stderr)
        return 1
    return 0 if healthy(url) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
