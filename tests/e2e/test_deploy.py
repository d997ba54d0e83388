"""The container image and Kubernetes manifests agree with the code that reads them.

They cannot be built or applied here (no Docker engine, no cluster), so this checks
what must agree: every variable a manifest sets is one the configuration reads, the
probe paths are ones the health servers answer, ports line up, the grace period covers
the process's own, the image runs as a non-root user with a health check that asks
whichever process runs (tried against a real ``a4c-api``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from a4c_api.cli import new_key
from a4c_api.settings import ApiSettings
from a4c_api.settings import load_settings as load_api_settings
from a4c_domain.persistence import is_store_variable
from a4c_projector.settings import ProjectorSettings
from a4c_worker.config import ACCEPT_PATH, WorkerSettings, load_settings
from tests.support import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROBE_PATHS = {"/health", "/ready"}
HEALTHCHECK = DEPLOY / "healthcheck.py"


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def worker_reads(variable: str) -> bool:
    return variable.lower() in WorkerSettings.model_fields or is_store_variable(variable)


def api_reads(variable: str) -> bool:
    return variable.lower() in ApiSettings.model_fields or is_store_variable(variable)


def projector_reads(variable: str) -> bool:
    reads = {f"PROJECTOR_{name.upper()}" for name in ProjectorSettings.model_fields}
    return variable in reads or is_store_variable(variable)


def secret_keys(name: str = "a4c-secrets") -> set[str]:
    (secret,) = [d for d in documents("secret.example.yaml") if d["metadata"]["name"] == name]
    return set(secret["stringData"])


def secret_ref(deployment: dict[str, Any]) -> str:
    (ref,) = [s["secretRef"]["name"] for s in container(deployment)["envFrom"] if "secretRef" in s]
    return str(ref)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def check_probes(deployment: dict[str, Any], port: int) -> None:
    main = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        http = main[probe]["httpGet"]
        assert http["path"] in PROBE_PATHS
        assert ports[http["port"]] == port
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == "/ready"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == port
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0
    assert main["resources"]["requests"] and main["resources"]["limits"]


def test_worker_manifest_agrees_with_worker_settings() -> None:
    docs = documents("worker.yaml")
    config = of_kind(docs, "ConfigMap")["data"]
    unknown = [v for v in config if not worker_reads(v)]
    assert unknown == [], f"variables the worker never reads: {unknown}"
    assert [v for v in secret_keys() if not worker_reads(v)] == []

    # The config map plus the example secret is a complete, valid production config.
    environ = {**config, **{k: "x" * 40 for k in secret_keys()}}
    environ["RFC2136_KEY_SECRET"] = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"
    environ["CIPHER_KEY"] = "A" * 43 + "="
    settings = load_settings(environ)
    assert settings.workflow_mode == "production"

    deployment = of_kind(docs, "Deployment")
    assert secret_ref(deployment) == "a4c-secrets"
    check_probes(deployment, settings.health_port)
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.shutdown_grace_seconds
    assert deployment["spec"]["replicas"] >= 2


def test_projector_manifest_agrees_with_projector_settings() -> None:
    docs = documents("projector.yaml")
    config = of_kind(docs, "ConfigMap")["data"]
    unknown = [v for v in config if not projector_reads(v)]
    assert unknown == [], f"variables the projector never reads: {unknown}"
    deployment = of_kind(docs, "Deployment")
    # Its secret holds only what it reads: never the token key, TSIG key or SMTP login.
    secrets = secret_keys(secret_ref(deployment))
    assert secrets and [v for v in secrets if not is_store_variable(v)] == []
    assert deployment["spec"]["replicas"] == 2  # one active, one standby
    check_probes(deployment, int(config["PROJECTOR_HTTP_PORT"]))


def test_api_manifest_agrees_with_api_settings() -> None:
    docs = documents("api.yaml")
    config = of_kind(docs, "ConfigMap")["data"]
    assert [v for v in config if not api_reads(v)] == [], "variables a4c-api never reads"
    deployment = of_kind(docs, "Deployment")
    secrets = secret_keys(secret_ref(deployment))
    assert [v for v in secrets if not api_reads(v)] == []
    # Only the worker derives tokens; the API decodes no event.
    assert not secrets & {"A4C_TOKEN_SECRET", "CIPHER_KEY", "RFC2136_KEY_SECRET"}

    # The config map plus the example secret is a complete, valid production config.
    _, grant = new_key("ci", None)
    environ = {**config, **{k: "x" * 40 for k in secrets}, "API_KEYS": grant.entry()}
    settings = load_api_settings(environ)
    assert settings.production and not settings.dev_sign_in
    # The links the worker mails lead to this service's accept page.
    worker_config = of_kind(documents("worker.yaml"), "ConfigMap")["data"]
    assert worker_config["ACCEPT_URL_BASE"] == settings.api_public_url + ACCEPT_PATH
    assert settings.temporal_task_queue == worker_config["TEMPORAL_TASK_QUEUE"]

    assert deployment["spec"]["replicas"] == 2
    check_probes(deployment, settings.api_port)
    main = container(deployment)
    assert main["args"] == ["a4c-api", "run"]
    pod = deployment["spec"]["template"]["spec"]
    pause = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > pause + settings.api_shutdown_grace_seconds
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert main["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = of_kind(docs, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in {p["name"] for p in main["ports"]}
    budget = of_kind(docs, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def image_env(dockerfile: str) -> dict[str, str]:
    """The ``ENV`` instructions' ``NAME=value`` pairs (continuation lines joined)."""
    joined = dockerfile.replace("\\\n", " ")
    found: dict[str, str] = {}
    for row in joined.splitlines():
        if row.startswith("ENV "):
            for pair in row.split()[1:]:
                name, _, value = pair.partition("=")
                found[name] = value
    return found


def test_image_ports_are_the_manifests_and_each_process_reads_its_own() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    env = image_env(dockerfile)
    assert env["API_PORT"] == of_kind(documents("api.yaml"), "ConfigMap")["data"]["API_PORT"]
    assert (
        env["HEALTH_PORT"] == of_kind(documents("worker.yaml"), "ConfigMap")["data"]["HEALTH_PORT"]
    )
    projector = of_kind(documents("projector.yaml"), "ConfigMap")["data"]
    assert env["PROJECTOR_HTTP_PORT"] == projector["PROJECTOR_HTTP_PORT"]
    exposed = next(row for row in dockerfile.splitlines() if row.startswith("EXPOSE"))
    assert sorted(exposed.split()[1:]) == sorted(
        env[v] for v in ("API_PORT", "HEALTH_PORT", "PROJECTOR_HTTP_PORT")
    )
    assert api_reads("API_PORT") and worker_reads("HEALTH_PORT")
    assert projector_reads("PROJECTOR_HTTP_PORT")


def run_healthcheck(port: int) -> int:
    """The image's health check, with this port as every process's."""
    ports = {v: str(port) for v in ("API_PORT", "HEALTH_PORT", "PROJECTOR_HTTP_PORT")}
    done = subprocess.run(
        [sys.executable, str(HEALTHCHECK)], env=os.environ | ports, timeout=30, check=False
    )
    return done.returncode


def test_the_image_health_check_asks_the_api_in_an_api_container(tmp_path: Path) -> None:
    port = free_port()
    assert run_healthcheck(port) == 1  # nothing answers yet: unhealthy
    env = {
        "API_PORT": str(port),
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # none there: /health answers anyway
    }
    api = subprocess.Popen(
        [str(Path(sys.executable).parent / "a4c-api"), "run"],
        env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while run_healthcheck(port) != 0:
            assert api.poll() is None, api.communicate()[1]
            assert time.monotonic() < deadline, "a4c-api never answered /health"
            time.sleep(0.3)
    finally:
        api.terminate()
        _, err = api.communicate(timeout=60)
    assert api.returncode == 0, err  # SIGTERM is a clean stop


@pytest.mark.parametrize(
    "line",
    [
        "USER 10001:10001",
        "COPY sql /app/sql",
        "COPY deploy/healthcheck.py /app/healthcheck.py",
        'CMD ["python", "/app/healthcheck.py"]',
    ],
)
def test_image_definition(line: str) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert line in dockerfile
    assert 'CMD ["python", "/app/healthcheck.py"]' in dockerfile.split("HEALTHCHECK", 1)[1]
    assert "/health" in HEALTHCHECK.read_text()
