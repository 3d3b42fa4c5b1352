"""Configuration drift: a setting that shapes a certificate changed after the certificate was made.
`pki check` reports it, `certs renew` reissues to match (the key kept unless its type changed),
`serve` warns; a home whose settings did not change has none."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from pki.keys import KeyType, key_type_of, public_key_fingerprint
from pki.names import SubjectAltNames, subject_user
from tests.components.support import free_port
from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, kubeconfig_cert
from tests.serve.support import authsvc_serve


def configure(tree: Tree, **sections: dict[str, Any]) -> None:
    path = tree.root / "authsvc.yaml"
    data = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(data))


def findings(tree: Tree) -> tuple[int, list[dict[str, str]]]:
    result = run_cli(["pki", "check", "-o", "json"], home=tree.root)
    return result.exit_code, json.loads(result.stdout)["findings"]


def sans(cert: x509.Certificate) -> set[str]:
    return set(SubjectAltNames.from_certificate_like(cert.extensions).as_strings())


def test_a_home_whose_settings_did_not_change_has_no_drift(tree_copy: Tree) -> None:
    code, found = findings(tree_copy)
    assert (code, found) == (0, [])
    renewed = run_cli(["certs", "renew", "all"], home=tree_copy.root)
    assert renewed.exit_code == 0 and "reissued" not in renewed.stdout, renewed.stdout


def test_changed_serving_sans_are_reported_and_reissued_with_the_same_key(tree_copy: Tree, openssl: Path) -> None:
    old = tree_copy.cert("pki/authsvc/serving.crt")
    configure(tree_copy, server={"serving_sans": ["DNS:localhost", "IP:127.0.0.1", "DNS:authsvc.example.test"]})
    code, found = findings(tree_copy)
    assert code == 1
    (drift,) = [f for f in found if f["check"] == "drift"]
    assert drift["path"] == "authsvc/serving.crt"
    assert "SANs lack DNS:authsvc.example.test (server.serving_sans: DNS:localhost" in drift["message"]
    assert "`authsvc certs renew authsvc/serving`" in drift["message"]

    result = run_cli(["certs", "renew", "authsvc/serving"], home=tree_copy.root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("reissued authsvc/serving to match the configuration (SANs; serial ")
    new = tree_copy.cert("pki/authsvc/serving.crt")
    assert sans(new) == {"DNS:localhost", "IP:127.0.0.1", "DNS:authsvc.example.test"}
    assert public_key_fingerprint(new.public_key()) == public_key_fingerprint(old.public_key())  # type: ignore[arg-type]
    verify = subprocess.run(
        [str(openssl), "verify", "-purpose", "sslserver", "-CAfile", "ca.crt", "authsvc/serving.crt"],
        cwd=tree_copy.pki, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stderr
    assert findings(tree_copy) == (0, [])
    (backup,) = (tree_copy.root / "backups").iterdir()
    assert x509.load_pem_x509_certificate((backup / "pki/authsvc/serving.crt").read_bytes()) == old


def test_a_new_node_name_reissues_what_it_shapes_and_nothing_else(tree_copy: Tree) -> None:
    admin_before = kubeconfig_cert(tree_copy.root / "admin.conf")
    configure(tree_copy, cluster={"node_name": "cp-2"})
    _, found = findings(tree_copy)
    drifted = {f["path"] for f in found if f["check"] == "drift"}
    assert drifted == {"apiserver.crt", "etcd/server.crt", "etcd/peer.crt", "../kubelet.conf"}
    result = run_cli(["certs", "renew", "all"], home=tree_copy.root)
    assert result.exit_code == 0, result.stderr
    assert sorted(line.split()[1] for line in result.stdout.splitlines() if line.startswith("reissued")) == [
        "apiserver", "etcd-peer", "etcd-server", "kubelet.conf",
    ]  # fmt: skip
    assert subject_user(tree_copy.cert("pki/etcd/server.crt").subject)[0] == "cp-2"
    assert "DNS:cp-2" in sans(tree_copy.cert("pki/apiserver.crt"))
    assert "DNS:cp-1" not in sans(tree_copy.cert("pki/apiserver.crt"))
    kubelet = kubeconfig_cert(tree_copy.root / "kubelet.conf")
    assert subject_user(kubelet.subject) == ("system:node:cp-2", ("system:nodes",))
    admin = kubeconfig_cert(tree_copy.root / "admin.conf")
    assert admin.subject == admin_before.subject and admin.serial_number != admin_before.serial_number  # renewed only
    assert findings(tree_copy) == (0, [])


def test_a_new_key_type_and_a_shorter_lifetime_reissue_with_a_new_key(tree_copy: Tree) -> None:
    key_before = (tree_copy.pki / "authsvc/serving.key").read_bytes()
    configure(tree_copy, pki={"key_type": "ecdsa-p384", "server_ttl": "30d"})
    _, found = findings(tree_copy)
    messages = " | ".join(f"{f['path']}: {f['message']}" for f in found if f["check"] == "drift")
    assert "authsvc/serving.crt: a ecdsa-p256 key (pki.key_type: ecdsa-p384)" in messages
    assert "(pki.server_ttl: at most 30d from now)" in messages
    result = run_cli(["certs", "renew", "authsvc/serving"], home=tree_copy.root)
    assert "(lifetime, key type (new key); serial" in result.stdout, result.stdout + result.stderr
    new = tree_copy.cert("pki/authsvc/serving.crt")
    assert key_type_of(new.public_key()) is KeyType.EC_P384  # type: ignore[arg-type]
    assert (tree_copy.pki / "authsvc/serving.key").read_bytes() != key_before
    assert (tree_copy.pki / "authsvc/serving.key").stat().st_mode & 0o777 == 0o600
    (backup,) = (tree_copy.root / "backups").iterdir()
    assert (backup / "pki/authsvc/serving.key").read_bytes() == key_before
    assert (new.not_valid_after_utc - new.not_valid_before_utc).days == 30


def test_serve_warns_about_drift_and_serves(tree_copy: Tree, tmp_path: Path) -> None:
    configure(tree_copy, server={"serving_sans": ["DNS:localhost", "IP:127.0.0.1", "DNS:authsvc.example.test"]})
    log = tmp_path / "serve.log"
    with authsvc_serve(tree_copy.root, log, webhook=free_port(), public=None):
        pass
    text = log.read_text()
    assert "warning: pki/authsvc/serving.crt: SANs lack DNS:authsvc.example.test" in text, text
    assert "`authsvc certs renew authsvc/serving`" in text


def test_a_certificate_from_another_ca_is_the_operators_and_never_reissued(tree_copy: Tree, tmp_path: Path) -> None:
    """A serving certificate the operator put in place of authsvc's (their own CA's) is not compared."""
    from pki.ca import CertificateAuthority
    from pki.keys import generate_private_key
    from pki.names import common_name_subject
    from pki.profiles import SERVER
    from pki.store import write_certificates, write_private_key

    theirs = CertificateAuthority.create_root("their-ca", now=tree_copy.now)
    key = generate_private_key()
    cert = theirs.issue(
        subject=common_name_subject("authsvc"), public_key=key.public_key(), profile=SERVER, now=tree_copy.now,
        sans=SubjectAltNames.parse(["DNS:elsewhere.example"]),
    )  # fmt: skip
    write_private_key(tree_copy.pki / "authsvc/serving.key", key)
    write_certificates(tree_copy.pki / "authsvc/serving.crt", [cert])
    assert findings(tree_copy) == (0, [])
    configure(tree_copy, server={"serving_sans": ["DNS:localhost"]})
    assert findings(tree_copy) == (0, []), "still theirs: nothing drifted that authsvc made"
