"""`authsvc pki check [DIR]`: the kube-bench style audit; clean is exit 0, any finding exit 1."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from pki.check import AuditOptions, audit_pki_dir
from pki.keys import private_key_to_pem
from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, iso


def check(directory: Path, when: dt.datetime, *extra: str) -> tuple[int, list[dict[str, str]], str]:
    result = run_cli(
        ["--now", iso(when), "pki", "check", str(directory), "-o", "json", *extra], home=directory / "none"
    )
    return result.exit_code, json.loads(result.stdout)["findings"], result.stderr


def test_clean_tree_has_no_findings(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    code, findings, stderr = check(kubeadm_only, kubeadm_tree.now)
    assert (code, findings, stderr) == (0, [], "")


def test_key_readable_by_others_is_flagged(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    (kubeadm_only / "apiserver.key").chmod(0o644)
    code, findings, stderr = check(kubeadm_only, kubeadm_tree.now)
    assert code == 1 and stderr.startswith("error: 1 finding(s)") and stderr.count("\n") == 1
    assert findings == [
        {
            "check": "key-mode",
            "path": "apiserver.key",
            "severity": "error",
            "message": "private key mode 0644: must be 0600 or stricter",
        }
    ]


def test_table_output_names_the_file(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    (kubeadm_only / "etcd" / "ca.crt").chmod(0o666)
    result = run_cli(["--now", iso(kubeadm_tree.now), "pki", "check", str(kubeadm_only)], home=kubeadm_only / "none")
    assert result.exit_code == 1
    assert "cert-mode" in result.stdout and "etcd/ca.crt" in result.stdout and "0666" in result.stdout


def test_mismatched_pair_and_broken_chain(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    shutil.copy(kubeadm_only / "front-proxy-client.key", kubeadm_only / "apiserver.key")
    shutil.copy(kubeadm_only / "apiserver-kubelet-client.crt", kubeadm_only / "front-proxy-client.crt")
    shutil.copy(kubeadm_only / "apiserver-kubelet-client.key", kubeadm_only / "front-proxy-client.key")
    _, findings, _ = check(kubeadm_only, kubeadm_tree.now)
    assert {(f["check"], f["path"]) for f in findings} == {
        ("pair", "apiserver.crt"),
        ("chain", "front-proxy-client.crt"),
    }


def test_an_unreadable_ca_vouches_for_none_of_its_leaves(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    (kubeadm_only / "front-proxy-ca.crt").write_bytes(b"not a certificate\n")
    findings = audit_pki_dir(kubeadm_only, AuditOptions(now=kubeadm_tree.now))
    assert {(f.check, f.path) for f in findings} == {
        ("unreadable", "front-proxy-ca.crt"),
        ("chain", "front-proxy-client.crt"),
    }
    assert [f.message for f in findings if f.check == "chain"] == ["not signed by front-proxy-ca.crt"]


@pytest.mark.parametrize(
    ("options", "missing"),
    [
        (["--dns-domain", "corp.example"], "DNS:kubernetes.default.svc.corp.example"),
        (["--service-cidr", "10.100.0.0/16"], "IP:10.100.0.1"),
    ],
)
def test_apiserver_sans_must_cover_the_service(
    kubeadm_only: Path, kubeadm_tree: Tree, options: list[str], missing: str
) -> None:
    code, findings, _ = check(kubeadm_only, kubeadm_tree.now, *options)
    assert code == 1
    (finding,) = findings
    assert finding["check"] == "apiserver-sans" and missing in finding["message"]


def test_expiry_within_threshold(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    when = kubeadm_tree.now + dt.timedelta(days=355)
    _, findings, _ = check(kubeadm_only, when)
    flagged = {f["path"] for f in findings if f["check"] == "expiry"}
    assert "apiserver.crt" in flagged and "etcd/server.crt" in flagged and "ca.crt" not in flagged
    assert all("expires in 10d" in f["message"] for f in findings)
    code, findings, _ = check(kubeadm_only, when, "--warn-within", "5d")
    assert (code, findings) == (0, [])


def test_expired_is_an_error(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    findings = audit_pki_dir(kubeadm_only, AuditOptions(now=kubeadm_tree.now + dt.timedelta(days=400)))
    expired = [f for f in findings if f.path == "apiserver.crt"]
    assert expired and expired[0].severity == "error" and "expired at" in expired[0].message


def test_weak_key_and_a_leaf_where_a_ca_belongs(kubeadm_only: Path, kubeadm_tree: Tree) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = kubeadm_only / "legacy.key"
    path.write_bytes(private_key_to_pem(weak))  # type: ignore[arg-type]
    path.chmod(0o600)
    shutil.copy(kubeadm_only / "apiserver.crt", kubeadm_only / "front-proxy-ca.crt")
    findings = audit_pki_dir(kubeadm_only, AuditOptions(now=kubeadm_tree.now))
    by_check = {(f.check, f.path): f.message for f in findings}
    assert "1024 bits is too weak" in by_check[("key-strength", "legacy.key")]
    assert "not a CA" in by_check[("ca-constraints", "front-proxy-ca.crt")]


def test_default_directory_is_the_homes_pki(kubeadm_tree: Tree) -> None:
    result = run_cli(["--now", iso(kubeadm_tree.now), "pki", "check", "-o", "json"], home=kubeadm_tree.root)
    assert json.loads(result.stdout)["directory"] == str(kubeadm_tree.pki)
