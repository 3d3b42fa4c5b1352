"""`authsvc issue` through the real entry point: files, refusals, inventory, and kubectl's reading."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from authsvc.home.opened import Home
from authsvc.kubeconfig.issuer import CredentialInventory, IssueMode
from pki.csr import build_csr, csr_pem
from pki.keys import generate_private_key, keys_match, load_private_key_pem
from pki.names import subject_user, user_subject
from pki.profiles import CLIENT
from pki.store import atomic_write
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator's current directory (where ./USER.kubeconfig lands by default)."""
    path = tmp_path / "work"
    path.mkdir()
    monkeypatch.chdir(path)
    return path


def issue(home: Home, *args: str) -> Any:
    return run_cli(["issue", *args], home=home.root)


def credentials(home: Home) -> list[Any]:
    return CredentialInventory(home.stores.engine).credentials()


def client_identity(user: dict[str, Any]) -> tuple[x509.Certificate, tuple[str, tuple[str, ...]]]:
    cert = x509.load_pem_x509_certificate(base64.b64decode(user["client-certificate-data"]))
    return cert, subject_user(cert.subject)


def test_common_case_writes_user_kubeconfig_0600(home: Home, workdir: Path, kubectl: Kubectl) -> None:
    result = issue(home, "alice", "-g", "dev", "-g", "qa")

    assert result.exit_code == 0, result.stderr
    path = workdir / "alice.kubeconfig"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "wrote alice.kubeconfig: context alice@kubernetes" in result.stdout
    view = kubectl.view(path)
    assert view["current-context"] == "alice@kubernetes"
    cluster = view["clusters"][0]["cluster"]
    assert cluster["server"] == home.settings.cluster.server
    assert base64.b64decode(cluster["certificate-authority-data"]) == home.layout.cert_path("ca").read_bytes()
    user = view["users"][0]["user"]
    cert, identity = client_identity(user)
    assert identity == ("alice", ("dev", "qa"))
    assert keys_match(load_private_key_pem(base64.b64decode(user["client-key-data"])), cert.public_key())  # type: ignore[arg-type]
    [record] = credentials(home)
    assert (record.username, record.groups, record.mode, record.cluster) == (
        "alice",
        ("dev", "qa"),
        IssueMode.CERT,
        "kubernetes",
    )
    assert record.serial == format(cert.serial_number, "x")
    assert record.expires_at == cert.not_valid_after_utc
    assert record.requester.startswith("cli:")


def test_ttl_namespace_cluster_and_server_options(home: Home, workdir: Path, kubectl: Kubectl) -> None:
    result = issue(
        home, "alice", "--ttl", "2h", "-n", "team-a", "--cluster", "prod", "--server", "https://10.0.0.1:6443",
        "-o", "a.conf",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    view = kubectl.view(workdir / "a.conf")
    assert view["contexts"] == [
        {"name": "alice@prod", "context": {"cluster": "prod", "user": "alice", "namespace": "team-a"}}
    ]
    assert view["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    cert, _ = client_identity(view["users"][0]["user"])
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(hours=2, minutes=5)


def test_overwrite_is_refused_without_force(home: Home, workdir: Path) -> None:
    assert issue(home, "alice", "-o", "a.conf").exit_code == 0
    before = (workdir / "a.conf").read_bytes()

    refused = issue(home, "alice", "-o", "a.conf")

    assert refused.exit_code == 1
    assert refused.stderr == "error: a.conf already exists: use --force to replace it\n"
    assert (workdir / "a.conf").read_bytes() == before
    assert len(credentials(home)) == 1  # nothing was issued for the refused run

    replaced = issue(home, "alice", "-o", "a.conf", "--force")
    assert replaced.exit_code == 0, replaced.stderr
    assert (workdir / "a.conf").read_bytes() != before


def test_dash_prints_to_stdout_and_writes_nothing(home: Home, workdir: Path) -> None:
    import yaml

    result = issue(home, "alice", "-g", "dev", "-o", "-")

    assert result.exit_code == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert config["current-context"] == "alice@kubernetes"
    assert "issued context alice@kubernetes" in result.stderr
    assert list(workdir.iterdir()) == []


HOSTILE = [
    (["../x"], "user name '../x' contains a control character or path separator"),
    (["a\nb"], "user name 'a\\nb' contains a control character or path separator"),
    (["a: b"], "user name 'a: b' does not match the policy's pattern"),
    (["alice", "-g", "../x"], "group '../x' contains a control character or path separator"),
    (["alice", "-g", "dev\n- name: evil"], "group 'dev\\n- name: evil' contains a control character"),
    (["alice", "-g", "system:masters"], "group 'system:masters' is privileged"),
    (["system:admin"], "user name 'system:admin' is privileged"),
    (["alice", "--cluster", "../etc"], "cluster name '../etc' contains a control character or path separator"),
    (["alice", "--cluster", "c\rd"], "cluster name 'c\\rd' contains a control character"),
    (["alice", "-n", "a\nb"], "namespace 'a\\nb' contains a control character"),
    (["alice", "-n", "Team_A"], "namespace 'Team_A' is not a DNS-1123 label"),
    (["alice", "--server", "http://10.0.0.1:6443"], "--server 'http://10.0.0.1:6443' is not an https:// URL"),
    (["alice", "--server", "https://h:6443\n#x"], "is not an https:// URL"),
    (["alice", "--ttl", "9999d"], "exceeds the policy's maximum"),
    (["..", "-o", "-"], "user name '..' is not allowed"),
]


@pytest.mark.parametrize(("args", "message"), HOSTILE, ids=[repr(a) for a, _ in HOSTILE])
def test_hostile_input_is_refused_in_one_line_and_nothing_written(
    home: Home, workdir: Path, args: list[str], message: str
) -> None:
    certificates_at_start = len(home.stores.inventory.certificates())

    result = issue(home, *args)

    assert result.exit_code in (1, 2)
    errors = [line for line in result.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert list(workdir.iterdir()) == []
    assert credentials(home) == []
    assert len(home.stores.inventory.certificates()) == certificates_at_start


def test_mode_option_mismatches_are_usage_errors(home: Home, workdir: Path) -> None:
    csr = atomic_write(workdir / "x.csr", csr_pem(build_csr(generate_private_key(), user_subject("alice"))))
    cases = {
        ("alice", "--mode", "exec", "-g", "dev"): "groups come from the directory at login",
        ("alice", "--mode", "token", "--csr", str(csr), "--key-path", "k"): "cannot be used with --mode token",
        ("alice", "--csr", str(csr)): "--csr and --key-path go together",
        ("alice", "--key-path", "k"): "--csr and --key-path go together",
        ("alice", "--csr", str(csr), "--key-path", "~/.kube/a.key"): "kubectl does not expand ~",
        ("alice", "--csr", str(csr), "--key-path", "a\nb.key"): "contains a control character",
        ("alice", "-o", "a", "--merge-into", "b"): "-o and --merge-into cannot be used together",
    }
    for args, message in cases.items():
        result = issue(home, *args)
        assert result.exit_code == 2, (args, result.stderr)
        assert message in result.stderr
    assert sorted(p.name for p in workdir.iterdir()) == ["x.csr"]
    assert credentials(home) == []


@pytest.mark.parametrize(
    ("cn", "groups", "args", "message"),
    [
        ("mallory", ("dev",), ["alice", "-g", "dev"], "the CSR is for CN 'mallory', not 'alice'"),
        ("alice", ("dev", "admins"), ["alice", "-g", "dev"], "the CSR asks for groups dev,admins but --group gave dev"),
        ("alice", (), ["alice", "-g", "dev"], "the CSR asks for groups (none) but --group gave dev"),
        ("alice", ("system:masters",), ["alice", "-g", "system:masters"], "'system:masters' is privileged"),
    ],
)
def test_csr_identity_must_match_the_command_line(
    home: Home, workdir: Path, cn: str, groups: tuple[str, ...], args: list[str], message: str
) -> None:
    csr = atomic_write(workdir / "u.csr", csr_pem(build_csr(generate_private_key(), user_subject(cn, groups))))
    certificates_at_start = len(home.stores.inventory.certificates())

    result = issue(home, *args, "--csr", str(csr), "--key-path", "/home/u/.kube/u.key")

    assert result.exit_code in (1, 2)
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert sorted(p.name for p in workdir.iterdir()) == ["u.csr"]
    assert len(home.stores.inventory.certificates()) == certificates_at_start


def test_own_csr_with_groups_in_other_order_is_signed(home: Home, workdir: Path, kubectl: Kubectl) -> None:
    key = generate_private_key()
    csr = atomic_write(workdir / "u.csr", csr_pem(build_csr(key, user_subject("alice", ("qa", "dev")))))

    result = issue(home, "alice", "-g", "dev", "-g", "qa", "--csr", str(csr), "--key-path", "alice.key")

    assert result.exit_code == 0, result.stderr
    user = kubectl.view(workdir / "alice.kubeconfig")["users"][0]["user"]
    assert user["client-key"] == "alice.key" and "client-key-data" not in user
    cert, identity = client_identity(user)
    assert identity == ("alice", ("qa", "dev")) and keys_match(key, cert.public_key())  # type: ignore[arg-type]
    [record] = credentials(home)
    assert record.serial == format(cert.serial_number, "x")
    assert home.stores.inventory.get(record.serial).profile == CLIENT.name
