"""Private keys at rest: turning a passphrase on for an existing home (`keys encrypt`), off again
(`keys decrypt`), `pki check` on a mismatch, sa.key kept in clear for kube-apiserver, and the
passphrase read from a command (`pki.key_passphrase_command`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import Home
from pki.keys import load_private_key_pem, private_key_to_pem
from tests.components.support import require_binary
from tests.conftest import run_cli
from tests.rotate.support import checksums

PASSPHRASE = "correct horse battery staple"
CA_KEYS = {"ca.key", "front-proxy-ca.key", "etcd/ca.key", "authsvc/webhook-client-ca.key"}
ENCRYPTED = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


@pytest.fixture(scope="module")
def openssl() -> Path:
    return require_binary("openssl")


def configure(home: Path, **pki: Any) -> None:
    path = home / "authsvc.yaml"
    data = yaml.safe_load(path.read_text())
    data["pki"].update(pki)
    path.write_text(yaml.safe_dump(data))


def with_passphrase_file(home: Path, passphrase: str = PASSPHRASE) -> Path:
    secret = home / "passphrase.txt"
    secret.touch(mode=0o600)
    secret.write_text(passphrase + "\n")
    configure(home, key_passphrase_file="passphrase.txt")
    return secret


def key_findings(home: Path) -> dict[str, str]:
    result = run_cli(["pki", "check", "-o", "json"], home=home)
    return {f["path"]: f["message"] for f in json.loads(result.stdout)["findings"] if f["check"] == "key-at-rest"}


def openssl_reads(openssl: Path, key: Path, *passin: str) -> bool:
    result = subprocess.run(
        [str(openssl), "pkey", "-in", str(key), "-noout", *passin], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


def test_turning_a_passphrase_on_then_keys_encrypt(home: Home, openssl: Path) -> None:
    root, pki = home.root, home.root / "pki"
    secret = with_passphrase_file(root)
    found = key_findings(root)
    assert set(found) == CA_KEYS
    assert all("run `authsvc keys encrypt`" in m for m in found.values())
    refused = run_cli(["certs", "create", "alice"], home=root)
    assert refused.exit_code == 1 and "run `authsvc keys encrypt`" in refused.stderr

    before = checksums(root)
    dry = run_cli(["keys", "encrypt", "--dry-run"], home=root)
    assert dry.exit_code == 0 and "would be encrypted: pki/ca.key" in dry.stdout
    assert checksums(root) == before, "--dry-run writes nothing"

    clear_ca = (pki / "ca.key").read_bytes()
    result = run_cli(["keys", "encrypt"], home=root)
    assert result.exit_code == 0, result.stderr
    assert {line.split("pki/")[1] for line in result.stdout.splitlines() if line.startswith("encrypted:")} == CA_KEYS
    assert "left in clear: pki/sa.key (kube-apiserver (--service-account-signing-key-file)" in result.stdout
    assert "left in clear: pki/apiserver.key" in result.stdout
    assert PASSPHRASE not in result.stdout + result.stderr
    for name in CA_KEYS:
        assert (pki / name).read_bytes().startswith(ENCRYPTED) and (pki / name).stat().st_mode & 0o777 == 0o600
    (backup,) = (root / "backups").iterdir()
    assert (backup / "pki" / "ca.key").read_bytes() == clear_ca
    assert openssl_reads(openssl, pki / "ca.key", "-passin", f"file:{secret}")
    assert not openssl_reads(openssl, pki / "ca.key", "-passin", "pass:wrong")
    assert openssl_reads(openssl, pki / "sa.key"), "kube-apiserver reads sa.key: in clear"

    assert key_findings(root) == {}
    for command in (["certs", "create", "alice"], ["webhook-config", "-o", str(root / "wh.conf")]):
        done = run_cli(command, home=root)
        assert done.exit_code == 0, (command, done.stderr)
    assert (
        run_cli(["token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "u-1"], home=root).exit_code
        == 0
    )
    again = run_cli(["keys", "encrypt"], home=root)
    assert again.exit_code == 0 and "nothing to do" in again.stdout


def test_keys_decrypt_undoes_it(home: Home) -> None:
    root, pki = home.root, home.root / "pki"
    with_passphrase_file(root)
    assert run_cli(["keys", "encrypt"], home=root).exit_code == 0
    result = run_cli(["keys", "decrypt"], home=root)
    assert result.exit_code == 0, result.stderr
    assert {line.split("pki/")[1] for line in result.stdout.splitlines() if line.startswith("decrypted:")} == CA_KEYS
    assert not any((pki / name).read_bytes().startswith(ENCRYPTED) for name in CA_KEYS)
    assert run_cli(["certs", "create", "bob"], home=root).exit_code == 1, "clear CA keys with a passphrase set"
    data = yaml.safe_load((root / "authsvc.yaml").read_text())
    data["pki"]["key_passphrase_file"] = None
    (root / "authsvc.yaml").write_text(yaml.safe_dump(data))
    assert run_cli(["certs", "create", "bob"], home=root).exit_code == 0
    assert key_findings(root) == {}


def test_keys_encrypt_refuses_what_it_cannot_do(home: Home) -> None:
    root = home.root
    nothing = run_cli(["keys", "encrypt"], home=root)
    assert nothing.exit_code == 1 and "`keys encrypt` needs a passphrase: set pki.key_passphrase_file" in nothing.stderr
    with_passphrase_file(root)
    clear = run_cli(["keys", "encrypt", "sa"], home=root)
    assert clear.exit_code == 2 and "pki/sa.key stays in clear: kube-apiserver" in clear.stderr
    unknown = run_cli(["keys", "encrypt", "nope"], home=root)
    assert unknown.exit_code == 2 and "no key 'nope'" in unknown.stderr
    assert not (root / "backups").exists(), "nothing was written"


def test_an_encrypted_sa_key_is_reported_and_decrypted(home: Home) -> None:
    """sa.key as an older release wrote it (encrypted): it still signs, pki check says kube-apiserver
    cannot read it, and `keys decrypt sa` puts it in clear."""
    root, sa = home.root, home.root / "pki" / "sa.key"
    with_passphrase_file(root)
    assert run_cli(["keys", "encrypt"], home=root).exit_code == 0
    key = load_private_key_pem(sa.read_bytes())
    sa.write_bytes(private_key_to_pem(key, PASSPHRASE.encode()))
    found = key_findings(root)
    assert set(found) == {"sa.key"}
    assert "kube-apiserver (--service-account-signing-key-file)" in found["sa.key"]
    assert "run `authsvc keys decrypt sa`" in found["sa.key"]
    assert (
        run_cli(["token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "u-1"], home=root).exit_code
        == 0
    )
    result = run_cli(["keys", "decrypt", "sa"], home=root)
    assert result.exit_code == 0 and result.stdout.startswith("decrypted: pki/sa.key"), result.stdout + result.stderr
    assert not sa.read_bytes().startswith(ENCRYPTED) and key_findings(root) == {}


def test_pki_check_reports_a_wrong_or_missing_passphrase(home: Home) -> None:
    root = home.root
    secret = with_passphrase_file(root)
    assert run_cli(["keys", "encrypt"], home=root).exit_code == 0
    secret.write_text("not the passphrase\n")
    assert set(key_findings(root).values()) == {"does not decrypt with the configured passphrase"}
    configure(root, key_passphrase_file=None)
    found = key_findings(root)
    assert set(found) == CA_KEYS and all("no passphrase is configured" in m for m in found.values())


# --- pki.key_passphrase_command -------------------------------------------------------------------


def script(folder: Path, body: str) -> Path:
    path = folder / "secret-manager"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return path


def test_the_passphrase_comes_from_a_command_run_once_per_process(home: Home, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    command = script(tmp_path, f'echo run >> "{runs}"\nprintf "%s\\n" "{PASSPHRASE}"\n')
    configure(home.root, key_passphrase_command=f"{command} --field passphrase")  # a string: split, no shell
    result = run_cli(["keys", "encrypt"], home=home.root)
    assert result.exit_code == 0, result.stderr
    assert runs.read_text().count("run") == 1, "four keys, one run of the command"
    assert load_private_key_pem((home.root / "pki" / "ca.key").read_bytes(), PASSPHRASE.encode())
    assert run_cli(["certs", "create", "carol"], home=home.root).exit_code == 0
    assert runs.read_text().count("run") == 2
    assert run_cli(["certs", "list"], home=home.root).exit_code == 0
    assert runs.read_text().count("run") == 2, "a command that signs nothing does not ask for the passphrase"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('echo "s3cret-on-stdout"\necho "vault: permission denied" >&2\nexit 3\n', "exited with status 3: vault: perm"),
        ("exit 0\n", "printed nothing on stdout"),
        ("sleep 5\necho late\n", "did not finish within 0.3s"),
    ],
)
def test_a_failing_passphrase_command_is_one_line_without_its_output(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, message: str
) -> None:
    monkeypatch.setattr("authsvc.home.secrets.SECRET_COMMAND_TIMEOUT", 0.3)
    configure(home.root, key_passphrase_command=[str(script(tmp_path, body))])
    result = run_cli(["keys", "encrypt"], home=home.root)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert "s3cret-on-stdout" not in result.stdout + result.stderr, "what it printed is never shown"
    assert not (home.root / "backups").exists()


def test_a_missing_program_and_a_bad_setting_are_named(home: Home) -> None:
    configure(home.root, key_passphrase_command=["no-such-secret-manager", "get"])
    missing = run_cli(["keys", "encrypt"], home=home.root)
    assert missing.exit_code == 1
    assert "cannot run the key passphrase command 'no-such-secret-manager': no such program" in missing.stderr
    configure(home.root, key_passphrase_command=[], key_passphrase_env=None)
    empty = run_cli(["keys", "encrypt"], home=home.root)
    assert empty.exit_code == 1 and "pki.key_passphrase_command" in empty.stderr
    configure(home.root, key_passphrase_command=["x"], key_passphrase_env="AUTHSVC_PASSPHRASE")
    both = run_cli(["keys", "list"], home=home.root)
    assert both.exit_code == 1
    assert "set one of pki.key_passphrase_file, pki.key_passphrase_env, pki.key_passphrase_command" in both.stderr
