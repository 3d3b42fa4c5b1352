"""Helpers for the rotation tests: homes on a fixed clock, chain verification, the state to compare."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store
from sqlalchemy import select

from authsvc.home.opened import Home, open_home
from authsvc.kubeconfig.documents import current_entries
from authsvc.rotation.facts import CertTarget, bundle_kids, cert_target
from authsvc.rotation.files import read_certificate
from pki.clock import FixedClock
from pki.inventory import CERTIFICATES, CertStatus
from pki.keys import load_private_key_pem, spki_der
from pki.names import SubjectAltNames
from pki.profiles import CLIENT, INTERMEDIATE_CA, ROOT_CA
from pki.store import load_certificates
from pki.tokens.kid import kid_for
from pki.tokens.signing_keys import KeyState, SigningKeyStore

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
# What the template home is made with: ECDSA everywhere (no RSA key generation), tokens that
# live up to 3 days (so each spans key phases), decisions audited to a file.
TEMPLATE_SETTINGS: dict[str, Any] = {
    "cluster": {"encryption_algorithm": "ECDSA-P256"},
    "tokens": {"algorithm": "ES256", "max_ttl": "3d", "sa_ttl": "3d"},
    "audit": {"path": "audit.log"},
    "rotation": {"lock_timeout": "5s"},
}


def copy_home(template: Path, target: Path, clock: FixedClock, **overrides: dict[str, Any]) -> Home:
    """A copy of `template` with `overrides` merged into its authsvc.yaml, opened on `clock`."""
    shutil.copytree(template, target)
    if overrides:
        config = target / "authsvc.yaml"
        data = yaml.safe_load(config.read_text())
        for section, values in overrides.items():
            data.setdefault(section, {}).update(values)
        config.write_text(yaml.safe_dump(data))
    return open_home(target, clock=clock, environ={})


def reopen(home: Home) -> Home:
    """The same home as a new process would see it (nothing cached)."""
    home.stores.engine.dispose()
    assert isinstance(home.clock, FixedClock)
    return open_home(home.root, clock=home.clock, environ={})


def checksums(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- the automatic certificates and what verifies them --------------------------------------------


_PARSED: dict[tuple[Path, int, int], x509.Certificate] = {}


def automatic_certificates(home: Home) -> Iterator[tuple[str, str, x509.Certificate]]:
    """(inventory name, CA name, certificate in its file) of every valid automatic certificate."""
    query = select(CERTIFICATES.c.name, CERTIFICATES.c.ca_name).where(
        CERTIFICATES.c.status == CertStatus.VALID.value,
        CERTIFICATES.c.auto_renew.is_(True),
        CERTIFICATES.c.profile.not_in((ROOT_CA.name, INTERMEDIATE_CA.name)),
    )
    with home.stores.engine.connect() as connection:
        rows = list(connection.execute(query))
    for name, ca in rows:
        yield name, ca, _parsed(cert_target(home, name))


def _parsed(target: CertTarget) -> x509.Certificate:
    """Parsed once per version of the file (the simulation reads every file every day)."""
    info = target.path.stat()
    key = (target.path, info.st_mtime_ns, info.st_size)
    if key not in _PARSED:
        _PARSED[key] = read_certificate(target)
    return _PARSED[key]


def verify(cert: x509.Certificate, trust: list[x509.Certificate], now: dt.datetime) -> None:
    """cryptography's verifier, as a TLS peer would check `cert` against the bundle `trust`:
    a server by its first SAN, a client (Kubernetes names clients by subject: no SAN needed)."""
    builder = PolicyBuilder().store(Store(trust)).time(now)
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    sans = SubjectAltNames.from_certificate_like(cert.extensions)
    if ExtendedKeyUsageOID.SERVER_AUTH in usages and (sans.dns or sans.ips):
        name: x509.DNSName | x509.IPAddress = x509.DNSName(sans.dns[0]) if sans.dns else x509.IPAddress(sans.ips[0])
        builder.build_server_verifier(name).verify(cert, [])
        return
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
    builder.extension_policies(
        ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee
    ).build_client_verifier().verify(cert, [])


def trust_bundle(home: Home, ca: str) -> list[x509.Certificate]:
    return load_certificates(home.layout.cert_path(ca))


def verify_all_automatic(home: Home, now: dt.datetime) -> int:
    """Every automatic certificate verifies against its CA's bundle at `now`; returns how many."""
    count, bundles = 0, {}
    for name, ca, cert in automatic_certificates(home):
        if ca not in bundles:
            bundles[ca] = trust_bundle(home, ca)
        try:
            verify(cert, bundles[ca], now)
        except Exception as e:
            raise AssertionError(f"{name} does not verify against pki/{ca}.crt at {now}: {e}") from e
        count += 1
    return count


# --- the state a rerun after a crash must converge to ----------------------------------------------


def logical_state(home: Home) -> dict[str, tuple[str, tuple[str, ...], bytes]]:
    """Logical name → (subject, SANs, public key) of every automatic certificate (not serials or dates)."""
    return {
        name: (
            cert.subject.rfc4514_string(),
            tuple(SubjectAltNames.from_certificate_like(cert.extensions).as_strings()),
            spki_der(cert.public_key()),  # type: ignore[arg-type]
        )
        for name, _, cert in automatic_certificates(home)
    }


def key_state(home: Home) -> dict[str, Any]:
    records = SigningKeyStore(home.stores.engine).keys()
    files = home.stores.signing_key_files
    return {
        "states": sorted((r.kid, r.state.value) for r in records),
        "sa.key": kid_for(files.load(files.active_key).public_key()),
        "sa.pub": sorted(bundle_kids(files.public_bundle)),
    }


def assert_nothing_lost(home: Home, now: dt.datetime) -> None:
    """Every key that signs something valid is still there: each automatic certificate has its key
    and one valid row that is what its file holds; a CA key for each issuer; sa.key is the active key."""
    rows: dict[str, list[str]] = {}
    for record in home.stores.inventory.certificates(status=CertStatus.VALID):
        if record.auto_renew and record.name:
            rows.setdefault(record.name, []).append(record.serial)
    for name, ca, cert in automatic_certificates(home):
        assert rows[name] == [format(cert.serial_number, "x")], f"{name}: rows {rows[name]} vs file"
        assert _leaf_key_matches(home, name, cert), f"{name}: its private key is missing or another one"
        signers = [c for c in trust_bundle(home, ca) if _signed_by(cert, c)]
        assert signers, f"{name} is signed by no CA of pki/{ca}.crt"
        assert any(_ca_key_matches(home, ca, signer) for signer in signers), f"{name}: its CA key is gone"
        verify(cert, trust_bundle(home, ca), now)
    state = key_state(home)
    active = [kid for kid, s in state["states"] if s == KeyState.ACTIVE.value]
    assert state["sa.key"] == active[0]
    published = {kid for kid, s in state["states"] if s in ("next", "active", "retiring")}
    assert set(state["sa.pub"]) == published


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except Exception:
        return False
    return True


def _leaf_key_matches(home: Home, name: str, cert: x509.Certificate) -> bool:
    target = cert_target(home, name)
    if target.in_kubeconfig:
        _, user = current_entries(yaml.safe_load(target.path.read_text()), target.path)
        key_pem = base64.b64decode(user["client-key-data"])
    else:
        key_pem = target.path.with_suffix(".key").read_bytes()
    key = load_private_key_pem(key_pem)
    return spki_der(key.public_key()) == spki_der(cert.public_key())  # type: ignore[arg-type]


def _ca_key_matches(home: Home, ca: str, signer: x509.Certificate) -> bool:
    for suffix in ("", "-next", "-previous"):
        path = home.layout.key_path(f"{ca}{suffix}")
        if path.is_file():
            key = load_private_key_pem(path.read_bytes(), home.secrets.key_passphrase)
            if spki_der(key.public_key()) == spki_der(signer.public_key()):  # type: ignore[arg-type]
                return True
    return False


# --- tokens as kube-apiserver checks them: a signature by a key in sa.pub, before exp ----------------


def sa_pub_keys(home: Home) -> dict[str, Any]:
    data = (home.root / "pki" / "sa.pub").read_bytes()
    marker = b"-----BEGIN PUBLIC KEY-----"
    keys = [serialization.load_pem_public_key(marker + part) for part in data.split(marker)[1:]]
    return {kid_for(k): k for k in keys}  # type: ignore[arg-type]


def verify_with_sa_pub(home: Home, token: str, now: dt.datetime) -> dict[str, Any]:
    kid = jwt.get_unverified_header(token)["kid"]
    keys = sa_pub_keys(home)
    assert kid in keys, f"token key {kid} is not in sa.pub ({sorted(keys)})"
    # PyJWT checks times against the real clock: the simulated ones are checked here instead.
    claims: dict[str, Any] = jwt.decode(
        token, keys[kid], algorithms=["ES256", "RS256"], options={"verify_exp": False, "verify_nbf": False,
        "verify_iat": False, "verify_aud": False},
    )  # fmt: skip
    assert claims["nbf"] <= now.timestamp() < claims["exp"], "outside its validity"
    return claims


# --- a home with one of every kind of work for a run ------------------------------------------------

SCENARIO_DAY = 340


def busy_home(home: Home) -> Home:
    """`home` (made at T0) brought to T0 + 340 days with something of every kind to do:

    every automatic certificate due (14 renewals), the webhook kubeconfig to follow its renewed
    client certificate, a prepared signing key due for activation, the cluster CA's CRL past
    nextUpdate, a long-expired person's certificate to prune, and one near expiry to report.
    """
    from authsvc.certs.crl import write_crl
    from tests.conftest import run_cli as cli

    clock = home.clock
    assert isinstance(clock, FixedClock)
    result = cli(["--now", T0.isoformat(), "webhook-config", "--url", "https://127.0.0.1:8443", "-o",
                  str(home.root / "webhook.conf")], home=home.root)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    write_crl(home, "ca")
    issuer = home.stores.issuer("ca")
    issuer.create("carol", profile=CLIENT, ttl=DAY, requester="test")  # expired long before the run: pruned
    issuer.create("dave", profile=CLIENT, ttl=360 * DAY, requester="test")  # 20 days left: reported
    clock.set(T0 + (SCENARIO_DAY - 7) * DAY)
    home.stores.token_service.rotate("prepare")
    clock.set(T0 + SCENARIO_DAY * DAY)
    home.stores.engine.dispose()
    return home
