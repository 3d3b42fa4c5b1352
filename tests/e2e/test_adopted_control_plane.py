"""A kubeadm control-plane node adopted in place, renewed in place, with keys encrypted at rest,
and a real kube-apiserver started on those very files.

    /etc/kubernetes (tests/kubeadm/kubeadm_shaped.py: node cp-e2e, endpoint localhost:PORT)
      → authsvc --home ETC pki import --in-place --cluster-config ETC/kubeadm-config.yaml
      → pki.key_passphrase_file + authsvc keys encrypt   (CA keys encrypted; ca.key and sa.key stay
                                                          in clear: the control plane reads them)
      → authsvc certs renew all                          (in place, backups under ETC/backups/)
      → kube-apiserver --client-ca-file=ETC/pki/ca.crt --tls-cert-file=ETC/pki/apiserver.crt
          --service-account-signing-key-file=ETC/pki/sa.key --service-account-key-file=ETC/pki/sa.pub
          --requestheader-client-ca-file=ETC/pki/front-proxy-ca.crt --proxy-client-cert-file=...
          --authentication-token-webhook-config-file=<authsvc webhook-config>, and authsvc serve

A control plane of its own (not the session's `cluster`): it runs on another home (kubeadm's tree,
adopted, not made by `authsvc init`) whose kubeconfigs name a port fixed before it starts. etcd
is the helper's plain-HTTP member (kubeadm's etcd certificates are renewed, not served).
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from tests.components.kube_apiserver import ControlPlane, ControlPlaneFiles, free_ports, write_kubeconfig
from tests.components.support import require_binary
from tests.e2e.fixtures import KUBECTL, require_apiserver_binary
from tests.e2e.harness import AuthsvcCli, AuthsvcServer, Kubectl, Result, child_env, eventually
from tests.kubeadm.kubeadm_shaped import KubeadmShape, write_kubeadm_etc

ISSUER = "https://kubernetes.default.svc.cluster.local"
READER = "e2e:adopted-namespace-reader"


@dataclass
class Adopted:
    etc: Path
    workdir: Path
    authsvc: AuthsvcCli
    kubectl: Kubectl
    control_plane: ControlPlane

    def admin(self, *args: str) -> str:
        result = self.kubectl(self.etc / "admin.conf", *args)
        assert result.ok, result.describe()
        return result.stdout

    def token_kubeconfig(self, name: str, token: str) -> Path:
        path = self.workdir / f"{name}.kubeconfig"
        return write_kubeconfig(path, self.control_plane.url, self.etc / "pki" / "ca.crt", token=token)

    def lists_namespaces(self, kubeconfig: Path) -> Result:
        return eventually(lambda: self.kubectl(kubeconfig, "get", "namespaces", "-o", "name"), lambda r: r.ok)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adopted]:
    kubectl, etcd, openssl = require_binary(KUBECTL), require_binary("etcd"), require_binary("openssl")
    apiserver = require_apiserver_binary()
    workdir = tmp_path_factory.mktemp("adopted")
    port, webhook_port = free_ports(2)
    shape = KubeadmShape(
        node_name="cp-e2e",
        advertise_address="127.0.0.1",
        control_plane_endpoint=f"localhost:{port}",
        cluster_name="adopted",
        service_cidr="10.0.0.0/24",  # the helper's --service-cluster-ip-range
        extra_sans=(),
        bind_port=port,
    )
    etc = write_kubeadm_etc(openssl, workdir / "etc-kubernetes", shape)
    cli = AuthsvcCli(etc, child_env(home_dir=workdir))
    cli.ok("pki", "import", "--in-place", "--cluster-config", str(etc / "kubeadm-config.yaml"))
    _encrypt_at_rest(etc, cli, webhook_port)
    cli.ok("certs", "renew", "all")
    webhook_config = etc / "authsvc-webhook.conf"
    cli.ok("webhook-config", "--url", f"https://127.0.0.1:{webhook_port}/authenticate", "-o", str(webhook_config))
    server = AuthsvcServer(cli, f"127.0.0.1:{webhook_port}", workdir / "authsvc-serve.log")
    server.start(_webhook_client_context(etc))
    control_plane = ControlPlane(apiserver, etcd, secure_port=port)
    try:
        control_plane.start(_files(etc, webhook_config, workdir), workdir / "control-plane")
        running = Adopted(etc, workdir, cli, Kubectl(kubectl, cli.env), control_plane)
        _bootstrap_rbac(running)
        yield running
    finally:
        control_plane.stop()
        server.stop()


def _encrypt_at_rest(etc: Path, cli: AuthsvcCli, webhook_port: int) -> None:
    secret = etc / "authsvc-passphrase"
    secret.touch(mode=0o600)
    secret.write_text("adopted, and encrypted at rest\n")
    config = yaml.safe_load((etc / "authsvc.yaml").read_text())
    config["pki"]["key_passphrase_file"] = str(secret)
    config["server"]["bind"] = f"127.0.0.1:{webhook_port}"
    config["server"]["workers"] = 1
    (etc / "authsvc.yaml").write_text(yaml.safe_dump(config))
    cli.ok("keys", "encrypt")


def _webhook_client_context(etc: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(etc / "pki" / "ca.crt"))
    pki = etc / "pki" / "authsvc"
    context.load_cert_chain(str(pki / "apiserver-webhook-client.crt"), str(pki / "apiserver-webhook-client.key"))
    return context


def _files(etc: Path, webhook_config: Path, workdir: Path) -> ControlPlaneFiles:
    pki = etc / "pki"
    super_admin = yaml.safe_load((etc / "super-admin.conf").read_text())["users"][0]["user"]
    probe_cert, probe_key = workdir / "probe.crt", workdir / "probe.key"
    for path, field in ((probe_cert, "client-certificate-data"), (probe_key, "client-key-data")):
        path.touch(mode=0o600)
        path.write_bytes(base64.b64decode(super_admin[field]))
    front_proxy = [
        f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
        f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
        f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    ]
    return ControlPlaneFiles(
        client_ca_file=pki / "ca.crt",
        tls_cert_file=pki / "apiserver.crt",
        tls_private_key_file=pki / "apiserver.key",
        service_account_key_file=pki / "sa.pub",
        service_account_signing_key_file=pki / "sa.key",
        service_account_issuer=ISSUER,
        webhook_config_file=webhook_config,
        extra_args=front_proxy,
        probe_client_cert_file=probe_cert,
        probe_client_key_file=probe_key,
    )


def _bootstrap_rbac(adopted: Adopted) -> None:
    """kubeadm's binding of kubeadm:cluster-admins (1.20 has none built in), made with super-admin.conf."""
    made = adopted.kubectl(
        adopted.etc / "super-admin.conf", "create", "clusterrolebinding", "kubeadm:cluster-admins",
        "--clusterrole=cluster-admin", "--group=kubeadm:cluster-admins",
    )  # fmt: skip
    assert made.ok, made.describe()
    reader = eventually(
        lambda: adopted.kubectl(
            adopted.etc / "admin.conf", "create", "clusterrole", READER, "--verb=get,list", "--resource=namespaces"
        ),
        lambda r: r.ok,
    )
    assert reader.ok, reader.describe()


def test_the_api_server_serves_the_certificate_renewed_in_place(adopted: Adopted) -> None:
    served = x509.load_pem_x509_certificate(
        ssl.get_server_certificate(("127.0.0.1", adopted.control_plane.secure_port or 0)).encode()
    )
    on_disk = x509.load_pem_x509_certificate((adopted.etc / "pki" / "apiserver.crt").read_bytes())
    assert served == on_disk
    (backup,) = (adopted.etc / "backups").iterdir()
    before = x509.load_pem_x509_certificate((backup / "pki" / "apiserver.crt").read_bytes())
    assert before.serial_number != on_disk.serial_number, "renewed, the kubeadm original kept as a backup"


def test_the_renewed_admin_conf_reaches_the_endpoint_it_names(adopted: Adopted) -> None:
    config = yaml.safe_load((adopted.etc / "admin.conf").read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://localhost:{adopted.control_plane.secure_port}"
    assert "namespace/default" in adopted.admin("get", "namespaces", "-o", "name")


def test_keys_at_rest_as_documented(adopted: Adopted) -> None:
    pki = adopted.etc / "pki"
    encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
    for name in ("front-proxy-ca.key", "etcd/ca.key", "authsvc/webhook-client-ca.key"):
        assert (pki / name).read_bytes().startswith(encrypted), name
    for name in ("ca.key", "sa.key", "apiserver.key", "front-proxy-client.key"):
        assert not (pki / name).read_bytes().startswith(encrypted), f"{name}: the control plane reads it"
    adopted.authsvc.ok("pki", "check")


def test_a_person_from_the_adopted_home(adopted: Adopted) -> None:
    kubeconfig = adopted.workdir / "alice.kubeconfig"
    adopted.authsvc.ok("issue", "alice", "-g", "adopted-readers", "-o", str(kubeconfig))
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "alice@adopted"
    forbidden = adopted.kubectl(kubeconfig, "get", "namespaces")
    assert not forbidden.ok and 'User "alice" cannot list resource "namespaces"' in forbidden.stderr
    binding = ["clusterrolebinding", "adopted-readers", f"--clusterrole={READER}", "--group=adopted-readers"]
    adopted.admin("create", *binding)
    listed = adopted.lists_namespaces(kubeconfig)
    assert listed.ok, listed.describe()


def test_a_user_token_through_the_webhook_of_the_adopted_home(adopted: Adopted) -> None:
    token = adopted.authsvc.ok("token", "create-user", "bob", "-g", "adopted-token-readers", "--ttl", "10m").strip()
    adopted.admin(
        "create", "clusterrolebinding", "adopted-token-readers", f"--clusterrole={READER}",
        "--group=adopted-token-readers",
    )  # fmt: skip
    listed = adopted.lists_namespaces(adopted.token_kubeconfig("bob", token))
    assert listed.ok, listed.describe()
    refused = adopted.kubectl(adopted.token_kubeconfig("nobody", "not-a-token-of-anyone"), "get", "namespaces")
    assert not refused.ok and "Unauthorized" in refused.stderr


def test_kube_apiserver_signs_with_the_clear_sa_key_that_authsvc_shares(adopted: Adopted) -> None:
    """kube-apiserver reads ETC/pki/sa.key (in clear while the CA keys are encrypted) and signs a
    TokenRequest with it; authsvc verifies that token with the same key, and kube-apiserver
    accepts authsvc's own service-account token natively."""
    adopted.admin("create", "serviceaccount", "deployer", "-n", "default")
    issued = adopted.admin("create", "token", "deployer", "-n", "default").strip()
    verified = adopted.authsvc.ok("token", "verify", "-", "-o", "json", input=issued)
    assert '"username": "system:serviceaccount:default:deployer"' in verified
    uid = adopted.admin("get", "serviceaccount", "deployer", "-n", "default", "-o", "jsonpath={.metadata.uid}")
    token = adopted.authsvc.ok("token", "create", "-n", "default", "--serviceaccount", "deployer", "--uid", uid)
    adopted.admin(
        "create", "clusterrolebinding", "adopted-deployer", f"--clusterrole={READER}",
        "--serviceaccount=default:deployer",
    )  # fmt: skip
    listed = adopted.lists_namespaces(adopted.token_kubeconfig("deployer", token.strip()))
    assert listed.ok, listed.describe()
