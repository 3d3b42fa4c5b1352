"""Stopping and restarting kube-apiserver under a running `authsvc csr-signer`: signing resumes
without restarting authsvc.

A control plane of its own (etcd + kube-apiserver, ~5 s to start): restarting the session's API
server would cut every other test's connections and the webhook's, and leave them to race its
return. It reuses the session home's PKI (the same CA and serving certificate), so the signer
signs with the same CA and records in the same inventory; its kubeconfig is the control plane's
probe identity (system:masters), because its fresh etcd has no RBAC bindings of authsvc's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.components.kube_apiserver import ControlPlane, ControlPlaneFiles, write_kubeconfig
from tests.components.support import require_binary
from tests.e2e.cluster import ISSUER, E2ECluster
from tests.e2e.csr_support import Csrs, SignerProcess, certificate, csr_manifest, openssl_csr, signer_config, wait_until
from tests.e2e.fixtures import require_apiserver_binary
from tests.e2e.harness import child_env
from tests.e2e.test_csr_signer import DECISION_TIMEOUT

CLIENT = "kubernetes.io/kube-apiserver-client"


@pytest.fixture(scope="module")
def private_plane(cluster: E2ECluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Path]]:
    work = tmp_path_factory.mktemp("csr-restart")
    pki = cluster.home / "pki"
    files = ControlPlaneFiles(
        client_ca_file=pki / "ca.crt",
        tls_cert_file=pki / "apiserver.crt",
        tls_private_key_file=pki / "apiserver.key",
        service_account_key_file=cluster.sa_key_bundle,
        service_account_signing_key_file=pki / "sa.key",
        service_account_issuer=ISSUER,
        probe_client_cert_file=cluster.workdir / "probe.crt",
        probe_client_key_file=cluster.workdir / "probe.key",
    )
    plane = ControlPlane(require_apiserver_binary(), require_binary("etcd"))
    plane.start(files, work / "control-plane")
    try:
        kubeconfig = write_kubeconfig(
            work / "masters.kubeconfig",
            plane.url,
            pki / "ca.crt",
            cluster.workdir / "probe.crt",
            cluster.workdir / "probe.key",
        )
        yield plane, kubeconfig
    finally:
        plane.stop()


def test_signing_resumes_after_the_api_server_restarts_without_restarting_the_signer(
    cluster: E2ECluster, private_plane: tuple[ControlPlane, Path], tmp_path: Path
) -> None:
    plane, kubeconfig = private_plane
    openssl = require_binary("openssl")
    csrs = Csrs(cluster.kubectl, kubeconfig)
    audit = tmp_path / "audit.log"
    config = signer_config(cluster.home, tmp_path / "signer.yaml", audit_log=audit, lease_namespace="kube-system")
    signer = SignerProcess(cluster.home, config, kubeconfig, "r", tmp_path / "signer.log", child_env(home_dir=tmp_path))
    signer.start()
    try:

        def sign(name: str) -> None:
            _, csr = openssl_csr(openssl, tmp_path, name, f"/CN={name}")
            csrs.create(csr_manifest(name, csr, CLIENT, ("client auth",)))
            csrs.approve(name)
            wait_until(lambda: bool(certificate(csrs.get(name))), signer.describe, DECISION_TIMEOUT, signer)

        sign("before-restart")  # the watch is established and signing
        pid = signer.pid
        plane.restart_apiserver()  # stop (SIGTERM) and start again on the same port; etcd keeps the data
        sign("after-restart")
        assert signer.alive() and signer.pid == pid
        log = signer.log_text()
        assert "watch of CertificateSigningRequests" in log or "does not lead" in log, log  # it saw the outage
        signed = [json.loads(line) for line in audit.read_text().splitlines()]
        outcomes = [line["ids"]["csr"] for line in signed if line["outcome"] == "signed"]
        assert outcomes == ["before-restart", "after-restart"]
    finally:
        signer.stop()
