"""`authsvc certs renew`: same key and attributes, new serial and dates, a backup, kubeconfigs too."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from pki.builder import CLOCK_SKEW
from pki.keys import KeyType, generate_private_key, public_key_fingerprint
from pki.names import SubjectAltNames, user_subject
from pki.profiles import SERVER
from pki.store import write_certificates
from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, iso, kubeconfig_cert

LATER = dt.timedelta(days=300)
YEAR = dt.timedelta(days=365)


def extensions_without_aki(cert: x509.Certificate) -> list[x509.Extension[x509.ExtensionType]]:
    return [e for e in cert.extensions if not isinstance(e.value, x509.AuthorityKeyIdentifier)]


def records(home: Path) -> dict[str, dict[str, object]]:
    listed = json.loads(run_cli(["certs", "list", "-o", "json"], home=home).stdout)
    return {c["serial"]: c for c in listed}


def test_renew_keeps_subject_sans_and_key_and_changes_serial_and_dates(tree_copy: Tree) -> None:
    old = tree_copy.cert("pki/apiserver.crt")
    old_bytes = (tree_copy.pki / "apiserver.crt").read_bytes()
    key_before = (tree_copy.pki / "apiserver.key").read_bytes()
    when = tree_copy.now + LATER
    result = run_cli(["--now", iso(when), "certs", "renew", "apiserver"], home=tree_copy.root)
    assert result.exit_code == 0, result.stderr
    assert "renewed apiserver" in result.stdout and "restart kube-apiserver" in result.stdout
    new = tree_copy.cert("pki/apiserver.crt")
    assert new.subject == old.subject
    assert extensions_without_aki(new) == extensions_without_aki(old)  # SANs, usages, constraints, SKI
    assert public_key_fingerprint(new.public_key()) == public_key_fingerprint(old.public_key())  # type: ignore[arg-type]
    assert (tree_copy.pki / "apiserver.key").read_bytes() == key_before
    assert new.serial_number != old.serial_number
    assert new.not_valid_before_utc == when - CLOCK_SKEW
    assert new.not_valid_after_utc == when + YEAR  # same lifetime as kubeadm's profile
    new.verify_directly_issued_by(tree_copy.cert("pki/ca.crt"))
    (backup,) = (tree_copy.root / "backups").iterdir()
    assert backup.name == when.strftime("%Y%m%dT%H%M%SZ")
    assert (backup / "pki" / "apiserver.crt").read_bytes() == old_bytes
    rows = records(tree_copy.root)
    assert rows[format(old.serial_number, "x")]["status"] == "superseded"
    assert rows[format(new.serial_number, "x")]["status"] == "valid"
    assert rows[format(new.serial_number, "x")]["name"] == "apiserver"


def test_renew_kubeconfig_replaces_the_embedded_certificate_only(tree_copy: Tree) -> None:
    path = tree_copy.root / "admin.conf"
    before = yaml.safe_load(path.read_text())
    old = kubeconfig_cert(path)
    when = tree_copy.now + LATER
    assert run_cli(["--now", iso(when), "certs", "renew", "admin.conf"], home=tree_copy.root).exit_code == 0
    after = yaml.safe_load(path.read_text())
    new = kubeconfig_cert(path)
    assert new.subject == old.subject and new.serial_number != old.serial_number
    assert new.not_valid_after_utc == when + YEAR
    assert after["users"][0]["user"]["client-key-data"] == before["users"][0]["user"]["client-key-data"]
    assert after["clusters"] == before["clusters"] and after["contexts"] == before["contexts"]
    assert path.stat().st_mode & 0o777 == 0o600
    (backup,) = (tree_copy.root / "backups").iterdir()
    assert yaml.safe_load((backup / "admin.conf").read_text()) == before
    assert base64.b64decode(before["users"][0]["user"]["client-certificate-data"]) != base64.b64decode(
        after["users"][0]["user"]["client-certificate-data"]
    )


def test_renew_all_renews_every_kubeadm_certificate(tree_copy: Tree) -> None:
    result = run_cli(["--now", iso(tree_copy.now + LATER), "certs", "renew", "all"], home=tree_copy.root)
    assert result.exit_code == 0, result.stderr
    renewed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("renewed ")}
    kubeadm = {"apiserver", "apiserver-kubelet-client", "front-proxy-client", "etcd-server", "etcd-peer"}
    kubeadm |= {"etcd-healthcheck-client", "apiserver-etcd-client", "admin.conf", "super-admin.conf"}
    kubeadm |= {"kubelet.conf", "controller-manager.conf", "scheduler.conf"}
    assert kubeadm <= renewed
    assert tree_copy.cert("pki/etcd/peer.crt").not_valid_after_utc == tree_copy.now + LATER + YEAR


def test_renew_refused_when_the_ca_would_expire_first(tree_copy: Tree) -> None:
    ca_expires = tree_copy.cert("pki/etcd/ca.crt").not_valid_after_utc
    before = (tree_copy.pki / "etcd" / "server.crt").read_bytes()
    when = ca_expires - dt.timedelta(days=100)  # the renewed certificate would outlive etcd-ca by 265 days
    result = run_cli(["--now", iso(when), "certs", "renew", "etcd-server"], home=tree_copy.root)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "CN=etcd-ca expires at" in result.stderr
    assert "renew the CA first" in result.stderr
    assert (tree_copy.pki / "etcd" / "server.crt").read_bytes() == before
    assert not (tree_copy.root / "backups").exists()


@pytest.mark.parametrize(("names", "code"), [(["nonexistent"], 2), (["all", "apiserver"], 2)])
def test_renew_bad_names(tree_copy: Tree, names: list[str], code: int) -> None:
    result = run_cli(["certs", "renew", *names], home=tree_copy.root)
    assert result.exit_code == code and result.stderr.startswith("error: ")


def test_other_auto_renew_certificates_are_renewed_with_their_own_lifetime(tree_copy: Tree) -> None:
    """A certificate another component recorded with auto_renew (e.g. authsvc's serving cert)."""
    home = tree_copy.open()
    ca, key = home.stores.load_ca("ca"), generate_private_key(KeyType.EC_P256)
    sans = SubjectAltNames.parse(["DNS:authsvc.example"])
    cert = ca.issue(subject=user_subject("authsvc"), public_key=key.public_key(), profile=SERVER, now=tree_copy.now,
                    ttl=dt.timedelta(days=90), sans=sans)  # fmt: skip
    write_certificates(home.layout.cert_path("extra/serving"), [cert])
    home.stores.inventory.record(cert, profile="server", now=tree_copy.now, name="extra/serving", auto_renew=True)
    home.stores.engine.dispose()
    when = tree_copy.now + dt.timedelta(days=80)
    listed = run_cli(["--now", iso(when), "certs", "check-expiration"], home=tree_copy.root)
    assert "warning: extra/serving expires in 10d" in listed.stderr
    result = run_cli(["--now", iso(when), "certs", "renew", "extra/serving"], home=tree_copy.root)
    assert result.exit_code == 0, result.stderr
    new = tree_copy.cert("pki/extra/serving.crt")
    assert new.not_valid_after_utc == when + dt.timedelta(days=90)  # its own lifetime, not kubeadm's year
    assert extensions_without_aki(new) == extensions_without_aki(cert)
