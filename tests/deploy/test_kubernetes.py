"""config/kubernetes: every object loads into the kubernetes client's models, the kustomization
renders with the real kubectl, and the pieces agree with each other and with authsvc.

The pod's shape that matters for security: kubelet probes the public listener with its own
HTTPS GETs (no exec probe, no client certificate), and no pod holds the API server's webhook
client key. tests/serve/test_probes.py asks the real server what these probes ask.
"""

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

from authsvc.home.opened import Home
from authsvc.init.webhook_pki import APISERVER_WEBHOOK_CLIENT
from authsvc.runtime import build_runtime
from authsvc.settings import load_settings
from authsvc.web.app import create_app
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


def webhook_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = one(objects, "Deployment", "authsvc")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container: probes and ports below are that container's"
    return containers[0]


def flag(args: list[str], name: str) -> str:
    """The value of `--name=VALUE` in a container's args (the Deployment spells flags that way)."""
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name}=...: {len(values)} in the container's args {args}"
    return values[0]


def bind_port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def container_port(container: dict[str, Any], port: int | str) -> int:
    """A probe's or a Service's port (a number or a container port's name) as a number."""
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


def webhook_pod_policies(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The NetworkPolicies that select the webhook pods (policies add up: all of them count)."""
    labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return [
        o["spec"]
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ]


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
         "Service", "PersistentVolumeClaim", "Deployment", "CronJob", "PodDisruptionBudget",
         "NetworkPolicy", "NetworkPolicy", "NetworkPolicy"]
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
    assert container["args"][1:] == ["serve", "--bind=0.0.0.0:8443", "--public-bind=0.0.0.0:8444"]
    paths = {kind: container[kind]["httpGet"]["path"] for kind in PROBES}
    assert paths == {"startupProbe": "/healthz", "livenessProbe": "/healthz", "readinessProbe": "/readyz"}
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


# -- probes and the public listener ---------------------------------------------------------


@pytest.mark.kubectl
def test_probes_are_kubelet_https_gets_on_the_public_port(rendered: list[dict[str, Any]]) -> None:
    """kubelet's own probes: an exec probe needs a credential inside the pod, and the webhook
    port refuses kubelet (no client certificate) in the handshake."""
    container = webhook_container(rendered)
    public = bind_port(flag(container["args"], "--public-bind"))
    webhook = bind_port(flag(container["args"], "--bind"))
    for kind in PROBES:
        probe = container[kind]
        assert "exec" not in probe and "tcpSocket" not in probe and "grpc" not in probe, kind
        get = probe["httpGet"]
        assert get["scheme"] == "HTTPS", kind  # the listener speaks only TLS
        assert container_port(container, get["port"]) == public != webhook, kind
        assert "httpHeaders" not in get and "host" not in get, kind  # the pod's IP, as kubelet does by default
    # Start and liveness are bounded, readiness reacts faster than liveness.
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] <= 120
    assert container["readinessProbe"]["periodSeconds"] <= container["livenessProbe"]["periodSeconds"]


def test_the_public_listener_serves_the_probed_paths_and_never_the_webhook(home: Home) -> None:
    """What authsvc.web.app registers per listener: the probes' paths are on the public one."""
    container = documents(KUBERNETES / "deployment.yaml")[0]["spec"]["template"]["spec"]["containers"][0]
    paths = {container[kind]["httpGet"]["path"] for kind in PROBES}
    public = create_app(build_runtime(home), "public")
    routes = {rule.rule for rule in public.url_map.iter_rules()}
    assert paths <= routes and "/authenticate" not in routes
    client = public.test_client()
    for path in sorted(paths):
        assert client.get(path).status_code == 200, path
    # The failing twin: the same paths exist on the webhook listener, which kubelet cannot reach.
    assert paths <= {rule.rule for rule in create_app(build_runtime(home), "webhook").url_map.iter_rules()}


@pytest.mark.kubectl
def test_public_port_is_wired_consistently(rendered: list[dict[str, Any]]) -> None:
    """--public-bind, the container port named `public`, the Service, the settings and the
    NetworkPolicy all name the same port; the webhook port stays separate."""
    settings = load_settings(KUBERNETES / "authsvc.yaml")
    container = webhook_container(rendered)
    public, webhook = bind_port(flag(container["args"], "--public-bind")), bind_port(flag(container["args"], "--bind"))
    assert flag(container["args"], "--public-bind") == settings.server.public_bind
    assert flag(container["args"], "--bind") == settings.server.bind
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"webhook": webhook, "public": public}
    service = one(rendered, "Service", "authsvc")
    targets = {p["name"]: container_port(container, p["targetPort"]) for p in service["spec"]["ports"]}
    assert targets == {"webhook": webhook, "public": public}
    # server.public_url is this Service's public port, under a name in the serving certificate.
    [public_service_port] = [p["port"] for p in service["spec"]["ports"] if p["name"] == "public"]
    host, _, port = settings.server.public_url.removeprefix("https://").partition(":")
    assert int(port) == public_service_port and host.startswith(f"{service['metadata']['name']}.authsvc.svc")
    assert f"DNS:{host}" in settings.server.serving_sans
    # Every port the pod listens on is admitted by some policy, to someone.
    admitted = {p["port"] for policy in webhook_pod_policies(rendered) for r in policy["ingress"] for p in r["ports"]}
    assert admitted == {webhook, public}


@pytest.mark.kubectl
def test_no_pod_holds_the_api_servers_webhook_client_key(rendered: list[dict[str, Any]]) -> None:
    """The key that lets its holder call the webhook as the API server stays off the pods and
    out of this namespace's Secrets (the old exec probes mounted it as authsvc-probe-client)."""
    pod = one(rendered, "Deployment")["spec"]["template"]["spec"]
    mounted = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    mounted |= {s["secret"]["name"] for v in pod["volumes"] if "projected" in v for s in v["projected"]["sources"]}
    published = load_publish_script().SECRETS
    sources = {name: [path for path, _ in published[name][1].values()] for name in mounted if name in published}
    assert mounted == sources.keys(), f"{mounted - sources.keys()} mounted but not published by rotate-publish.py"
    for name, paths in sources.items():
        assert not [p for p in paths if APISERVER_WEBHOOK_CLIENT in p], name
    assert not any(APISERVER_WEBHOOK_CLIENT in path for _, keys in published.values() for path, _ in keys.values())
    assert "authsvc-probe-client" not in mounted | published.keys()
    for document in rendered:  # no ConfigMap ships a probe script, no container runs one
        assert "probe.py" not in yaml.safe_dump(document)
    # Nor do the instructions for creating the Secrets (deployment.yaml's header) put it into one.
    text = (KUBERNETES / "deployment.yaml").read_text()
    assert "create secret" in text and "authsvc-probe" not in text
    assert f"authsvc-data/pki/{APISERVER_WEBHOOK_CLIENT}" not in text


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
    container = webhook_container(rendered)
    webhook = bind_port(flag(container["args"], "--bind"))
    policy = one(rendered, "NetworkPolicy", "authsvc-webhook-ingress")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    [rule] = policy["ingress"]
    api_server = rule["from"]
    assert [list(peer) for peer in api_server] == [["ipBlock"]]
    assert [p["port"] for p in rule["ports"]] == [webhook]
    for spec in webhook_pod_policies(rendered):
        assert spec["policyTypes"] == ["Ingress"]
        for other in spec["ingress"]:
            # A rule without ports or without peers admits every port or everyone.
            assert other.get("ports") and other.get("from"), other
            if webhook in [p["port"] for p in other["ports"]]:
                assert other["from"] == api_server and [p["port"] for p in other["ports"]] == [webhook]


@pytest.mark.kubectl
def test_network_policy_admits_the_api_server_alone_on_the_public_port_by_default(
    rendered: list[dict[str, Any]],
) -> None:
    """The public port is closed to all but the API server (discovery and JWKS for its JWT
    authenticator) until an overlay names who else may log in or scrape; kubelet's probes come
    from the pod's own node, which a NetworkPolicy does not block."""
    container = webhook_container(rendered)
    public = bind_port(flag(container["args"], "--public-bind"))
    api_server = one(rendered, "NetworkPolicy", "authsvc-webhook-ingress")["spec"]["ingress"][0]["from"]
    [rule] = one(rendered, "NetworkPolicy", "authsvc-public-ingress")["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [public] and rule["from"] == api_server


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
    assert "authsvc-probe-client" not in named[0]["resourceNames"]
    assert all("delete" not in r["verbs"] and "list" not in r["verbs"] for r in role["rules"])


def test_cluster_config_loads_into_the_settings_model() -> None:
    settings = load_settings(KUBERNETES / "authsvc.yaml")
    assert settings.server.bind == "0.0.0.0:8443" and settings.server.require_client_cert
    assert settings.server.public_bind == "0.0.0.0:8444"
