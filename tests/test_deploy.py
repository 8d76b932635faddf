"""The Kubernetes manifests and the Dockerfile: their shape, and that they fit together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from app.ops.serve import ServerSettings
from tests import dockerfile

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy" / "kubernetes"


def load(name: str) -> dict[str, Any]:
    (document,) = list(yaml.safe_load_all((MANIFESTS / name).read_text()))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    return load("deployment.yaml")


@pytest.fixture(scope="module")
def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load("kustomization.yaml")["resources"])
    present = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_deployment_selects_its_own_pods(deployment: dict[str, Any]) -> None:
    assert deployment["apiVersion"] == "apps/v1" and deployment["kind"] == "Deployment"
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert deployment["spec"]["replicas"] >= 2


@pytest.mark.parametrize(("probe", "path"), [("startupProbe", "/livez"),
                                             ("livenessProbe", "/livez"),
                                             ("readinessProbe", "/readyz")])
def test_probes(container: dict[str, Any], probe: str, path: str) -> None:
    get = container[probe]["httpGet"]
    assert get["path"] == path
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports.get(get["port"], get["port"]) == 8000


def test_resources_are_requested_and_limited(container: dict[str, Any]) -> None:
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind])


def test_container_matches_the_image(deployment: dict[str, Any],
                                     container: dict[str, Any]) -> None:
    exposed = [i.arguments for i in dockerfile.final_stage() if i.keyword == "EXPOSE"]
    assert [str(p["containerPort"]) for p in container["ports"]] == exposed
    (user,) = [i.arguments for i in dockerfile.final_stage() if i.keyword == "USER"]
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert user.split(":")[0] == str(pod_security["runAsUser"])
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert env.get("WEB_CONCURRENCY") == "1"


def test_shutdown_fits_in_the_grace_period(deployment: dict[str, Any],
                                           container: dict[str, Any]) -> None:
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    graceful = int(env.get("NABLA_GRACEFUL_TIMEOUT",
                           ServerSettings.model_fields["graceful_timeout"].default))
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pause + graceful < deployment["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"]


def test_service_routes_to_the_pods(deployment: dict[str, Any],
                                    container: dict[str, Any]) -> None:
    service = load("service.yaml")
    assert service["kind"] == "Service"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    port_names = {p["name"] for p in container["ports"]}
    assert all(p["targetPort"] in port_names for p in service["spec"]["ports"])


def test_autoscaler_scales_the_deployment(deployment: dict[str, Any]) -> None:
    hpa = load("hpa.yaml")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert deployment["spec"]["replicas"] >= hpa["spec"]["minReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"


def test_dockerfile_shape() -> None:
    stages = [i for i in dockerfile.instructions() if i.keyword == "FROM"]
    assert len(stages) >= 2
    assert all("slim" in i.arguments or i.arguments.startswith("${") for i in stages)
    final = dockerfile.final_stage()
    keywords = [i.keyword for i in final]
    assert {"USER", "EXPOSE", "HEALTHCHECK", "CMD"} <= set(keywords)
    (user,) = [i.arguments for i in final if i.keyword == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    (check,) = [i for i in final if i.keyword == "HEALTHCHECK"]
    assert "/livez" in " ".join(dockerfile.exec_form(check))
    assert dockerfile.cmd()[0] == "nabla"


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "docs" / "configuration.md").read_text()  # the README links to it
    names = [f"NABLA_{name.upper()}" for name in Settings.model_fields]
    names += [f"NABLA_{name.upper()}" for name in ServerSettings.model_fields]
    names.append("WEB_CONCURRENCY")
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"document these in docs/configuration.md's table: {missing}"
