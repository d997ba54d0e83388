"""The container image and Kubernetes manifests agree with the code that reads them.

They cannot be built or applied here (no Docker engine, no cluster), so this checks
what must agree: every variable a manifest sets is one the configuration reads, the
probe paths are ones the health servers answer, ports line up, the grace period covers
the worker's, the image runs as a non-root user with a health check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from a4c_domain.persistence import is_store_variable
from a4c_worker.config import WorkerSettings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROBE_PATHS = {"/health", "/ready"}


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / "k8s" / name).read_text()) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def worker_reads(variable: str) -> bool:
    return variable.lower() in WorkerSettings.model_fields or is_store_variable(variable)


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
    from a4c_projector.settings import ProjectorSettings

    docs = documents("projector.yaml")
    config = of_kind(docs, "ConfigMap")["data"]
    reads = {f"PROJECTOR_{name.upper()}" for name in ProjectorSettings.model_fields}
    unknown = [v for v in config if v not in reads and not is_store_variable(v)]
    assert unknown == [], f"variables the projector never reads: {unknown}"
    deployment = of_kind(docs, "Deployment")
    # Its secret holds only what it reads: never the token key, TSIG key or SMTP login.
    secrets = secret_keys(secret_ref(deployment))
    assert secrets and [v for v in secrets if not is_store_variable(v)] == []
    assert deployment["spec"]["replicas"] == 2  # one active, one standby
    check_probes(deployment, int(config["PROJECTOR_HTTP_PORT"]))


@pytest.mark.parametrize("line", ["USER 10001:10001", "HEALTHCHECK", "COPY sql /app/sql"])
def test_image_definition(line: str) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert line in dockerfile
    exposed = next(row for row in dockerfile.splitlines() if row.startswith("EXPOSE"))
    assert exposed.split()[1:] == ["8081", "8082"]
    assert "/health" in dockerfile.split("HEALTHCHECK", 1)[1]
