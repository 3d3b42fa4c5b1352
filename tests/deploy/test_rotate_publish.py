"""config/kubernetes/rotate-publish.py against a real kube-apiserver, as the rotate CronJob runs it:
with the token of the `authsvc-rotate` ServiceAccount that serviceaccount.yaml and
rbac-rotate.yaml define, applied as they are. The end-to-end suite's control plane is reused
(started here when that suite did not run): `cluster` is tests/e2e/fixtures.py's."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.test_kubernetes import KUBERNETES, load_publish_script
from tests.e2e.cluster import E2ECluster

pytestmark = [pytest.mark.apiserver, pytest.mark.kubectl]

NAMESPACE = "authsvc"  # rbac-rotate.yaml's RoleBinding names it
SCRIPT = KUBERNETES / "rotate-publish.py"
PUBLISHED = load_publish_script().SECRETS


def admin(e2e: E2ECluster, *args: str) -> str:
    return e2e.admin(*args)


@pytest.fixture(scope="module")
def rotate_kubeconfig(cluster: E2ECluster) -> Path:
    """The namespace, ServiceAccounts and Role from config/kubernetes, a Deployment to restart,
    and a kubeconfig holding the authsvc-rotate ServiceAccount's token."""
    for manifest in ("namespace.yaml", "serviceaccount.yaml", "rbac-rotate.yaml"):
        admin(cluster, "apply", "-n", NAMESPACE, "-f", str(KUBERNETES / manifest))
    # Exact names: the namespace also holds the csr-signer's Deployment (tests/e2e/test_csr_signer.py).
    if "deployment.apps/authsvc" not in admin(cluster, "get", "deployments", "-n", NAMESPACE, "-o", "name").split():
        admin(cluster, "create", "deployment", "authsvc", "-n", NAMESPACE, "--image=registry.example.com/authsvc:0.1.0")
    uid = admin(cluster, "get", "serviceaccount", "authsvc-rotate", "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")
    token = cluster.authsvc.ok(
        "token", "create", "-n", NAMESPACE, "--serviceaccount", "authsvc-rotate", "--uid", uid, "--ttl", "1h"
    ).strip()
    return cluster.token_kubeconfig("authsvc-rotate", token)


def publish(home: Path, kubeconfig: Path, now: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(SCRIPT), f"--home={home}", f"--namespace={NAMESPACE}", f"--kubeconfig={kubeconfig}"]
    return subprocess.run([*args, f"--now={now}", *extra], capture_output=True, text=True, timeout=60)


def secret_data(e2e: E2ECluster, name: str) -> dict[str, bytes]:
    import json

    data = json.loads(admin(e2e, "get", "secret", name, "-n", NAMESPACE, "-o", "json"))["data"]
    return {key: base64.b64decode(value) for key, value in data.items()}


def restarted_at(e2e: E2ECluster) -> str:
    path = "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}"
    return admin(e2e, "get", "deployment", "authsvc", "-n", NAMESPACE, "-o", path)


def test_publishes_the_secrets_then_restarts_only_on_change(
    cluster: E2ECluster,
    rotate_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    shutil.copytree(cluster.home / "pki", home / "pki")
    first = publish(home, rotate_kubeconfig, "2030-01-01T00:00:00+00:00")
    assert first.returncode == 0, first.stderr
    for name, (_, keys) in PUBLISHED.items():
        data = secret_data(cluster, name)
        for key, (relative, required) in keys.items():
            if required or (home / relative).exists():
                assert data[key] == (home / relative).read_bytes(), (name, key)
    assert restarted_at(cluster) == "2030-01-01T00:00:00Z"

    again = publish(home, rotate_kubeconfig, "2031-01-01T00:00:00+00:00")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert restarted_at(cluster) == "2030-01-01T00:00:00Z"  # unchanged Secrets: no restart

    (home / "pki" / "sa.pub").write_bytes((home / "pki" / "sa.pub").read_bytes() + b"\n")  # "rotated"
    changed = publish(home, rotate_kubeconfig, "2032-01-01T00:00:00+00:00")
    assert changed.returncode == 0, changed.stderr
    assert "updated authsvc-signing-keys;" in changed.stdout
    assert restarted_at(cluster) == "2032-01-01T00:00:00Z"


def test_a_failed_rotate_publishes_nothing(rotate_kubeconfig: Path, tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("1\n")
    result = publish(tmp_path / "no-home", rotate_kubeconfig, "2033-01-01T00:00:00+00:00", f"--rotate-status={status}")
    assert result.returncode == 1 and "nothing published" in result.stderr
    status.write_text("3\n")  # done, but a human must act: publish, then fail the Job
    missing = publish(tmp_path / "no-home", rotate_kubeconfig, "2033-01-01T00:00:00+00:00", f"--rotate-status={status}")
    assert missing.returncode == 1 and "is missing" in missing.stderr


@pytest.mark.parametrize(
    "request_args",
    [
        ["delete", "secrets"],
        ["list", "secrets"],
        ["get", "secret/authsvc-database"],
        ["delete", "deployment/authsvc"],
        ["create", "configmaps"],
    ],
)
def test_the_rotate_service_account_can_do_nothing_else(
    cluster: E2ECluster,
    rotate_kubeconfig: Path,
    request_args: list[str],
) -> None:
    result = cluster.kubectl(rotate_kubeconfig, "auth", "can-i", *request_args, "-n", NAMESPACE)
    assert result.stdout.strip() == "no", result.describe()


def test_the_rotate_service_account_can_do_its_job(
    cluster: E2ECluster,
    rotate_kubeconfig: Path,
) -> None:
    for request_args in (["update", "secret/authsvc-serving"], ["patch", "deployment/authsvc"]):
        result = cluster.kubectl(rotate_kubeconfig, "auth", "can-i", *request_args, "-n", NAMESPACE)
        assert result.stdout.strip() == "yes", result.describe()
