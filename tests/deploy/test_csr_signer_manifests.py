"""config/kubernetes/csr-signer: every object loads into the client's models, the kustomization
renders with the real kubectl, and the pieces agree with each other and with the settings model.

tests/e2e/test_csr_signer.py applies the rendered objects to a real API server and runs the
signer with exactly these permissions; here, what can be checked without one: the bindings
name the Deployment's service account, the `sign` rule covers every signer the config enables,
the Lease the config names is the one the Role allows, and the CA lands where the home looks.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.cluster.csr.signers import configured_signers
from authsvc.settings import Settings, settings_from_mapping
from tests.components.support import require_binary
from tests.deploy.test_kubernetes import bind_port, container_port, documents, one, to_model

REPO = Path(__file__).resolve().parents[2]
SIGNER = REPO / "config" / "kubernetes" / "csr-signer"
CONFIG = SIGNER / "csr-signer.yaml"


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = require_binary("kubectl")
    result = subprocess.run([str(kubectl), "kustomize", str(SIGNER)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def settings() -> Settings:
    return settings_from_mapping(yaml.safe_load(CONFIG.read_text()), str(CONFIG))


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = one(objects, "Deployment", "authsvc-csr-signer")["spec"]["template"]["spec"]["containers"]
    return dict(only)


def signers_without_the_sign_verb(objects: list[dict[str, Any]], config: Settings) -> list[str]:
    role = one(objects, "ClusterRole", "authsvc:csr-signer")
    signable = {
        name
        for rule in role["rules"]
        if rule["resources"] == ["signers"] and "sign" in rule["verbs"]
        for name in rule.get("resourceNames", [])
    }
    enabled = configured_signers(config, lambda ca: None)  # type: ignore[arg-type,return-value]
    return sorted(set(enabled) - signable)


@pytest.mark.parametrize(
    "path",
    sorted(p for p in SIGNER.glob("*.yaml") if p.name not in {"kustomization.yaml", "csr-signer.yaml"}),
    ids=lambda p: p.name,
)
def test_every_manifest_loads_into_its_model(path: Path) -> None:
    assert [to_model(d) for d in documents(path)]


@pytest.mark.kubectl
def test_kubectl_kustomize_renders_it_into_the_authsvc_namespace(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted(o["kind"] for o in rendered)
    assert kinds == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap", "Deployment"]
    )
    for document in rendered:
        to_model(document)
        if document["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert document["metadata"]["namespace"] == "authsvc"


@pytest.mark.kubectl
def test_the_bindings_name_the_deployments_service_account(rendered: list[dict[str, Any]]) -> None:
    account = one(rendered, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    one(rendered, "ServiceAccount", account)
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        binding = one(rendered, kind)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "authsvc"}]
        one(rendered, binding["roleRef"]["kind"], binding["roleRef"]["name"])


@pytest.mark.kubectl
def test_every_enabled_signer_may_be_signed_and_the_twin_without_it_is_caught(rendered: list[dict[str, Any]]) -> None:
    config = settings()
    assert signers_without_the_sign_verb(rendered, config) == []
    custom = settings_from_mapping(
        {
            **yaml.safe_load(CONFIG.read_text()),
            "csr_signer": {"custom": [{"name": "example.com/x", "profile": "server"}]},
        }
    )
    assert signers_without_the_sign_verb(rendered, custom) == ["example.com/x"]


@pytest.mark.kubectl
def test_the_role_allows_the_lease_the_config_names(rendered: list[dict[str, Any]]) -> None:
    lease = settings().csr_signer.lease
    role = one(rendered, "Role", "authsvc-csr-signer-lease")
    assert role["metadata"]["namespace"] == lease.namespace
    named = [r for r in role["rules"] if r.get("resourceNames")]
    assert named == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [lease.name],
            "verbs": ["get", "update"],
        }
    ]


@pytest.mark.kubectl
def test_the_ca_lands_where_the_home_loads_it_and_metrics_on_the_declared_port(rendered: list[dict[str, Any]]) -> None:
    signer = container(rendered)
    env = {e["name"]: e for e in signer["env"]}
    home = Path(env["AUTHSVC_HOME"]["value"])
    mounts = {m["name"]: m for m in signer["volumeMounts"]}
    assert Path(mounts["ca"]["mountPath"]) == home / "pki" and mounts["ca"]["readOnly"]
    volumes = one(rendered, "Deployment")["spec"]["template"]["spec"]["volumes"]
    (volume,) = [v for v in volumes if v["name"] == "ca"]
    assert sorted(item["path"] for item in volume["secret"]["items"]) == ["ca.crt", "ca.key"]
    assert settings().csr_signer.kubelet_serving.ca == "ca"  # pki/ca.crt, pki/ca.key
    bind = settings().csr_signer.metrics_bind
    assert bind is not None and container_port(signer, "metrics") == bind_port(bind)
    assert signer["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert (
        "--identity=$(POD_NAME)" in signer["args"]
        and env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    )
    assert settings().cluster.api.in_cluster and one(rendered, "ServiceAccount")["automountServiceAccountToken"]
