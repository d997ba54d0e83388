"""The container image and Kubernetes manifests agree with the code that reads them.

They cannot be built or applied here (no Docker engine, no cluster), so this checks
what must agree: every variable a manifest sets is one the configuration reads, the
probe paths are ones the health servers answer, ports line up, the grace period covers
the process's own, the pods pass the "restricted" Pod Security level, every 2-replica
Deployment has a disruption budget and every scraped or served port a Service, the image
tag is the package's version, the image is built in two stages from the hashed lock and
runs as a non-root user, and its per-process health check asks only its own process
(tried against a real ``a4c-api``). The validators run here too: ``kubernetes-validate
--strict`` on every manifest and ``hadolint`` on the Dockerfile (both from the test
extra; a missing one fails, it is never skipped).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from a4c_api.cli import new_key
from a4c_api.settings import ApiSettings
from a4c_api.settings import load_settings as load_api_settings
from a4c_domain.persistence import is_store_variable
from a4c_projector.settings import ProjectorSettings
from a4c_webhooks.schedule import DEFAULT_SCHEDULE
from a4c_webhooks.settings import DEFAULT_DISABLE_AFTER, WebhookSettings
from a4c_webhooks.settings import load_settings as load_webhook_settings
from a4c_worker.codec import PayloadKeys
from a4c_worker.config import ACCEPT_PATH, WorkerSettings, load_settings
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))
PROBE_PATHS = {"/health", "/ready"}
HEALTHCHECK = DEPLOY / "healthcheck.py"
BIN = Path(sys.executable).parent
# A valid value where the example secret has a placeholder (the settings parse the keys).
PAYLOAD_KEYS = PayloadKeys.generate("k1").entry()
WEBHOOK_KEYS = PayloadKeys.generate("w1").entry()  # the same format, a key ring of its own
# Each Deployment's manifest, by the process it runs (the health check's names).
PROCESS_MANIFESTS = {"worker", "projector", "api", "webhooks"}


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


def webhooks_reads(variable: str) -> bool:
    return variable.lower() in WebhookSettings.model_fields or is_store_variable(variable)


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


def check_probes(
    deployment: dict[str, Any], port: int, ready_path: str = "/ready", scraped: int | None = None
) -> None:
    """Probed on ``port``; scraped there too, or on ``scraped`` (a listener of its own)."""
    main = container(deployment)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        http = main[probe]["httpGet"]
        assert http["path"] in PROBE_PATHS
        assert ports[http["port"]] == port
    assert main["livenessProbe"]["httpGet"]["path"] == "/health"
    assert main["readinessProbe"]["httpGet"]["path"] == ready_path
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == (port if scraped is None else scraped)
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
    environ["TEMPORAL_PAYLOAD_KEYS"] = PAYLOAD_KEYS
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
    # Ready while alive: a standby is never /ready, and a Deployment whose second pod
    # can never be Ready neither rolls out (maxSurge 0) nor lets its budget evict.
    check_probes(deployment, int(config["PROJECTOR_HTTP_PORT"]), ready_path="/health")


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
    environ["TEMPORAL_PAYLOAD_KEYS"] = PAYLOAD_KEYS
    environ["WEBHOOK_SECRET_KEYS"] = WEBHOOK_KEYS
    settings = load_api_settings(environ)
    assert settings.production and not settings.dev_sign_in
    # It seals the endpoints' secrets the webhooks daemon opens: the same key ring.
    assert settings.webhook_secret_keys is not None
    assert not settings.webhook_allow_private_addresses
    # The links the worker mails lead to this service's accept page.
    worker_config = of_kind(documents("worker.yaml"), "ConfigMap")["data"]
    assert worker_config["ACCEPT_URL_BASE"] == settings.api_public_url + ACCEPT_PATH
    assert settings.temporal_task_queue == worker_config["TEMPORAL_TASK_QUEUE"]

    assert deployment["spec"]["replicas"] == 2
    check_probes(deployment, settings.api_port, scraped=settings.api_metrics_port)
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

    # The front door's Service (the ingress's backend) carries the front door only;
    # /metrics is on a port of its own that only the headless metrics Service names.
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    by_name = {p["name"]: p["containerPort"] for p in main["ports"]}
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
    (port,) = services["a4c-api"]["spec"]["ports"]
    assert by_name[port["targetPort"]] == settings.api_port
    (metrics,) = services["a4c-api-metrics"]["spec"]["ports"]
    assert by_name[metrics["targetPort"]] == settings.api_metrics_port
    assert services["a4c-api-metrics"]["spec"]["clusterIP"] == "None"
    budget = of_kind(docs, "PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_webhooks_manifest_agrees_with_webhooks_settings() -> None:
    docs = documents("webhooks.yaml")
    config = of_kind(docs, "ConfigMap")["data"]
    unknown = [v for v in config if not webhooks_reads(v)]
    assert unknown == [], f"variables a4c-webhooks never reads: {unknown}"
    deployment = of_kind(docs, "Deployment")
    secrets = secret_keys(secret_ref(deployment))
    assert [v for v in secrets if not webhooks_reads(v)] == []
    # It decodes no event (the projector's public rows), derives no token, mails nobody.
    assert not secrets & {"A4C_TOKEN_SECRET", "CIPHER_KEY", "RFC2136_KEY_SECRET"}
    assert not secrets & {"SMTP_USERNAME", "SMTP_PASSWORD"}
    # The API seals the endpoint secrets this daemon opens: both are given the key ring.
    assert "WEBHOOK_SECRET_KEYS" in secrets & secret_keys("a4c-api-secrets")

    # The config map plus the example secret is a complete, valid production config.
    environ = {**config, **{k: "x" * 40 for k in secrets}}
    environ["WEBHOOK_SECRET_KEYS"] = WEBHOOK_KEYS
    environ["TEMPORAL_PAYLOAD_KEYS"] = PAYLOAD_KEYS
    settings = load_webhook_settings(environ)
    assert settings.temporal_problems() == []
    assert settings.webhooks_mode == "production"
    assert not settings.webhook_allow_private_addresses  # nothing inside the cluster
    policy = settings.outbound_policy
    assert not policy.allow_http and not policy.allow_private
    # The stated schedule and disable delay are the documented defaults, not others.
    assert settings.webhook_retry_schedule == DEFAULT_SCHEDULE
    assert settings.webhook_disable_after == DEFAULT_DISABLE_AFTER
    # An automatic disable is the worker's workflow, on the worker's queue.
    worker_config = of_kind(documents("worker.yaml"), "ConfigMap")["data"]
    assert settings.temporal_task_queue == worker_config["TEMPORAL_TASK_QUEUE"]
    assert settings.temporal_address == worker_config["TEMPORAL_ADDRESS"]

    main = container(deployment)
    assert main["args"] == ["a4c-webhooks", "run"]
    assert deployment["spec"]["replicas"] == 2  # one active (the advisory lock), one standby
    # Ready while alive, as the projector: a standby is never /ready.
    check_probes(deployment, settings.webhook_http_port, ready_path="/health")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.webhook_shutdown_grace
    (service,) = [d for d in docs if d["kind"] == "Service"]
    assert service["spec"]["clusterIP"] == "None"  # each replica scraped on its own
    (port,) = service["spec"]["ports"]
    by_name = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert by_name[port["targetPort"]] == settings.webhook_http_port


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
    webhooks = of_kind(documents("webhooks.yaml"), "ConfigMap")["data"]
    assert env["WEBHOOK_HTTP_PORT"] == webhooks["WEBHOOK_HTTP_PORT"]
    exposed = next(row for row in dockerfile.splitlines() if row.startswith("EXPOSE"))
    assert sorted(exposed.split()[1:]) == sorted(
        env[v] for v in ("API_PORT", "HEALTH_PORT", "PROJECTOR_HTTP_PORT", "WEBHOOK_HTTP_PORT")
    )
    assert api_reads("API_PORT") and worker_reads("HEALTH_PORT")
    assert projector_reads("PROJECTOR_HTTP_PORT") and webhooks_reads("WEBHOOK_HTTP_PORT")


def run_healthcheck(process: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The image's health check for ``process``, with these variables (and no others of its)."""
    known = {"API_HOST", "API_PORT", "HEALTH_HOST", "HEALTH_PORT"}
    known |= {"PROJECTOR_HTTP_HOST", "PROJECTOR_HTTP_PORT"}
    known |= {"WEBHOOK_HTTP_HOST", "WEBHOOK_HTTP_PORT"}
    base = {k: v for k, v in os.environ.items() if k not in known}
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), process],
        env=base | env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_the_health_check_asks_only_the_process_it_names(tmp_path: Path) -> None:
    port, closed = str(free_port()), str(free_port())
    assert run_healthcheck("api", API_PORT=port).returncode == 1  # nothing answers yet
    env = {
        "API_MODE": "development",  # no provider nor secrets needed to answer /health
        "API_PORT": port,
        "API_METRICS_PORT": str(free_port()),
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(tmp_path / "events.sqlite"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # none there: /health answers anyway
    }
    api = subprocess.Popen(
        [str(BIN / "a4c-api"), "run"],
        env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # API_HOST as the manifest has it (every address): the check asks loopback.
        while run_healthcheck("api", API_PORT=port, API_HOST="0.0.0.0").returncode != 0:
            assert api.poll() is None, api.communicate()[1]
            assert time.monotonic() < deadline, "a4c-api never answered /health"
            time.sleep(0.3)
        # Another process's check never counts the API's answer: it asks its own port.
        worker = run_healthcheck("worker", API_PORT=port, HEALTH_PORT=closed)
        projector = run_healthcheck("projector", API_PORT=port, HEALTH_PORT=port)
        webhooks = run_healthcheck("webhooks", API_PORT=port, PROJECTOR_HTTP_PORT=port)
        webhooks_closed = run_healthcheck("webhooks", API_PORT=port, WEBHOOK_HTTP_PORT=closed)
        usage = run_healthcheck("scheduler", API_PORT=port)
    finally:
        api.terminate()
        _, err = api.communicate(timeout=60)
    assert api.returncode == 0, err  # SIGTERM is a clean stop
    assert worker.returncode == 1
    assert projector.returncode == 1 and "PROJECTOR_HTTP_PORT is not set" in projector.stderr
    assert webhooks.returncode == 1 and "WEBHOOK_HTTP_PORT is not set" in webhooks.stderr
    assert webhooks_closed.returncode == 1
    assert usage.returncode == 2 and "worker|projector|api|webhooks" in usage.stderr


def test_the_health_check_reads_each_process_own_variables() -> None:
    names = healthcheck_processes()
    assert set(names) == PROCESS_MANIFESTS
    assert all(worker_reads(v) for v in names["worker"])
    assert all(projector_reads(v) for v in names["projector"])
    assert all(api_reads(v) for v in names["api"])
    assert all(webhooks_reads(v) for v in names["webhooks"])
    # The image sets each process's port; the manifests' commands are those processes.
    env = image_env((DEPLOY / "Dockerfile").read_text())
    assert {port for _, port in names.values()} <= env.keys()
    commands = {container(of_kind(documents(f"{p}.yaml"), "Deployment"))["args"][0] for p in names}
    assert commands == {f"a4c-{p}" for p in names}


def healthcheck_processes() -> dict[str, tuple[str, str]]:
    """``PROCESSES`` of deploy/healthcheck.py (a script, not an importable module)."""
    scope: dict[str, Any] = {"__name__": "healthcheck"}
    exec(compile(HEALTHCHECK.read_text(), str(HEALTHCHECK), "exec"), scope)
    found: dict[str, tuple[str, str]] = scope["PROCESSES"]
    return found


def dockerfile_stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), per stage."""
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    stages: list[list[str]] = []
    for row in text.splitlines():
        row = row.strip()
        if not row or row.startswith("#"):
            continue
        if row.startswith("FROM "):
            stages.append([])
        stages[-1].append(" ".join(row.split()))
    return stages


def test_the_image_is_built_in_two_stages_from_the_hashed_lock() -> None:
    build, final = dockerfile_stages()
    assert build[0].startswith("FROM ") and build[0].endswith(" AS build")
    runs = [row for row in build if row.startswith("RUN ")]
    locked = [row for row in runs if "-r requirements.lock" in row]
    assert len(locked) == 1 and "--require-hashes" in locked[0] and "--only-binary" in locked[0]
    # The project on top, adding nothing unlocked; nothing with an extra ("[dev]", "[test]").
    (project,) = [row for row in runs if row.endswith(" .")]
    assert "--no-deps" in project
    assert all("[" not in row for row in runs)
    assert "COPY requirements.lock ./" in build
    # The final stage installs nothing: it copies the built environment and the DDL.
    assert not any("pip" in row for row in final)
    assert "COPY --from=build /opt/a4c /opt/a4c" in final
    assert final[0].split()[1] == build[0].split()[1]  # the environment's own interpreter
    assert image_env("\n".join(final))["PATH"].startswith("/opt/a4c/bin:")
    # No image-wide health check: each process has its own (Kubernetes probes, or
    # healthcheck.py naming the process).
    assert not any(row.startswith("HEALTHCHECK") for row in final)


def test_the_lock_is_made_for_the_image_python() -> None:
    (base,) = {stage[0].split()[1] for stage in dockerfile_stages()}
    header = (ROOT / "requirements.lock").read_text().split("\n", 3)[:3]
    assert f"bash scripts/lock.sh  (for {base}, linux)" in header[1], header


def package_version() -> str:
    """The version pyproject.toml defines (the installed distribution says the same)."""
    declared = str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])
    assert version("a4c") == declared, "reinstall: pip install -e '.[dev,test]'"
    return declared


def deployments() -> dict[str, list[dict[str, Any]]]:
    """Each manifest file with a Deployment: its documents."""
    found = {m.name: documents(m.name) for m in MANIFESTS}
    return {
        name: docs for name, docs in found.items() if any(d["kind"] == "Deployment" for d in docs)
    }


def selects(selector: dict[str, str], deployment: dict[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return bool(selector) and selector.items() <= labels.items()


def test_the_parametrized_checks_cover_every_process_manifest() -> None:
    """They enumerate deploy/k8s/: a process's manifest is there, with its Deployment."""
    assert set(deployments()) == {f"{p}.yaml" for p in PROCESS_MANIFESTS}


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_pod_passes_the_restricted_pod_security_level(name: str) -> None:
    deployment = of_kind(documents(name), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for each in pod["containers"]:
        context = each["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert each["livenessProbe"] and each["readinessProbe"]
        assert "hostPort" not in str(each["ports"])
    assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()


@pytest.mark.parametrize("name", sorted(deployments()))
def test_every_deployment_runs_the_package_version_with_a_budget_and_a_service(name: str) -> None:
    docs = documents(name)
    deployment = of_kind(docs, "Deployment")
    main = container(deployment)
    assert main["image"] == f"a4c:{package_version()}"  # pinned: never a4c:latest
    # Two replicas or more: a node drain may take only one at a time.
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    if deployment["spec"]["replicas"] >= 2:
        (budget,) = budgets
        assert selects(budget["spec"]["selector"]["matchLabels"], deployment)
        assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    # The scraped port (and the API's served one) behind a Service selecting these pods.
    scraped = int(deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"])
    by_name = {p["name"]: p["containerPort"] for p in main["ports"]}
    services = [d for d in docs if d["kind"] == "Service"]
    assert services and all(selects(s["spec"]["selector"], deployment) for s in services)
    targets = {by_name[p["targetPort"]] for s in services for p in s["spec"]["ports"]}
    assert scraped in targets


def tool(name: str) -> str:
    """A validator from the test extra, beside this interpreter; its absence fails the run."""
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{name} is missing from {BIN}: it comes with the test extra "
            f"(bash scripts/setup.sh installs .[dev,test])"
        )
    return str(path)


def run_tool(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )


def test_every_manifest_passes_kubernetes_validate_strict() -> None:
    done = run_tool(tool("kubernetes-validate"), "--strict", *(str(m) for m in MANIFESTS))
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    resources = sum(len(documents(m.name)) for m in MANIFESTS)
    assert output.count(" passed for resource ") == resources, output
    assert "WARN" not in output, output


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The validator is really checking (its schemas are there): a typo fails it."""
    wrong = (DEPLOY / "k8s" / "worker.yaml").read_text().replace("seccompProfile:", "seccomp:")
    (tmp_path / "worker.yaml").write_text(wrong)
    done = run_tool(tool("kubernetes-validate"), "--strict", str(tmp_path / "worker.yaml"))
    assert done.returncode == 1 and "'seccomp' was unexpected" in done.stdout + done.stderr


def test_hadolint_passes_on_the_dockerfile() -> None:
    done = run_tool(tool("hadolint"), "--no-color", "deploy/Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "", done.stdout  # not even an info-level finding


def test_hadolint_rejects_an_unpinned_base_image() -> None:
    """The linter is really checking: the image this one replaced would fail it."""
    done = run_tool(tool("hadolint"), "--no-color", "-", stdin="FROM python:latest\n")
    assert done.returncode == 1 and "DL3007" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize(
    "line",
    [
        "USER 10001:10001",
        "COPY sql /app/sql",
        "COPY deploy/healthcheck.py /app/healthcheck.py",
        'CMD ["a4c-worker", "run"]',
    ],
)
def test_image_definition(line: str) -> None:
    (_, final) = dockerfile_stages()
    assert line in final
    assert "/health" in HEALTHCHECK.read_text()
