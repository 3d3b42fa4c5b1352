"""`authsvc certs ...` and `authsvc crl` through the real entry point, checked with the real openssl."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from authsvc.cli.certs import REVOCATION_REASON_NAMES
from authsvc.home.opened import Home
from authsvc.init.steps import InitStep, cluster_ca_step, initialize_home, write_config_step
from authsvc.settings import Settings
from pki.ca import CertificateAuthority
from pki.clock import FixedClock
from pki.revocation import REVOCATION_REASONS
from pki.store import write_certificates, write_private_key
from tests.components.support import require_binary
from tests.conftest import CliResult, run_cli

pytestmark = pytest.mark.openssl


@pytest.fixture
def openssl() -> Path:
    return require_binary("openssl")


@pytest.fixture
def home(tmp_path: Path, clock: FixedClock) -> Home:
    """A home with its config, inventory and cluster CA only: what `certs` and `crl` use. (The full
    `authsvc init` also builds kubeadm's tree, kubeconfigs and signing keys: seconds per test.)"""
    steps: list[InitStep] = [write_config_step, cluster_ca_step]
    return initialize_home(tmp_path / "home", Settings(), clock=clock, environ={}, steps=steps).home


def openssl_run(openssl: Path, *args: str | Path) -> str:
    import subprocess

    done = subprocess.run([str(openssl), *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    return f"rc={done.returncode}\n{done.stdout}{done.stderr}"


def make_csr(openssl: Path, folder: Path, subject: str, *extra: str, newkey: tuple[str, ...] = ()) -> Path:
    """A CSR made by openssl itself, as a user would (key stays in `folder`)."""
    csr = folder / "req.csr"
    key_args = newkey or ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")
    out = openssl_run(
        openssl,
        "req",
        "-new",
        *key_args,
        "-noenc",
        "-keyout",
        folder / "req.key",
        "-subj",
        subject,
        *extra,
        "-out",
        csr,
    )
    assert out.startswith("rc=0"), out
    return csr


def tamper_signature(csr: Path) -> Path:
    """Flip one bit in the last byte of the CSR's signature (the DER ends with it); keep it parseable."""
    der = bytearray(x509.load_pem_x509_csr(csr.read_bytes()).public_bytes(Encoding.DER))
    der[-1] ^= 0x01
    body = base64.encodebytes(bytes(der)).decode()
    csr.write_text(f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n")
    return csr


def assert_one_line_error(result: CliResult, reason: str) -> None:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# (what the CSR is, how openssl makes it, extra sign options, the reason the refusal must name)
REFUSED_CSRS = [
    ("system:masters", "/O=system:masters/CN=mallory", (), (), (), "group 'system:masters' is privileged"),
    ("rsa-1024", "/O=dev/CN=weak", (), ("-newkey", "rsa:1024"), (), "RSA key of 1024 bits is too weak"),
    (
        "secp521r1",
        "/CN=p521",
        (),
        ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp521r1"),
        (),
        "secp521r1 is not supported",
    ),
    (
        "secp256k1",
        "/CN=k1",
        (),
        ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"),
        (),
        "secp256k1 is not supported",
    ),
    ("ca-true", "/CN=sub-ca", ("-addext", "basicConstraints=critical,CA:TRUE"), (), (), "CSR asks for CA:TRUE"),
    ("ttl-over-cap", "/O=dev/CN=long", (), (), ("--ttl", "400d"), "exceeds the policy's maximum of 365 days"),
    (
        "san-outside-policy",
        "/CN=web",
        ("-addext", "subjectAltName=DNS:evil.example"),
        (),
        ("--profile", "server"),
        "DNS SAN 'evil.example' is not allowed",
    ),
    (
        "ip-outside-policy",
        "/CN=web",
        ("-addext", "subjectAltName=IP:10.1.2.3"),
        (),
        ("--profile", "server"),
        "IP SAN 10.1.2.3 is not allowed",
    ),
    ("server-without-san", "/CN=web", (), (), ("--profile", "server"), "needs at least one DNS or IP SAN"),
]


@pytest.mark.parametrize(
    ("subject", "extra", "newkey", "options", "reason"), [r[1:] for r in REFUSED_CSRS], ids=[r[0] for r in REFUSED_CSRS]
)
def test_sign_refuses_with_the_reason_and_records_nothing(
    subject: str,
    extra: tuple[str, ...],
    newkey: tuple[str, ...],
    options: tuple[str, ...],
    reason: str,
    home: Home,
    openssl: Path,
    tmp_path: Path,
) -> None:
    csr = make_csr(openssl, tmp_path, subject, *extra, newkey=newkey)
    before = home.stores.inventory.count()
    out = tmp_path / "signed.crt"
    assert_one_line_error(run_cli(["certs", "sign", str(csr), "-o", str(out), *options], home=home.root), reason)
    assert home.stores.inventory.count() == before
    assert not out.exists()


def test_sign_refuses_a_tampered_signature(home: Home, openssl: Path, tmp_path: Path) -> None:
    csr = make_csr(openssl, tmp_path, "/O=dev/CN=eve")
    intact = run_cli(["certs", "sign", str(csr), "-o", str(tmp_path / "ok.crt")], home=home.root)
    assert intact.exit_code == 0, intact.stderr  # the twin: the same request untouched is signed
    before = home.stores.inventory.count()
    result = run_cli(["certs", "sign", str(tamper_signature(csr)), "-o", str(tmp_path / "bad.crt")], home=home.root)
    assert_one_line_error(result, "CSR signature is invalid")
    assert home.stores.inventory.count() == before and not (tmp_path / "bad.crt").exists()


def test_sign_accepts_allowed_requests_and_openssl_verifies_them(home: Home, openssl: Path, tmp_path: Path) -> None:
    before = home.stores.inventory.count()
    client = make_csr(openssl, tmp_path, "/O=dev/O=ops/CN=bob")
    result = run_cli(["certs", "sign", str(client), "--ttl", "12h"], home=home.root)
    assert result.exit_code == 0, result.stderr
    cert = x509.load_pem_x509_certificate(result.stdout.encode())
    assert cert.subject.rfc4514_string() == "CN=bob,O=ops,O=dev"
    (tmp_path / "bob.crt").write_text(result.stdout)
    verified = openssl_run(
        openssl, "verify", "-purpose", "sslclient", "-CAfile", home.layout.cert_path("ca"), tmp_path / "bob.crt"
    )
    assert verified.startswith("rc=0"), verified
    server_dir = tmp_path / "server"
    server_dir.mkdir()
    server = make_csr(openssl, server_dir, "/CN=api", "-addext", "subjectAltName=DNS:api.default.svc,IP:127.0.0.1")
    out = tmp_path / "api.crt"
    signed = run_cli(["certs", "sign", str(server), "--profile", "server", "-o", str(out)], home=home.root)
    assert signed.exit_code == 0, signed.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert openssl_run(
        openssl, "verify", "-purpose", "sslserver", "-CAfile", home.layout.cert_path("ca"), out
    ).startswith("rc=0")
    assert home.stores.inventory.count() == before + 2


def test_encrypt_key_needs_a_configured_passphrase(home: Home) -> None:
    result = run_cli(["certs", "create", "alice", "--encrypt-key"], home=home.root)
    assert result.exit_code == 1 and "pki.key_passphrase_file" in result.stderr
    assert not (home.layout.issued_dir / "alice.key").exists()


def test_create_writes_private_key_and_certificate(home: Home, openssl: Path) -> None:
    result = run_cli(["certs", "create", "alice", "-g", "dev", "--key-type", "rsa-2048"], home=home.root)
    assert result.exit_code == 0, result.stderr
    cert_file, key_file = home.layout.issued_dir / "alice.crt", home.layout.issued_dir / "alice.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert_file.stat().st_mode) == 0o644
    assert stat.S_IMODE(home.layout.issued_dir.stat().st_mode) == 0o700
    assert openssl_run(openssl, "verify", "-CAfile", home.layout.cert_path("ca"), cert_file).startswith("rc=0")
    modulus = openssl_run(openssl, "x509", "-in", cert_file, "-noout", "-modulus")
    assert (
        modulus.split("\n", 1)[1]
        == openssl_run(openssl, "rsa", "-in", key_file, "-noout", "-modulus").split("\n", 1)[1]
    )
    again = run_cli(["certs", "create", "alice"], home=home.root)
    assert again.exit_code == 1 and "--force" in again.stderr


def test_create_from_an_intermediate_writes_the_chain(home: Home, openssl: Path) -> None:
    root = home.stores.load_ca("ca")
    intermediate = root.create_intermediate("authsvc issuing CA", now=home.clock())
    write_private_key(home.layout.key_path("issuing"), intermediate.key)
    write_certificates(home.layout.cert_path("issuing"), [intermediate.certificate])
    write_certificates(home.root / "pki" / "issuing.chain.crt", intermediate.chain)
    result = run_cli(
        ["certs", "create", "web", "--profile", "server", "--san", "DNS:web.svc", "--ca", "issuing"], home=home.root
    )
    assert result.exit_code == 0, result.stderr
    cert_file = home.layout.issued_dir / "web.crt"
    chain = x509.load_pem_x509_certificates(cert_file.read_bytes())
    assert [c.subject for c in chain] == [chain[0].subject, intermediate.certificate.subject]
    ca_file = home.layout.cert_path("ca")
    assert openssl_run(openssl, "verify", "-CAfile", ca_file, "-untrusted", cert_file, cert_file).startswith("rc=0")
    assert not openssl_run(openssl, "verify", "-CAfile", ca_file, cert_file).startswith("rc=0")
    listed = json.loads(run_cli(["certs", "list", "--ca", "issuing", "-o", "json"], home=home.root).stdout)
    assert [r["commonName"] for r in listed] == ["web"]


def test_crl_lists_the_revoked_serial_and_openssl_rejects_only_that_cert(
    home: Home, openssl: Path, tmp_path: Path
) -> None:
    for user in ("alice", "bob"):
        assert run_cli(["certs", "create", user, "-g", "dev"], home=home.root).exit_code == 0
    records = {r.common_name: r for r in home.stores.inventory.certificates()}
    revoked = run_cli(["certs", "revoke", records["alice"].serial, "--reason", "keyCompromise"], home=home.root)
    assert revoked.exit_code == 0 and records["alice"].serial in revoked.stdout
    crl_file = tmp_path / "f.pem"
    assert run_cli(["crl", "-o", str(crl_file)], home=home.root).exit_code == 0
    text = openssl_run(openssl, "crl", "-in", crl_file, "-noout", "-text")
    assert f"Serial Number: {records['alice'].serial.upper()}" in text and "Key Compromise" in text
    assert records["bob"].serial.upper() not in text
    ca_file = home.layout.cert_path("ca")
    for user, verdict in (("alice", "certificate revoked"), ("bob", ": OK")):
        out = openssl_run(
            openssl,
            "verify",
            "-crl_check",
            "-CRLfile",
            crl_file,
            "-CAfile",
            ca_file,
            home.layout.issued_dir / f"{user}.crt",
        )
        assert verdict in out, out
    der_file = tmp_path / "f.der"
    assert run_cli(["crl", "--der", "-o", str(der_file)], home=home.root).exit_code == 0
    assert not der_file.read_bytes().startswith(b"-----")
    der_text = openssl_run(openssl, "crl", "-inform", "DER", "-in", der_file, "-noout", "-text")
    assert f"Serial Number: {records['alice'].serial.upper()}" in der_text
    assert (home.root / "pki" / "ca.crl").read_bytes().startswith(b"-----BEGIN X509 CRL-----")


def test_revoke_unknown_or_invalid_serial_is_one_line(home: Home) -> None:
    assert_one_line_error(
        run_cli(["certs", "revoke", "abcdef0123"], home=home.root), "no certificate with serial abcdef0123"
    )
    assert_one_line_error(run_cli(["certs", "revoke", "not-hex"], home=home.root), "invalid serial 'not-hex'")
    assert run_cli(["certs", "revoke", "abc", "--reason", "bored"], home=home.root).exit_code == 2


def test_revoke_twice_and_revoking_the_root_are_refused(home: Home) -> None:
    assert run_cli(["certs", "create", "alice"], home=home.root).exit_code == 0
    alice = next(r for r in home.stores.inventory.certificates() if r.common_name == "alice")
    assert run_cli(["certs", "revoke", alice.serial.upper()], home=home.root).exit_code == 0
    assert_one_line_error(run_cli(["certs", "revoke", alice.serial], home=home.root), "already revoked")
    root = next(r for r in home.stores.inventory.certificates() if r.profile == "root-ca")
    assert_one_line_error(run_cli(["certs", "revoke", root.serial], home=home.root), "a CA cannot revoke itself")


def test_list_in_every_format(home: Home) -> None:
    assert run_cli(["certs", "create", "alice", "-g", "dev", "-g", "ops"], home=home.root).exit_code == 0
    table = run_cli(["certs", "list"], home=home.root).stdout.splitlines()
    assert table[0].split()[:3] == ["SERIAL", "NAME", "GROUPS"]
    assert any(line.split()[1:3] == ["alice", "dev,ops"] for line in table[1:])
    as_json = json.loads(run_cli(["certs", "list", "-o", "json"], home=home.root).stdout)
    as_yaml = yaml.safe_load(run_cli(["certs", "list", "-o", "yaml"], home=home.root).stdout)
    assert as_json == as_yaml
    rows = [(r["commonName"], r["groups"], r["profile"]) for r in as_json]
    assert ("kubernetes", [], "root-ca") in rows and rows[-1] == ("alice", ["dev", "ops"], "client")
    revoked_only = json.loads(run_cli(["certs", "list", "--status", "revoked", "-o", "json"], home=home.root).stdout)
    assert revoked_only == []


@pytest.mark.parametrize(
    "command", [["certs"], ["certs", "create"], ["certs", "sign"], ["certs", "list"], ["certs", "revoke"], ["crl"]]
)
def test_help_teaches_with_examples(command: list[str]) -> None:
    result = run_cli([*command, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "authsvc " in result.stdout.split("Examples:", 1)[1]


def test_revocation_reasons_in_the_cli_are_the_libraries() -> None:
    assert set(REVOCATION_REASON_NAMES) == set(REVOCATION_REASONS)


def write_config(home: Path, pki: dict[str, object]) -> None:
    home.mkdir(mode=0o700)
    (home / "authsvc.yaml").write_text(yaml.safe_dump({"pki": pki}))


def test_passphrase_file_encrypts_keys_at_rest(tmp_path: Path, openssl: Path) -> None:
    home = tmp_path / "home"
    write_config(home, {"key_passphrase_file": "passphrase.txt"})
    (home / "passphrase.txt").write_text("correct horse battery staple\n")
    assert run_cli(["init"], home=home).exit_code == 0
    assert (home / "pki" / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    created = run_cli(["certs", "create", "alice", "-g", "dev"], home=home)
    assert created.exit_code == 0, created.stderr
    # Leaf keys stay readable by kubectl and servers (as kubeadm's do) unless asked otherwise.
    assert (home / "issued" / "alice.key").read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert run_cli(["certs", "create", "carol", "--encrypt-key"], home=home).exit_code == 0
    assert (home / "issued" / "carol.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    readable = openssl_run(
        openssl, "pkey", "-in", home / "pki" / "ca.key", "-passin", f"file:{home / 'passphrase.txt'}", "-noout"
    )
    assert readable.startswith("rc=0"), readable
    (home / "passphrase.txt").write_text("wrong\n")
    assert_one_line_error(run_cli(["certs", "create", "bob"], home=home), "wrong passphrase")
    (home / "passphrase.txt").unlink()
    assert_one_line_error(run_cli(["certs", "create", "bob"], home=home), "cannot read key passphrase file")


def init_light(home: Path, pki: dict[str, object], environ: dict[str, str]) -> None:
    """Config + cluster CA only, through the init steps (the full tree is tested above)."""
    settings = Settings.model_validate({"pki": pki})
    steps: list[InitStep] = [write_config_step, cluster_ca_step]
    initialize_home(home, settings, environ=environ, steps=steps)


def test_passphrase_from_environment(tmp_path: Path) -> None:
    home, env = tmp_path / "home", {"AUTHSVC_TEST_PASSPHRASE": "s3cret"}
    init_light(home, {"key_passphrase_env": "AUTHSVC_TEST_PASSPHRASE"}, env)
    assert (home / "pki" / "ca.key").read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert run_cli(["certs", "create", "alice"], home=home, env=env).exit_code == 0
    assert_one_line_error(
        run_cli(["certs", "create", "bob"], home=home, env={"AUTHSVC_TEST_PASSPHRASE": ""}),
        "environment variable AUTHSVC_TEST_PASSPHRASE (the key passphrase) is not set",
    )


def test_an_encrypted_ca_without_a_configured_passphrase_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init_light(home, {"key_passphrase_env": "AUTHSVC_TEST_PASSPHRASE"}, {"AUTHSVC_TEST_PASSPHRASE": "s3cret"})
    (home / "authsvc.yaml").write_text(yaml.safe_dump({"pki": {}}))
    assert_one_line_error(
        run_cli(["certs", "create", "bob"], home=home), "is encrypted: set its passphrase in pki.key_passphrase_file"
    )


def test_empty_passphrase_file_fails_closed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_config(home, {"key_passphrase_file": "empty.txt"})
    (home / "empty.txt").write_text("\n")
    assert_one_line_error(run_cli(["init"], home=home), "the key passphrase is empty")
    assert not (home / "pki" / "ca.key").exists()


def test_library_intermediate_loads_back_from_the_home(home: Home) -> None:
    intermediate = home.stores.load_ca("ca").create_intermediate("issuing", now=home.clock())
    write_private_key(home.layout.key_path("issuing"), intermediate.key)
    write_certificates(home.layout.cert_path("issuing"), [intermediate.certificate, *intermediate.chain])
    loaded = home.stores.load_ca("issuing")
    assert isinstance(loaded, CertificateAuthority) and loaded.chain == intermediate.chain
