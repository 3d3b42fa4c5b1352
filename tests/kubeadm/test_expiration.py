"""`authsvc certs check-expiration`: kubeadm's two tables, its JSON, and an injected clock."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pki.kubeadm.expiration import kubeadm_date, residual_time
from tests.conftest import run_cli
from tests.kubeadm.conftest import Tree, iso

KUBEADM_CERTS = [  # kubeadm lists them sorted by name; kubelet.conf is authsvc's addition (it embeds its cert)
    "admin.conf",
    "apiserver",
    "apiserver-etcd-client",
    "apiserver-kubelet-client",
    "controller-manager.conf",
    "etcd-healthcheck-client",
    "etcd-peer",
    "etcd-server",
    "front-proxy-client",
    "kubelet.conf",
    "scheduler.conf",
    "super-admin.conf",
]


def test_tables_in_kubeadm_shape(kubeadm_tree: Tree) -> None:
    result = run_cli(["--now", iso(kubeadm_tree.now), "certs", "check-expiration"], home=kubeadm_tree.root)
    assert result.exit_code == 0, result.stderr
    certs, cas = result.stdout.split("\n\n")
    header, *rows = certs.splitlines()
    assert header.split("   ")[0] == "CERTIFICATE"
    for column in ("EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"):
        assert column in header
    assert [r.split()[0] for r in rows if not r.startswith("authsvc/")] == KUBEADM_CERTS
    apiserver = next(r for r in rows if r.startswith("apiserver "))
    expires = kubeadm_date(kubeadm_tree.now + dt.timedelta(days=365))
    assert expires in apiserver and " 1y " in apiserver and apiserver.split()[-2:] == ["ca", "no"]  # exactly 365d
    etcd = next(r for r in rows if r.startswith("etcd-server "))
    assert " etcd-ca " in etcd
    ca_header, *ca_rows = cas.strip().splitlines()
    assert ca_header.split() == ["CERTIFICATE", "AUTHORITY", "EXPIRES", "RESIDUAL", "TIME", "EXTERNALLY", "MANAGED"]
    assert [r.split()[0] for r in ca_rows] == ["ca", "etcd-ca", "front-proxy-ca"]
    assert all(" 9y " in r or " 10y " in r for r in ca_rows)
    assert result.stderr == ""  # nothing expires within 30 days


def test_flags_a_certificate_expiring_in_10_days(kubeadm_tree: Tree) -> None:
    apiserver_expires = kubeadm_tree.cert("pki/apiserver.crt").not_valid_after_utc
    when = iso(apiserver_expires - dt.timedelta(days=10))
    result = run_cli(["--now", when, "certs", "check-expiration"], home=kubeadm_tree.root)
    assert result.exit_code == 0
    row = next(r for r in result.stdout.splitlines() if r.startswith("apiserver "))
    assert row.split()[6] == "10d"  # Mon DD, YYYY HH:MM UTC, then the residual time
    assert "warning: apiserver expires in 10d: run `authsvc certs renew apiserver`" in result.stderr
    data = json.loads(
        run_cli(["--now", when, "certs", "check-expiration", "-o", "json"], home=kubeadm_tree.root).stdout
    )
    entry = next(c for c in data["certificates"] if c["name"] == "apiserver")
    assert entry["expiringSoon"] is True and entry["residualTime"] == 10 * 86400


def test_not_flagged_outside_the_threshold(kubeadm_tree: Tree) -> None:
    """The twin: 40 days before expiry nothing is flagged with the default 30d, but is with --warn-within 60d."""
    when = iso(kubeadm_tree.cert("pki/apiserver.crt").not_valid_after_utc - dt.timedelta(days=40))
    quiet = run_cli(["--now", when, "certs", "check-expiration"], home=kubeadm_tree.root)
    assert quiet.exit_code == 0 and "apiserver" not in quiet.stderr
    loud = run_cli(["--now", when, "certs", "check-expiration", "--warn-within", "60d"], home=kubeadm_tree.root)
    assert "warning: apiserver expires in 40d" in loud.stderr


def test_json_follows_kubeadm_output_api(kubeadm_tree: Tree) -> None:
    result = run_cli(
        ["--now", iso(kubeadm_tree.now), "certs", "check-expiration", "-o", "json"], home=kubeadm_tree.root
    )
    data = json.loads(result.stdout)
    assert data["kind"] == "CertificateExpirationInfo"
    assert data["apiVersion"] == "output.kubeadm.k8s.io/v1alpha3"
    admin = next(c for c in data["certificates"] if c["name"] == "admin.conf")
    assert admin["caName"] == "ca" and admin["externallyManaged"] is False and admin["missing"] is False
    assert admin["residualTime"] == 365 * 86400
    assert {a["name"] for a in data["certificateAuthorities"]} == {"ca", "etcd-ca", "front-proxy-ca"}


def test_missing_ca_key_is_externally_managed_and_missing_files_are_shown(tree_copy: Tree) -> None:
    (tree_copy.pki / "front-proxy-ca.key").unlink()
    (tree_copy.pki / "etcd" / "peer.crt").unlink()
    result = run_cli(["--now", iso(tree_copy.now), "certs", "check-expiration"], home=tree_copy.root)
    client = next(r for r in result.stdout.splitlines() if r.startswith("front-proxy-client "))
    assert client.split()[-1] == "yes"
    assert "!MISSING! etcd-peer" in result.stdout


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (59, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (86399, "23h"),
        (10 * 86400, "10d"),
        (364 * 86400 + 86399, "364d"),
        (365 * 86400, "1y"),
        (3650 * 86400 - 600, "9y"),
    ],
)
def test_residual_time_is_apimachinerys_short_human_duration(seconds: int, text: str) -> None:
    assert residual_time(dt.timedelta(seconds=seconds)) == text


def test_kubeadm_date() -> None:
    when = dt.datetime(2027, 1, 5, 3, 7, tzinfo=dt.UTC)
    assert kubeadm_date(when) == "Jan 05, 2027 03:07 UTC"
