"""Issued kubeconfigs in the hands of real clients: kubectl and the kubernetes Python client.

The server is a loopback HTTPS server requiring a client certificate from the cluster CA;
it reports the identity it saw (CN = user, O = groups). Each success has a twin that fails:
a certificate from another CA is refused during the TLS handshake.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client, config

from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import ClusterEntry, UserEntry, build_kubeconfig, load_kubeconfig, write_kubeconfig
from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.keys import generate_private_key, private_key_to_pem
from pki.names import user_subject
from pki.profiles import CLIENT
from pki.store import certs_to_pem
from tests.components.support import require_binary
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl
from tests.kubeconfig.tls_server import VersionServer

pytestmark = pytest.mark.kubectl


def issue(home: Home, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "issued.kubeconfig"
    result = run_cli(["issue", *args, "-o", str(out), "--force"], home=home.root)
    assert result.exit_code == 0, result.stderr
    return out


def python_client_version(kubeconfig: Path) -> str:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.retries = False
    with client.ApiClient(configuration) as api:
        return str(client.VersionApi(api).get_code().git_version)


def foreign_kubeconfig(tmp_path: Path, clock: FixedClock, cluster_ca: bytes, server: str) -> Path:
    """Same user and groups, same trusted server CA, but a client certificate from another CA."""
    other_ca = CertificateAuthority.create_root("kubernetes", now=clock())
    key = generate_private_key()
    cert = other_ca.issue(
        subject=user_subject("alice", ("dev", "qa")), public_key=key.public_key(), profile=CLIENT, now=clock()
    )
    user = UserEntry("alice", client_cert_pem=certs_to_pem([cert]), client_key_pem=private_key_to_pem(key))
    path = tmp_path / "foreign.kubeconfig"
    write_kubeconfig(path, build_kubeconfig(ClusterEntry("kubernetes", server, cluster_ca), user))
    return path


def test_cert_mode_kubectl_presents_user_and_groups(
    home: Home, tmp_path: Path, kubectl: Kubectl, mtls_server: VersionServer
) -> None:
    kubeconfig = issue(home, tmp_path, "alice", "-g", "dev", "-g", "qa", "--server", mtls_server.url)

    result = kubectl.run(kubeconfig, "get", "--raw", "/version")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gitVersion"] == "v1.32.0"
    seen = mtls_server.seen[-1]
    assert (seen.path, seen.user, seen.groups) == ("/version", "alice", ("dev", "qa"))


def test_cert_from_another_ca_is_refused_at_tls(
    home: Home, tmp_path: Path, clock: FixedClock, kubectl: Kubectl, mtls_server: VersionServer
) -> None:
    kubeconfig = foreign_kubeconfig(tmp_path, clock, home.layout.cert_path("ca").read_bytes(), mtls_server.url)

    result = kubectl.run(kubeconfig, "get", "--raw", "/version")

    assert result.returncode != 0
    assert mtls_server.seen == []
    assert "CERTIFICATE_VERIFY_FAILED" in mtls_server.refused_handshakes()


def test_cert_mode_through_the_python_client(home: Home, tmp_path: Path, mtls_server: VersionServer) -> None:
    kubeconfig = issue(home, tmp_path, "alice", "-g", "dev", "--server", mtls_server.url)

    assert python_client_version(kubeconfig) == "v1.32.0"
    seen = mtls_server.seen[-1]
    assert (seen.user, seen.groups) == ("alice", ("dev",))


def test_python_client_with_a_foreign_cert_is_refused(
    home: Home, tmp_path: Path, clock: FixedClock, mtls_server: VersionServer
) -> None:
    kubeconfig = foreign_kubeconfig(tmp_path, clock, home.layout.cert_path("ca").read_bytes(), mtls_server.url)

    with pytest.raises(client.exceptions.ApiException, match="SSLError") as refused:
        python_client_version(kubeconfig)
    assert refused.value.status == 0  # no HTTP answer: the handshake failed
    assert mtls_server.seen == []
    assert "CERTIFICATE_VERIFY_FAILED" in mtls_server.refused_handshakes()


def test_own_csr_mode_key_never_leaves_the_user(
    home: Home, tmp_path: Path, kubectl: Kubectl, mtls_server: VersionServer
) -> None:
    """openssl makes the user's key and CSR; the kubeconfig points at the key file."""
    import subprocess

    openssl = require_binary("openssl")
    key, csr = tmp_path / "bob.key", tmp_path / "bob.csr"
    subprocess.run(
        [str(openssl), "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(csr), "-subj", "/O=ops/CN=bob"],
        check=True, capture_output=True,
    )  # fmt: skip
    kubeconfig = issue(
        home, tmp_path, "bob", "-g", "ops", "--csr", str(csr), "--key-path", str(key), "--server", mtls_server.url
    )

    user = load_kubeconfig(kubeconfig)["users"][0]["user"]
    assert user["client-key"] == str(key) and "client-key-data" not in user
    assert kubectl.run(kubeconfig, "get", "--raw", "/version").returncode == 0
    assert python_client_version(kubeconfig) == "v1.32.0"
    # gcloud's kubectl is a dispatcher: it asks /version itself before running the real kubectl.
    assert {(s.user, s.groups) for s in mtls_server.seen} == {("bob", ("ops",))}
    assert {s.path for s in mtls_server.seen} == {"/version", "/version/"}


def test_own_csr_mode_with_the_wrong_key_is_refused(
    home: Home, tmp_path: Path, kubectl: Kubectl, mtls_server: VersionServer
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from pki.csr import build_csr, csr_pem
    from pki.keys import private_key_to_pem
    from pki.names import user_subject
    from pki.store import atomic_write

    key = ec.generate_private_key(ec.SECP256R1())
    csr = atomic_write(tmp_path / "bob.csr", csr_pem(build_csr(key, user_subject("bob", ("ops",)))))
    wrong_key = atomic_write(tmp_path / "wrong.key", private_key_to_pem(ec.generate_private_key(ec.SECP256R1())))
    kubeconfig = issue(
        home, tmp_path, "bob", "-g", "ops", "--csr", str(csr), "--key-path", str(wrong_key), "--server", mtls_server.url
    )

    result = kubectl.run(kubeconfig, "get", "--raw", "/version")

    assert result.returncode != 0
    assert "private key does not match public key" in result.stderr
    assert mtls_server.seen == []
