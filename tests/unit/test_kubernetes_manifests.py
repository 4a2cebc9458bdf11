"""deploy/kubernetes/*.yaml: valid for a pinned Kubernetes version, and wired as documented.

No cluster is reachable where this project is tested, so the manifests are checked
offline: each object against the Kubernetes JSON schemas that ``kubernetes-validate``
ships (strict: unknown fields are errors), then what the schemas cannot see: probes on
the health port each service really opens, every ``COLLABDNN_*`` variable a real option
of the command it configures, the Services selecting the pods, the HPA scaling the
cloud, TLS and the token read from the Secrets' mounted files (docs/kubernetes.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from collabdnn.cli import _build_parser, env_name
from tests.common import REPO

KUBERNETES_VERSION = "1.33"  # the oldest version the manifests are promised for
MANIFESTS = sorted((REPO / "deploy" / "kubernetes").glob("*.yaml"))
SECRETS = {"collabdnn-tls", "collabdnn-token"}
CLOUD_HOST = "collabdnn-cloud.collabdnn.svc.cluster.local"


def _objects() -> list[tuple[Path, dict[str, Any]]]:
    return [
        (path, doc) for path in MANIFESTS for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _objects() if doc["kind"] == kind}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_every_object_validates_against_the_kubernetes_schemas() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    assert MANIFESTS, "no manifests in deploy/kubernetes"
    kinds = set()
    for path, doc in _objects():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.utils.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {where}: {exc}")
        kinds.add(doc["kind"])
        assert doc["metadata"].get("namespace", "collabdnn") == "collabdnn", path.name
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Namespace"} <= kinds


def test_every_environment_variable_is_an_option_of_its_command() -> None:
    for name, deployment in _by_kind("Deployment").items():
        container = _container(deployment)
        [command] = container["args"]
        parser = _build_parser(command)
        sub = next(a for a in parser._actions if a.dest == "command").choices[command]
        options = {env_name(a.dest) for a in sub._actions if a.option_strings}
        unknown = set(_env(container)) - options
        assert not unknown, f"{name}: {sorted(unknown)} are no options of `collabdnn {command}`"


def test_probes_are_native_grpc_on_the_plaintext_health_port() -> None:
    for name, deployment in _by_kind("Deployment").items():
        container = _container(deployment)
        env = _env(container)
        health_port = int(env["COLLABDNN_HEALTH_PORT"])
        assert health_port != int(env["COLLABDNN_PORT"])
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == health_port, (name, probe)
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"grpc": int(env["COLLABDNN_PORT"]), "health": health_port}
        resources = container["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}


def test_tls_and_token_come_from_the_secrets() -> None:
    for name, deployment in _by_kind("Deployment").items():
        spec = deployment["spec"]["template"]["spec"]
        container = _container(deployment)
        env = _env(container)
        assert "COLLABDNN_INSECURE" not in env and "COLLABDNN_TOKEN" not in env, name
        volumes = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"]}
        assert set(volumes.values()) == SECRETS, name
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
        assert all(m["readOnly"] for m in container["volumeMounts"])
        for variable in ("TLS_CERT", "TLS_KEY", "TLS_CA", "TOKEN_FILE"):
            path = env[f"COLLABDNN_{variable}"]
            assert str(Path(path).parent) in mounts, (name, variable, path)
        assert spec["securityContext"]["runAsNonRoot"] is True


def test_cloud_is_headless_autoscaled_and_dialled_round_robin() -> None:
    deployments, services = _by_kind("Deployment"), _by_kind("Service")
    cloud = deployments["collabdnn-cloud"]
    service = services["collabdnn-cloud"]
    assert service["spec"]["clusterIP"] == "None"
    for name, svc in services.items():
        pods = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert svc["spec"]["selector"].items() <= pods.items(), name
        assert deployments[name]["spec"]["selector"]["matchLabels"].items() <= pods.items()
    [hpa] = _by_kind("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "collabdnn-cloud")
    assert hpa["spec"]["minReplicas"] >= 2 and "replicas" in cloud["spec"]
    assert float(_env(_container(cloud))["COLLABDNN_MAX_CONNECTION_AGE_S"]) > 0
    for name in ("collabdnn-mobile", "collabdnn-scheduler"):
        dialled = _env(_container(deployments[name]))["COLLABDNN_CLOUD"]
        assert dialled == f"dns:///{CLOUD_HOST}:50051", name
