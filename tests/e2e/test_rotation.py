"""Rotation against a real kube-apiserver: a signing-key rotation (`authsvc keys rotate`) and a CA
rollover (`authsvc ca rotate`), with a cert-mode kubeconfig and a service-account token working
at every phase.

A control plane of its own (etcd + kube-apiserver, no webhook: client certificates and SA tokens
are checked by kube-apiserver itself), so the session's cluster keeps its CA. kube-apiserver
reads its files at start, so it is restarted where an operator would restart it:

    keys prepare   sa.pub holds old + new      → restart (it must trust the new key first)
    keys activate  authsvc signs with the new  → no restart needed for authsvc's tokens
    keys retire    sa.pub holds the new only   → restart: tokens of the old key are refused
    ca prepare     pki/ca.crt is [old, new]    → restart (--client-ca-file); hand out kubeconfigs again
    ca switch      the serving and admin certs are re-issued from the new CA → restart
    ca finish      pki/ca.crt is [new]         → restart: the old CA's client certificates are refused

Twins: the old key's token after retire, a kubeconfig that trusts only the old CA after switch,
a person's certificate from the old CA after finish.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pki.clock import system_clock
from tests.components.kube_apiserver import ControlPlane, ControlPlaneFiles, free_ports, write_kubeconfig
from tests.components.support import require_binary
from tests.e2e.fixtures import KUBECTL, require_apiserver_binary
from tests.e2e.harness import AuthsvcCli, Kubectl, Result, child_env, eventually

ISSUER = "https://kubernetes.default.svc.cluster.local"
READER = "e2e-rotation:namespace-reader"
NAMESPACE, ACCOUNT = "e2e-rotation", "rotator"
UNAUTHORIZED = "Unauthorized"


@dataclass
class RotationCluster:
    home: Path
    workdir: Path
    authsvc: AuthsvcCli
    kubectl: Kubectl
    control_plane: ControlPlane
    files: ControlPlaneFiles

    def restart(self) -> None:
        """What the operator does after a phase: the probe's client certificate follows
        super-admin.conf (re-issued at switch), then kube-apiserver re-reads every file."""
        _write_probe_cert(self.home / "super-admin.conf", self.files)
        self.control_plane.restart_apiserver()

    def works(self, kubeconfig: Path) -> Result:
        """`kubectl get namespaces`: authenticated (and allowed), retried while a binding propagates."""
        return eventually(lambda: self.kubectl(kubeconfig, "get", "namespaces", "-o", "name"), lambda r: r.ok)

    def refused(self, kubeconfig: Path) -> Result:
        return self.kubectl(kubeconfig, "get", "namespaces", "-o", "name")

    def admin(self, *args: str) -> str:
        result = self.kubectl(self.home / "admin.conf", *args)
        assert result.ok, result.describe()
        return result.stdout


def _write_probe_cert(kubeconfig: Path, files: ControlPlaneFiles) -> None:
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert files.probe_client_cert_file is not None and files.probe_client_key_file is not None
    for path, field in (
        (files.probe_client_cert_file, "client-certificate-data"),
        (files.probe_client_key_file, "client-key-data"),
    ):
        path.touch(mode=0o600)
        path.write_bytes(base64.b64decode(user[field]))


@pytest.fixture(scope="module")
def rotation_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RotationCluster]:
    kubectl_binary, etcd = require_binary(KUBECTL), require_binary("etcd")
    apiserver = require_apiserver_binary()
    workdir = tmp_path_factory.mktemp("e2e-rotation")
    home = workdir / "home"
    home.mkdir(mode=0o700)
    (port,) = free_ports(1)
    settings = {
        # ECDSA: no RSA keys to generate; kube-apiserver 1.20 takes P-256 certificates and SA keys.
        "cluster": {"control_plane_endpoint": f"127.0.0.1:{port}", "server": f"https://127.0.0.1:{port}",
                    "service_cidr": "10.0.0.0/24", "encryption_algorithm": "ECDSA-P256"},
        "tokens": {"issuer": ISSUER, "algorithm": "ES256"},
        "audit": {"path": "audit.log"},
    }  # fmt: skip
    (home / "authsvc.yaml").write_text(yaml.safe_dump(settings))
    env = child_env(home_dir=workdir)
    cli = AuthsvcCli(home, env)
    cli.ok("init", "--apiserver-advertise-address", "127.0.0.1")
    files = ControlPlaneFiles(
        client_ca_file=home / "pki" / "ca.crt",
        tls_cert_file=home / "pki" / "apiserver.crt",
        tls_private_key_file=home / "pki" / "apiserver.key",
        service_account_key_file=home / "pki" / "sa.pub",  # authsvc keeps it: every published key
        service_account_signing_key_file=home / "pki" / "sa.key",
        service_account_issuer=ISSUER,
        api_audiences=[ISSUER],
        probe_client_cert_file=workdir / "probe.crt",
        probe_client_key_file=workdir / "probe.key",
    )
    _write_probe_cert(home / "super-admin.conf", files)
    control_plane = ControlPlane(apiserver, etcd, secure_port=port)
    cluster = RotationCluster(home, workdir, cli, Kubectl(kubectl_binary, env), control_plane, files)
    try:
        control_plane.start(files, workdir / "control-plane")
        _bootstrap(cluster)
        yield cluster
    finally:
        control_plane.stop()


def _bootstrap(cluster: RotationCluster) -> None:
    """kubeadm's cluster-admins binding (see tests/e2e/cluster.py), and who may list namespaces."""
    made = cluster.kubectl(cluster.home / "super-admin.conf", "create", "clusterrolebinding", "kubeadm:cluster-admins",
                           "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins")  # fmt: skip
    assert made.ok, made.describe()
    eventually(lambda: cluster.kubectl(cluster.home / "admin.conf", "get", "namespaces"), lambda r: r.ok)
    cluster.admin("create", "clusterrole", READER, "--verb=get,list", "--resource=namespaces")
    cluster.admin("create", "clusterrolebinding", READER, f"--clusterrole={READER}", "--group=e2e-people",
                  f"--serviceaccount={NAMESPACE}:{ACCOUNT}")  # fmt: skip
    cluster.admin("create", "namespace", NAMESPACE)
    cluster.admin("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)


def test_kubeconfigs_and_sa_tokens_keep_working_through_key_and_ca_rotation(rotation_cluster: RotationCluster) -> None:
    cluster = rotation_cluster
    uid = cluster.admin("get", "serviceaccount", ACCOUNT, "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}")

    def sa_token(name: str) -> Path:
        token = cluster.authsvc.ok("token", "create", "-n", NAMESPACE, "--serviceaccount", ACCOUNT, "--uid", uid,
                                   "--ttl", "30m").strip()  # fmt: skip
        return write_kubeconfig(cluster.workdir / f"{name}.kubeconfig", cluster.control_plane.url,
                                cluster.files.client_ca_file, token=token)  # fmt: skip

    def person(name: str) -> Path:
        out = cluster.workdir / f"{name}.kubeconfig"
        cluster.authsvc.ok("issue", "alice", "-g", "e2e-people", "--ttl", "1h", "-o", str(out), "--force")
        return out

    working = {"admin.conf": cluster.home / "admin.conf", "sa-old-key": sa_token("sa-old-key")}

    def all_work(phase: str) -> None:
        refused = [name for name, config in working.items() if not cluster.works(config).ok]
        assert refused == [], f"after {phase}: refused {refused}"

    all_work("start")

    # --- the signing key: prepare → activate → retire ------------------------------------------
    cluster.authsvc.ok("keys", "rotate", "--phase", "prepare")
    cluster.restart()
    all_work("keys prepare")
    cluster.authsvc.ok("keys", "rotate", "--phase", "activate", "--force")  # the restart above published it
    working["sa-new-key"] = sa_token("sa-new-key")
    all_work("keys activate")
    # Retire once every token of the old key has expired (30 minutes): the CLI's clock is moved on.
    later = (system_clock() + dt.timedelta(hours=1)).isoformat()
    cluster.authsvc.ok("keys", "rotate", "--phase", "retire", now=later)
    cluster.restart()
    old_key = working.pop("sa-old-key")
    all_work("keys retire")
    assert UNAUTHORIZED in cluster.refused(old_key).stderr  # the twin: sa.pub no longer has its key

    # --- the cluster CA: prepare → switch → finish -----------------------------------------------
    early = person("alice-early")  # trusts the old CA only: handed out before prepare
    working["alice-early"] = early
    all_work("before ca prepare")
    cluster.authsvc.ok("ca", "rotate", "--phase", "prepare")
    cluster.restart()
    working["alice"] = person("alice")  # handed out again: its certificate-authority-data is the bundle
    all_work("ca prepare")

    cluster.authsvc.ok("ca", "rotate", "--phase", "switch", "--force")  # the restart above loaded the bundle
    cluster.restart()  # the re-issued serving certificate
    working.pop("alice-early")
    all_work("ca switch")  # admin.conf re-issued from the new CA; alice's old-CA certificate still trusted
    assert "unknown authority" in cluster.refused(early).stderr  # the twin: it never learned the new CA
    working["alice-reissued"] = person("alice-reissued")  # from the new CA

    finish_at = (system_clock() + dt.timedelta(hours=2)).isoformat()  # alice's 1-hour certificate has expired
    refused = cluster.authsvc("ca", "rotate", "--phase", "finish")
    assert refused.code == 1 and "alice" in refused.stderr  # not while the old CA's certificate is valid
    cluster.authsvc.ok("ca", "rotate", "--phase", "finish", now=finish_at)
    cluster.restart()
    old_ca_person = working.pop("alice")
    all_work("ca finish")
    assert UNAUTHORIZED in cluster.refused(old_ca_person).stderr  # the twin: the old CA is gone
