"""The image's HEALTHCHECK: healthy when the a4c process in this container answers /health.

One image runs any of the three processes (``a4c-worker``, ``a4c-projector``,
``a4c-api``), one per container, each with its own port; the image sets each port's
variable (``ENV`` in deploy/Dockerfile), and a run may change it. So this asks each
process's port in turn: the one process running answers, the others' ports are closed
(refused at once). Standard library only, so a check costs a bare interpreter start.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

# Each process's port variable, as its own settings read it.
PORT_VARIABLES = ("HEALTH_PORT", "PROJECTOR_HTTP_PORT", "API_PORT")
TIMEOUT_SECONDS = 2.0


def healthy(port: str) -> bool:
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def main() -> int:
    ports = {os.environ[name] for name in PORT_VARIABLES if os.environ.get(name)}
    return 0 if any(healthy(port) for port in sorted(ports)) else 1


if __name__ == "__main__":
    sys.exit(main())
