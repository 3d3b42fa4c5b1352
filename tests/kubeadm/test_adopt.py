"""Adopting a kubeadm cluster (`authsvc pki import`): from /etc/kubernetes as kubeadm leaves it
(tests/kubeadm/kubeadm_shaped.py: endpoint k8s.example.test:7443, node cp-7, cluster prod-eu),
the settings are inferred and said, the kubeconfigs are managed or said not to be, and every
command works from the adopted home, `serve` included. In place, nothing is copied and renewals
write the very files kube-apiserver reads, with backups."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from tests.components.support import free_port
from tests.conftest import run_cli
from tests.kubeadm.conftest import checksums, iso
from tests.kubeadm.kubeadm_shaped import KUBELET_CLIENT_FILE, KubeadmShape
from tests.serve.support import authsvc_serve

SHAPE = KubeadmShape()
MANAGED = ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"]


def adopt(etc: Path, home: Path, *extra: str) -> Any:
    result = run_cli(["pki", "import", str(etc / "pki"), *extra], home=home)
    assert result.exit_code == 0, result.stderr
    return result


def config(home: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((home / "authsvc.yaml").read_text())
    return data


def test_import_infers_the_clusters_settings_and_says_where_from(kubeadm_etc: Path, tmp_path: Path) -> None:
    before = checksums(kubeadm_etc)
    home = tmp_path / "home"
    result = adopt(kubeadm_etc, home)
    out = result.stdout
    assert "inferred cluster.node_name: cp-7 (etcd/server.crt: subject CN)" in out
    assert "inferred cluster.control_plane_endpoint: k8s.example.test:7443 (admin.conf: server)" in out
    assert "inferred cluster.server: https://k8s.example.test:7443 (admin.conf: server)" in out
    assert "inferred cluster.name: prod-eu (admin.conf: cluster)" in out
    assert "inferred cluster.advertise_address: 127.0.0.7 (controller-manager.conf: server)" in out
    assert "inferred cluster.apiserver_cert_extra_sans: api.example.test, 192.0.2.50" in out
    assert "inferred cluster.encryption_algorithm: RSA-2048 (ca.crt: a rsa-2048 key)" in out
    cluster = config(home)["cluster"]
    assert cluster["node_name"] == "cp-7" and cluster["name"] == "prod-eu"
    assert cluster["server"] == "https://k8s.example.test:7443"
    assert cluster["control_plane_endpoint"] == "k8s.example.test:7443"
    assert cluster["apiserver_cert_extra_sans"] == ["api.example.test", "192.0.2.50"]
    assert f"managed kubeconfigs (renewed by `certs renew` and `rotate`): {', '.join(MANAGED)}" in out
    assert f"not managed: kubelet.conf: its client certificate is {KUBELET_CLIENT_FILE}" in out
    for made in ("serving.crt", "webhook-client-ca.crt", "apiserver-webhook-client.crt"):
        assert f"created {home / 'pki' / 'authsvc' / made} and " in out
    assert checksums(kubeadm_etc) == before, "the source is only read"
    for name in [*MANAGED, "kubelet.conf"]:
        assert (home / name).read_bytes() == (kubeadm_etc / name).read_bytes()
        assert (home / name).stat().st_mode & 0o777 == 0o600


def test_every_command_works_from_the_adopted_home(kubeadm_etc: Path, tmp_path: Path, kubectl_binary: Path) -> None:
    home = tmp_path / "home"
    adopt(kubeadm_etc, home)
    assert run_cli(["pki", "check"], home=home).exit_code == 0, "adoption leaves no drift and no finding"
    planned = run_cli(["init", "--dry-run"], home=home)
    assert planned.exit_code == 0 and "would" not in planned.stdout, planned.stdout  # nothing left to make

    issued = run_cli(["issue", "bob", "-g", "dev", "-o", str(tmp_path / "bob.conf")], home=home)
    assert issued.exit_code == 0, issued.stderr
    bob = yaml.safe_load((tmp_path / "bob.conf").read_text())
    assert bob["clusters"][0]["cluster"]["server"] == "https://k8s.example.test:7443"
    assert bob["current-context"] == "bob@prod-eu"
    cert = x509.load_pem_x509_certificate(base64.b64decode(bob["users"][0]["user"]["client-certificate-data"]))
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate((kubeadm_etc / "pki" / "ca.crt").read_bytes()))

    webhook_port = free_port()
    url = f"https://127.0.0.1:{webhook_port}/authenticate"
    wired = run_cli(["webhook-config", "--url", url, "-o", str(tmp_path / "webhook.conf")], home=home)
    assert wired.exit_code == 0, wired.stderr

    report = json.loads(run_cli(["certs", "check-expiration", "-o", "json"], home=home).stdout)
    listed = {c["name"]: c for c in report["certificates"]}
    assert set(MANAGED) <= listed.keys() and "kubelet.conf" not in listed
    assert all(c["expirationDate"] for c in listed.values()), "nothing is !MISSING!"

    renewed = run_cli(["certs", "renew", "all"], home=home)  # now: `serve` below uses what it writes
    assert renewed.exit_code == 0, renewed.stderr
    assert renewed.stdout.count("renewed ") == 14, renewed.stdout  # 7 leaves, 4 kubeconfigs, authsvc's 3 (proxy)
    assert "reissued" not in renewed.stdout, "what was inferred matches the files: nothing drifted"
    assert f"not renewed: kubelet.conf: its client certificate is {KUBELET_CLIENT_FILE}" in renewed.stdout

    log = tmp_path / "serve.log"
    with authsvc_serve(home, log, webhook=webhook_port, public=free_port()):
        answer = _review(home, url)
    assert answer["status"] == {"authenticated": False}
    assert "warning:" not in log.read_text(), log.read_text()


def _review(home: Path, url: str) -> dict[str, Any]:
    """A TokenReview as kube-apiserver sends it, with the client certificate the adopted home made."""
    context = ssl.create_default_context(cafile=str(home / "pki" / "ca.crt"))
    pki = home / "pki" / "authsvc"
    context.load_cert_chain(str(pki / "apiserver-webhook-client.crt"), str(pki / "apiserver-webhook-client.key"))
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "x"}})
    request = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    with opener.open(request, timeout=20) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def test_without_kubeconfigs_import_says_they_are_not_managed(kubeadm_etc: Path, tmp_path: Path) -> None:
    lone = tmp_path / "lone" / "pki"
    shutil.copytree(kubeadm_etc / "pki", lone)
    home = tmp_path / "home"
    result = run_cli(["pki", "import", str(lone)], home=home)
    assert result.exit_code == 0, result.stderr
    for name in [*MANAGED, "kubelet.conf"]:
        assert f"not managed: {name}: not in {lone.parent}" in result.stdout
    assert "inferred cluster.node_name: cp-7" in result.stdout  # the certificates still say it
    assert "note: cluster.server: no admin.conf" in result.stderr
    planned = run_cli(["init", "--dry-run", "--phase", "kubeconfig"], home=home).stdout
    assert "would write kubeconfig kubelet.conf (server https://127.0.0.7:6443)" in planned, planned  # the node's
    table = run_cli(["certs", "check-expiration"], home=home).stdout
    assert "!MISSING! admin.conf" in table
    renewed = run_cli(["certs", "renew", "all"], home=home)
    assert renewed.exit_code == 0, renewed.stderr
    assert f"not renewed: admin.conf: {home / 'admin.conf'} does not exist: not managed by this home" in renewed.stdout


def test_kubeconfig_dir_and_cluster_config_options(kubeadm_etc: Path, tmp_path: Path) -> None:
    lone = tmp_path / "lone" / "pki"
    shutil.copytree(kubeadm_etc / "pki", lone)
    documents = list(yaml.safe_load_all((kubeadm_etc / "kubeadm-config.yaml").read_text()))
    documents[1]["clusterName"] = "prod-eu-2"  # what the operator told kubeadm wins over the files
    cluster_config = tmp_path / "kubeadm.yaml"
    cluster_config.write_text(yaml.safe_dump_all(documents))
    home = tmp_path / "home"
    result = run_cli(
        ["pki", "import", str(lone), "--kubeconfig-dir", str(kubeadm_etc), "--cluster-config", str(cluster_config)],
        home=home,
    )
    assert result.exit_code == 0, result.stderr
    assert "inferred cluster.name: prod-eu-2 (kubeadm.yaml: ClusterConfiguration.clusterName)" in result.stdout
    assert "inferred cluster.service_cidr: 10.96.0.0/12 (kubeadm.yaml: ClusterConfiguration.networking" in result.stdout
    assert "inferred cluster.certificate_validity_period: 365d" in result.stdout
    assert config(home)["cluster"]["name"] == "prod-eu-2"
    assert (home / "admin.conf").is_file()


def _swap_client_key(etc: Path) -> None:
    admin, scheduler = (yaml.safe_load((etc / n).read_text()) for n in ("admin.conf", "scheduler.conf"))
    admin["users"][0]["user"]["client-key-data"] = scheduler["users"][0]["user"]["client-key-data"]
    (etc / "admin.conf").write_text(yaml.safe_dump(admin))


def _other_ca(etc: Path) -> None:
    admin = yaml.safe_load((etc / "admin.conf").read_text())
    other = (etc / "pki" / "front-proxy-ca.crt").read_bytes()
    admin["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(other).decode()
    (etc / "admin.conf").write_text(yaml.safe_dump(admin))


@pytest.mark.parametrize(
    ("breaker", "message"),
    [
        (_swap_client_key, "admin.conf: client-key-data does not match its client certificate"),
        (_other_ca, "admin.conf trusts another CA than the imported ca.crt"),
    ],
)
def test_a_broken_kubeconfig_is_refused_and_nothing_is_written(
    kubeadm_etc: Path, tmp_path: Path, breaker: Any, message: str
) -> None:
    breaker(kubeadm_etc)
    home = tmp_path / "home"
    result = run_cli(["pki", "import", str(kubeadm_etc / "pki")], home=home)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not home.exists(), "checked before anything is written"


# --- in place ----------------------------------------------------------------------------------


def test_in_place_adoption_changes_no_kubeadm_file(kubeadm_etc: Path) -> None:
    before = checksums(kubeadm_etc)
    result = run_cli(["pki", "import", "--in-place"], home=kubeadm_etc)
    assert result.exit_code == 0, result.stderr
    source = kubeadm_etc.resolve() / "pki"
    assert f"adopted {source} in place: 14 certificates recorded, no file copied" in result.stdout
    after = checksums(kubeadm_etc)
    assert {k: after[k] for k in before} == before, "kube-apiserver's files are left as they are"
    assert config(kubeadm_etc)["pki"]["in_place"] is True
    assert config(kubeadm_etc)["cluster"]["node_name"] == "cp-7"
    assert run_cli(["pki", "check"], home=kubeadm_etc).exit_code == 0


def test_in_place_renewal_writes_where_kube_apiserver_reads_with_backups(kubeadm_etc: Path, openssl: Path) -> None:
    assert run_cli(["pki", "import", "--in-place"], home=kubeadm_etc).exit_code == 0
    old_apiserver = (kubeadm_etc / "pki" / "apiserver.crt").read_bytes()
    old_admin = (kubeadm_etc / "admin.conf").read_bytes()
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=350)
    rotate = [sys.executable, "-m", "authsvc.cli", f"--home={kubeadm_etc}", f"--now={iso(when)}", "rotate"]
    result = subprocess.run(rotate, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode in (0, 3), result.stdout + result.stderr
    trail = (kubeadm_etc / "audit.log").read_text()  # the audit trail, not rotate's stderr
    assert '"action":"cert.renew","subject":"apiserver","outcome":"ok"' in trail
    assert '"action"' not in result.stderr
    assert (kubeadm_etc / "pki" / "apiserver.crt").read_bytes() != old_apiserver
    assert (kubeadm_etc / "admin.conf").read_bytes() != old_admin
    backup = kubeadm_etc / "backups" / when.strftime("%Y%m%dT%H%M%SZ")
    assert (backup / "pki" / "apiserver.crt").read_bytes() == old_apiserver
    assert (backup / "admin.conf").read_bytes() == old_admin
    verify = subprocess.run(
        [str(openssl), "verify", "-attime", str(int(when.timestamp())), "-CAfile", "pki/ca.crt", "pki/apiserver.crt"],
        cwd=kubeadm_etc, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert (kubeadm_etc / "pki" / "apiserver.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY")  # kept


def test_in_place_needs_the_home_above_the_pki_directory(kubeadm_etc: Path, tmp_path: Path) -> None:
    elsewhere = run_cli(["pki", "import", "--in-place", str(kubeadm_etc / "pki")], home=tmp_path / "home")
    assert elsewhere.exit_code == 2 and "the home is the directory above" in elsewhere.stderr
    own = run_cli(["pki", "import", str(kubeadm_etc / "pki")], home=kubeadm_etc)
    assert own.exit_code == 2 and "add --in-place" in own.stderr
    assert not (kubeadm_etc / "authsvc.yaml").exists() and not (tmp_path / "home").exists()


def test_in_place_keys_encrypt_leaves_what_the_control_plane_reads_in_clear(kubeadm_etc: Path) -> None:
    assert run_cli(["pki", "import", "--in-place"], home=kubeadm_etc).exit_code == 0
    secret = kubeadm_etc / "authsvc-passphrase"
    secret.touch(mode=0o600)
    secret.write_text("in place, still a secret\n")
    data = config(kubeadm_etc)
    data["pki"]["key_passphrase_file"] = str(secret)
    (kubeadm_etc / "authsvc.yaml").write_text(yaml.safe_dump(data))
    result = run_cli(["keys", "encrypt"], home=kubeadm_etc)
    assert result.exit_code == 0, result.stderr
    assert "left in clear: pki/ca.key (kube-controller-manager signs the cluster's CSRs with it" in result.stdout
    assert "left in clear: pki/sa.key" in result.stdout
    pki = kubeadm_etc / "pki"
    assert (pki / "ca.key").read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY")  # kubeadm's file, untouched
    for name in ("front-proxy-ca.key", "etcd/ca.key", "authsvc/webhook-client-ca.key"):
        assert (pki / name).read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY"), name
    assert run_cli(["certs", "create", "alice", "-g", "dev"], home=kubeadm_etc).exit_code == 0  # ca.key in clear
    renewed = run_cli(["certs", "renew", "etcd-server"], home=kubeadm_etc)  # etcd/ca.key decrypted
    assert renewed.exit_code == 0, renewed.stderr
    assert run_cli(["pki", "check"], home=kubeadm_etc).exit_code == 0
