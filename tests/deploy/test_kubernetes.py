"""config/kubernetes: every object loads into the kubernetes client's models, the kustomization
renders with the real kubectl, and the pieces agree with each other and with authsvc."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from authsvc.settings import load_settings
from tests.components.support import require_binary

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "config" / "kubernetes"
NOT_OBJECTS = {"kustomization.yaml", "authsvc.yaml"}
MANIFESTS = sorted(p for p in KUBERNETES.glob("*.yaml") if p.name not in NOT_OBJECTS)
API = ApiClient()


class ManifestError(AssertionError):
    pass


def model_class(document: dict[str, Any]) -> str:
    """`apps/v1` + `Deployment` -> `V1Deployment`: the client's naming of its models."""
    version = str(document["apiVersion"]).rsplit("/", 1)[-1]
    return f"{version[0].upper()}{version[1:]}{document['kind']}"


def differences(original: Any, loaded: Any, path: str = "") -> Iterator[str]:
    if isinstance(original, dict) and isinstance(loaded, dict):
        for key in original.keys() | loaded.keys():
            if key not in loaded:
                yield f"{path}.{key}: not a field of the model (misspelled or misplaced?)"
            elif key not in original:
                yield f"{path}.{key}: added by the model"
            else:
                yield from differences(original[key], loaded[key], f"{path}.{key}")
    elif isinstance(original, list) and isinstance(loaded, list) and len(original) == len(loaded):
        for index, (a, b) in enumerate(zip(original, loaded, strict=True)):
            yield from differences(a, b, f"{path}[{index}]")
    elif original != loaded:
        yield f"{path}: {original!r} became {loaded!r}"


def to_model(document: dict[str, Any]) -> Any:
    """The client's model of `document`; raises when a field is unknown or a value does not fit.

    The client's deserializer ignores unknown keys, so the model is serialized back and
    compared: a misspelled field is whatever did not survive the round trip."""
    import kubernetes.client.models as models

    name = model_class(document)
    if not hasattr(models, name):
        raise ManifestError(f"no model {name} in the kubernetes client (apiVersion/kind wrong?)")
    try:
        model = API._ApiClient__deserialize(document, name)  # type: ignore[attr-defined]
    except (ValueError, TypeError) as e:
        raise ManifestError(f"{name} {document.get('metadata', {}).get('name')}: {e}") from e
    found = list(differences(document, API.sanitize_for_serialization(model)))  # type: ignore[no-untyped-call]
    if found:
        raise ManifestError(f"{name}: " + "; ".join(found))
    return model


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = require_binary("kubectl")
    result = subprocess.run([str(kubectl), "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def load_script(name: str) -> ModuleType:
    """A script from config/kubernetes (file names with dashes), imported once."""
    module_name = "config_kubernetes_" + name.removesuffix(".py").replace("-", "_")
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, KUBERNETES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def load_publish_script() -> ModuleType:
    return load_script("rotate-publish.py")


# -- every object is a valid Kubernetes object ---------------------------------------------


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_loads_into_its_model(path: Path) -> None:
    loaded = [to_model(d) for d in documents(path)]
    assert loaded


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d["spec"].update(replica=3), "spec.replica: not a field"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenesProbe={}), "livenesProbe"),
        (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("name"), "name"),
        (lambda d: d.update(kind="Deploymnet"), "no model V1Deploymnet"),
    ],
)
def test_a_broken_manifest_is_caught(change: Any, problem: str) -> None:
    document = documents(KUBERNETES / "deployment.yaml")[0]
    change(document)
    with pytest.raises(ManifestError, match=problem):
        to_model(document)


@pytest.mark.kubectl
def test_kubectl_kustomize_renders_every_object_into_its_model(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted(
        ["Namespace", "ServiceAccount", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "ConfigMap",
         "ConfigMap", "Service", "PersistentVolumeClaim", "Deployment", "CronJob", "PodDisruptionBudget",
         "NetworkPolicy", "NetworkPolicy"]
    )  # fmt: skip
    for document in rendered:
        to_model(document)
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "authsvc"


@pytest.mark.kubectl
def test_kubectl_kustomize_fails_on_a_broken_kustomization(tmp_path: Path) -> None:
    kubectl = require_binary("kubectl")
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    result = subprocess.run([str(kubectl), "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "missing.yaml" in result.stderr


# -- the Deployment -------------------------------------------------------------------------


@pytest.mark.kubectl
def test_deployment_is_replicated_probed_bounded_and_unprivileged(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment", "authsvc")
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = one([{"kind": "c", "metadata": {"name": c["name"]}, **c} for c in pod["containers"]], "c")
    assert container["image"] == "registry.example.com/authsvc:0.1.0"
    assert container["args"][-2:] == ["serve", "--bind=0.0.0.0:8443"]
    probes = {kind: container[kind]["exec"]["command"][-1] for kind in ("livenessProbe", "readinessProbe")}
    assert probes == {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    assert {"requests", "limits"} <= container["resources"].keys()
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.kubectl
def test_database_url_comes_from_a_secret_through_url_env(rendered: list[dict[str, Any]]) -> None:
    settings = load_settings(KUBERNETES / "authsvc.yaml")
    assert settings.database.url == "" and settings.database.url_env
    cronjob_pod = one(rendered, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    authsvc_containers = [
        one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0],
        cronjob_pod["initContainers"][0],
    ]
    for container in authsvc_containers:
        env = {e["name"]: e for e in container["env"]}
        source = env[settings.database.url_env]["valueFrom"]["secretKeyRef"]
        assert source == {"name": "authsvc-database", "key": "url"}


@pytest.mark.kubectl
def test_pki_files_from_secrets_land_where_the_settings_expect_them(rendered: list[dict[str, Any]]) -> None:
    settings = load_settings(KUBERNETES / "authsvc.yaml")
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    home = next(e["value"] for e in pod["containers"][0]["env"] if e["name"] == "AUTHSVC_HOME")
    pki = next(v for v in pod["volumes"] if v["name"] == "pki")["projected"]["sources"]
    files = {f"{mounts['pki']}/{item['path']}" for source in pki for item in source["secret"].get("items", [])}
    for relative in (settings.server.tls_cert, settings.server.tls_key, settings.server.client_ca):
        assert f"{home}/{relative}" in files
    published = load_publish_script().SECRETS
    for source in pki:
        secret = source["secret"]
        assert secret["name"] in published, f"{secret['name']} is mounted but rotate-publish.py never updates it"
        assert {item["key"] for item in secret.get("items", [])} <= published[secret["name"]][1].keys()


@pytest.mark.kubectl
def test_generated_configmaps_are_the_ones_referenced(rendered: list[dict[str, Any]]) -> None:
    names = {o["metadata"]["name"] for o in rendered if o["kind"] == "ConfigMap"}
    for workload in (one(rendered, "Deployment"), one(rendered, "CronJob")["spec"]["jobTemplate"]):
        volumes = workload["spec"]["template"]["spec"]["volumes"]
        assert {v["configMap"]["name"] for v in volumes if "configMap" in v} <= names


# -- selection, disruption, network ----------------------------------------------------------


@pytest.mark.kubectl
def test_service_pdb_and_network_policy_select_the_webhook_pods(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [
        one(rendered, "Service")["spec"]["selector"],
        one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(rendered, "NetworkPolicy", "authsvc-webhook-ingress")["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items()
    assert one(rendered, "PodDisruptionBudget")["spec"]["minAvailable"] < deployment["spec"]["replicas"]


@pytest.mark.kubectl
def test_network_policy_admits_only_the_api_server_on_the_webhook_port(rendered: list[dict[str, Any]]) -> None:
    policy = one(rendered, "NetworkPolicy", "authsvc-webhook-ingress")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    assert [list(peer) for peer in rule["from"]] == [["ipBlock"]]
    container = one(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert [p["port"] for p in rule["ports"]] == [p["containerPort"] for p in container["ports"]]
    target = one(rendered, "Service")["spec"]["ports"][0]["targetPort"]
    assert target in [p["name"] for p in container["ports"]]


# -- the rotate CronJob ---------------------------------------------------------------------


@pytest.mark.kubectl
def test_cronjob_rotates_then_publishes_with_least_privilege(rendered: list[dict[str, Any]]) -> None:
    cronjob = one(rendered, "CronJob", "authsvc-rotate")["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    pod = cronjob["jobTemplate"]["spec"]["template"]["spec"]
    assert "authsvc --config=/etc/authsvc/authsvc.yaml rotate" in pod["initContainers"][0]["args"][0]
    assert pod["containers"][0]["command"][-1].endswith("rotate-publish.py")
    assert pod["serviceAccountName"] == "authsvc-rotate"
    for container in pod["initContainers"] + pod["containers"]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    role = one(rendered, "Role", "authsvc-rotate")
    named = [r for r in role["rules"] if r.get("resourceNames") and r["resources"] == ["secrets"]]
    assert set(named[0]["resourceNames"]) == set(load_publish_script().SECRETS)
    assert all("delete" not in r["verbs"] and "list" not in r["verbs"] for r in role["rules"])


def test_cluster_config_loads_into_the_settings_model() -> None:
    settings = load_settings(KUBERNETES / "authsvc.yaml")
    assert settings.server.bind == "0.0.0.0:8443" and settings.server.require_client_cert
