"""`authsvc ca rotate`: the three phases in order (and refused out of order, saying why), what
every file holds at each phase, old and new leaves verifying during the overlap (openssl and
cryptography), and an interrupted phase finished by running it again."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from authsvc.home.opened import Home, open_home
from authsvc.rotation.ca_rollover import ca_rotate
from authsvc.rotation.executor import rotate
from authsvc.rotation.facts import kubeconfig_fact, kubeconfig_targets, read_rollover
from pki.check import AuditOptions, Severity, audit_pki_dir
from pki.clock import FixedClock
from pki.keys import keys_match, load_private_key_pem
from pki.profiles import CLIENT
from pki.rotation.rollover import Phase, State, fingerprint
from tests.components.support import require_binary
from tests.conftest import run_cli
from tests.crash import Crash, count_calls, crash_at
from tests.rotate.support import (
    DAY,
    T0,
    assert_nothing_lost,
    automatic_certificates,
    copy_home,
    trust_bundle,
    verify,
)

WEBHOOK = {"rotation": {"webhook_kubeconfig": "webhook.conf"}}


@pytest.fixture
def home(home_copy: Callable[..., Home]) -> Home:
    home = home_copy(**WEBHOOK)
    result = run_cli(
        [
            "--now",
            T0.isoformat(),
            "webhook-config",
            "--url",
            "https://127.0.0.1:8443",
            "-o",
            str(home.root / "webhook.conf"),
        ],
        home=home.root,
    )
    assert result.exit_code == 0, result.stderr
    return home


def phase(home: Home, name: str, *args: str) -> tuple[int, str]:
    result = run_cli(["--now", home.clock().isoformat(), "ca", "rotate", "--phase", name, *args], home=home.root)
    return result.exit_code, result.stdout + result.stderr


def advance(home: Home, days: float) -> None:
    clock = home.clock
    assert isinstance(clock, FixedClock)
    clock.advance(days * DAY)


def person(home: Home, user: str, days: float = 2) -> x509.Certificate:
    return home.stores.issuer("ca").create(user, profile=CLIENT, ttl=days * DAY, requester="test").certificate


def signing_ca(home: Home, ca: str = "ca") -> x509.Certificate:
    """The bundle's first certificate, after checking that pki/<ca>.key is its key."""
    first = trust_bundle(home, ca)[0]
    key = load_private_key_pem(home.layout.key_path(ca).read_bytes())
    assert keys_match(key, first.public_key())  # type: ignore[arg-type]
    return first


def kubeconfigs_current(home: Home) -> list[tuple[str, bool, bool]]:
    return [
        (f.path, f.ca_current, f.client_current) for f in (kubeconfig_fact(home, t) for t in kubeconfig_targets(home))
    ]


def no_audit_errors(home: Home) -> list[str]:
    findings = audit_pki_dir(home.root / "pki", AuditOptions(now=home.clock()))
    return [f"{f.path}: {f.message}" for f in findings if f.severity is Severity.ERROR]


def test_phases_out_of_order_are_refused_with_the_reason(home: Home) -> None:
    assert phase(home, "switch") == (
        1,
        "error: no rollover of this CA is in progress: start with --phase prepare, not switch\n",
    )
    assert phase(home, "finish")[0] == 1
    assert phase(home, "prepare")[0] == 0
    code, out = phase(home, "prepare")
    assert code == 1 and "the next phase is --phase switch" in out
    code, out = phase(home, "finish")
    assert code == 1 and "the next phase is --phase switch" in out
    code, out = phase(home, "switch")  # too soon: peers may not have the new bundle yet
    assert code == 1 and "switch after 2030-01-02T00:00:00Z (rotation.ca_publish_before_switch)" in out
    assert phase(home, "prepare", "--force")[0] == 2  # --force is for switch only
    assert phase(home, "switch", "--force")[0] == 0
    code, out = phase(home, "switch")
    assert code == 1 and "the next phase is --phase finish" in out
    code, out = phase(home, "prepare")
    assert code == 1 and "the next phase is --phase finish" in out


def test_a_rollover_keeps_old_and_new_leaves_valid_until_finish(home: Home, tmp_path: Path) -> None:
    openssl = require_binary("openssl")
    old_ca = signing_ca(home)
    alice = person(home, "alice", days=3)  # from the old CA

    assert phase(home, "prepare")[0] == 0
    bundle = trust_bundle(home, "ca")
    assert [fingerprint(c) for c in bundle] == [fingerprint(old_ca), fingerprint(bundle[1])]
    assert signing_ca(home) == old_ca  # prepare publishes; the old CA still signs
    assert all(c and k for _, c, k in kubeconfigs_current(home))  # kubeadm's kubeconfigs and webhook.conf trust both
    assert no_audit_errors(home) == []

    advance(home, 1)
    code, out = phase(home, "switch")
    assert code == 0 and "re-issued 9 automatic certificates from the new CA" in out
    new_ca = signing_ca(home)
    assert new_ca != old_ca and new_ca.subject == old_ca.subject
    assert [fingerprint(c) for c in trust_bundle(home, "ca")] == [fingerprint(new_ca), fingerprint(old_ca)]
    bob = person(home, "bob")
    now = home.clock()
    for cert in (alice, bob):  # the overlap: a leaf of each CA verifies against the bundle
        verify(cert, trust_bundle(home, "ca"), now)
        assert _openssl_verify(openssl, tmp_path, home.layout.cert_path("ca"), cert, now)
    for _, ca, cert in automatic_certificates(home):  # every automatic leaf of the cluster CA is the new CA's
        if ca == "ca":
            cert.verify_directly_issued_by(new_ca)
    assert no_audit_errors(home) == []
    assert_nothing_lost(home, now)

    code, out = phase(home, "finish")
    assert code == 1 and "alice (serial" in out and "Finish after 2030-01-04T00:00:00Z" in out
    advance(home, 2)
    assert phase(home, "finish")[0] == 0
    assert [fingerprint(c) for c in trust_bundle(home, "ca")] == [fingerprint(new_ca)]
    assert not home.layout.key_path("ca-previous").exists() and not home.layout.cert_path("ca-next").exists()
    kept = list(home.layout.backups_dir.rglob("ca-previous.key"))
    assert len(kept) == 1 and keys_match(load_private_key_pem(kept[0].read_bytes()), old_ca.public_key())  # type: ignore[arg-type]
    assert all(c and k for _, c, k in kubeconfigs_current(home))
    assert _kubeconfig_ca(home.root / "admin.conf") == [new_ca]
    # The twin: the old CA's leaf no longer verifies (at a time it was still valid), the new one does.
    at = now + DAY / 2
    assert _openssl_verify(openssl, tmp_path, home.layout.cert_path("ca"), bob, at)
    assert not _openssl_verify(openssl, tmp_path, home.layout.cert_path("ca"), alice, at)
    assert (read_rollover(home, "ca") or pytest.fail("no state")).state is State.FINISHED
    assert phase(home, "prepare")[0] == 0  # a finished rollover lets the next one start


def test_rotate_reports_an_interrupted_rollover_and_ca_list_shows_the_phase(home: Home) -> None:
    assert phase(home, "prepare")[0] == 0
    result = run_cli(["--now", home.clock().isoformat(), "ca", "list", "-o", "json"], home=home.root)
    rows = {r["name"]: r for r in yaml.safe_load(result.stdout)}
    assert rows["ca"]["rollover"] == "prepared" and rows["ca"]["next"] == "ca rotate --phase switch --ca ca"
    assert rows["ca"]["bundle"] == 2 and rows["etcd/ca"]["rollover"] == "-"
    assert rotate(home).exit_code == 0  # a prepared rollover is no emergency
    advance(home, 1)
    with crash_at(3), pytest.raises(Crash):
        ca_rotate(home, Phase.SWITCH, "ca")
    report = rotate(open_home(home.root, clock=home.clock, environ={}))
    humans = [r.action.reason for r in report.results if r.status == "needs-human"]
    assert report.exit_code in (1, 3) and any("stopped half-way in phase switching" in h for h in humans), humans


def test_kubeadm_names_and_the_webhook_client_ca(home: Home) -> None:
    assert phase(home, "prepare", "--ca", "etcd-ca")[0] == 0  # kubeadm's name for etcd/ca
    assert len(trust_bundle(home, "etcd/ca")) == 2 and len(trust_bundle(home, "ca")) == 1
    code, out = phase(home, "prepare", "--ca", "nope")
    assert code == 2 and "unknown CA 'nope'" in out
    ca = "authsvc/webhook-client-ca"
    assert phase(home, "prepare", "--ca", ca)[0] == 0
    advance(home, 1)
    assert phase(home, "switch", "--ca", ca)[0] == 0
    client = home.layout.cert_path("authsvc/apiserver-webhook-client")
    new = signing_ca(home, ca)
    x509.load_pem_x509_certificate(client.read_bytes()).verify_directly_issued_by(new)
    embedded = yaml.safe_load((home.root / "webhook.conf").read_text())["users"][0]["user"]["client-certificate-data"]
    assert base64.b64decode(embedded) == client.read_bytes()  # what the API server presents is the new one


@pytest.mark.parametrize("name", ["prepare", "switch", "finish"])
def test_an_interrupted_phase_is_finished_by_running_it_again(name: str, rotate_template: Path, tmp_path: Path) -> None:
    """A crash at every file swap of the phase; the rerun ends where an uninterrupted run does."""
    base = tmp_path / "base"
    home = copy_home(rotate_template, base, FixedClock(T0))
    steps = ["prepare", "switch", "finish"]
    for earlier in steps[: steps.index(name)]:
        ca_rotate(home, Phase(earlier), "ca", force=True)
    home.stores.engine.dispose()
    count = count_calls(lambda: ca_rotate(_copy(base, tmp_path / "count"), Phase(name), "ca", force=True))
    assert count >= 5
    for n in range(1, count + 1):
        target = _copy(base, tmp_path / f"crash-{n}")
        with crash_at(n), pytest.raises(Crash):
            ca_rotate(target, Phase(name), "ca", force=True)
        target.stores.engine.dispose()
        again = open_home(target.root, clock=FixedClock(T0), environ={})
        result = ca_rotate(again, Phase(name), "ca", force=True)
        assert result.state.state is State(f"{name}ed" if name != "prepare" else "prepared")
        _assert_phase_outcome(again, name)
        shutil.rmtree(target.root)


def _copy(base: Path, target: Path) -> Home:
    shutil.copytree(base, target)
    return open_home(target, clock=FixedClock(T0), environ={})


def _assert_phase_outcome(home: Home, name: str) -> None:
    bundle, signer = trust_bundle(home, "ca"), signing_ca(home)
    assert len(bundle) == {"prepare": 2, "switch": 2, "finish": 1}[name]
    for _, ca, cert in automatic_certificates(home):
        if ca == "ca" and name != "prepare":
            cert.verify_directly_issued_by(signer)
    for key_file in home.root.glob("pki/ca*.key"):  # every CA key in pki/ belongs to the bundle
        key = load_private_key_pem(key_file.read_bytes())
        assert any(keys_match(key, c.public_key()) for c in bundle), key_file  # type: ignore[arg-type]
    for cert in bundle:  # and every CA of the bundle has its key here (until finish drops the old one)
        keys = [load_private_key_pem(p.read_bytes()) for p in home.root.glob("pki/ca*.key")]
        assert any(keys_match(k, cert.public_key()) for k in keys)  # type: ignore[arg-type]
    assert all(c for _, c, _ in kubeconfigs_current(home))
    assert_nothing_lost(home, T0)


def _kubeconfig_ca(path: Path) -> list[x509.Certificate]:
    data = yaml.safe_load(path.read_text())["clusters"][0]["cluster"]["certificate-authority-data"]
    return x509.load_pem_x509_certificates(base64.b64decode(data))


def _openssl_verify(openssl: Path, tmp: Path, bundle: Path, cert: x509.Certificate, at: Any) -> bool:
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf = tmp / "leaf.pem"
    leaf.write_bytes(cert.public_bytes(Encoding.PEM))
    result = subprocess.run(
        [
            str(openssl),
            "verify",
            "-attime",
            str(int(at.timestamp())),
            "-purpose",
            "sslclient",
            "-CAfile",
            str(bundle),
            str(leaf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode == 0
