"""Private keys that others may read are refused, as OpenSSH refuses such identity files.

Each row loosens the mode of one key authsvc loads to sign (the cluster CA, front-proxy-ca,
etcd/ca, the token signing key sa.key, the API server's webhook client key) and runs the
command that loads it: it must refuse with one line naming the mode and the file, exit 1, and
write nothing (the key keeps its mode: fixing it is the operator's decision). The twins: the
same command with the key 0600 or 0400 succeeds. `pki check` reports the loose key; `serve`
refuses a loose serving key and, when it serves /login, a loose sa.key; `init` writes every
key 0600 even under umask 000.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from authsvc.home.opened import Home
from authsvc.init.steps import initialize_home
from authsvc.settings import Settings
from pki.store import key_mode_problem
from tests.conftest import run_cli
from tests.hostile.support import home_state, one_error_line
from tests.serve.support import serve_refusal

LOOSE_MODES = (0o644, 0o640, 0o604, 0o620, 0o660, 0o601)
TIGHT_MODES = (0o600, 0o400)

# (row id, the key under pki/ (kubeadm name), the command that signs with it; OUT: a folder outside the home)
Command = Callable[[Path], list[str]]
ROWS: list[tuple[str, str, Command]] = [
    ("certs create (ca)", "ca", lambda out: ["certs", "create", "alice", "-g", "dev", "--out-dir", str(out)]),
    ("issue (ca)", "ca", lambda out: ["issue", "alice", "-g", "dev", "-o", str(out / "alice.kubeconfig")]),
    (
        "certs create --ca front-proxy-ca",
        "front-proxy-ca",
        lambda out: ["certs", "create", "proxy", "--ca", "front-proxy-ca", "--out-dir", str(out)],
    ),
    (
        "certs create --ca etcd/ca",
        "etcd/ca",
        lambda out: ["certs", "create", "etcd-client", "--ca", "etcd/ca", "--out-dir", str(out)],
    ),
    (
        "token create (sa)",
        "sa",
        lambda out: ["token", "create", "-n", "ci", "--serviceaccount", "deployer", "--uid", "u-1"],
    ),
    (
        "webhook-config (webhook client key)",
        "authsvc/apiserver-webhook-client",
        lambda out: ["webhook-config", "-o", str(out / "webhook.conf")],
    ),
]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir(mode=0o700)
    return folder


@pytest.mark.parametrize("mode", LOOSE_MODES, ids=[f"{m:04o}" for m in LOOSE_MODES])
@pytest.mark.parametrize(("key", "command"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_a_key_others_may_read_is_refused(home: Home, out: Path, key: str, command: Command, mode: int) -> None:
    path = home.layout.key_path(key)
    path.chmod(mode)
    before = home_state(home.root)
    result = run_cli(command(out), home=home.root)
    assert result.exit_code == 1, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert line.startswith(f"error: permissions {mode:04o} for '{path}' are too open"), line
    assert result.stdout == "" and list(out.iterdir()) == []
    assert before.changes(home_state(home.root)) == [] and mode_of(path) == mode


@pytest.mark.parametrize("mode", TIGHT_MODES, ids=[f"{m:04o}" for m in TIGHT_MODES])
@pytest.mark.parametrize(("key", "command"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_the_twin_an_owner_only_key_signs(home: Home, out: Path, key: str, command: Command, mode: int) -> None:
    home.layout.key_path(key).chmod(mode)
    result = run_cli(command(out), home=home.root)
    assert result.exit_code == 0, result.stderr
    assert result.stdout or list(out.iterdir())


# The owner rule, on synthetic file statuses (a test cannot make files of other users unless root).
ME, SOMEONE = os.geteuid(), os.geteuid() + 4242


@pytest.mark.parametrize(
    ("mode", "owner", "refused"),
    [
        (0o600, ME, None),
        (0o400, ME, None),
        (0o700, ME, None),  # execute for the owner: harmless
        (0o640, ME, "its group"),
        (0o440, ME, "its group"),
        (0o620, ME, "its group"),
        (0o604, ME, "others"),
        (0o644, ME, "others"),
        # Handed to this user's service by its owner: root:<group> 0440 (a Kubernetes Secret with
        # fsGroup), root:ssl-cert 0640 (Debian). Its owner decides; authsvc cannot chmod it anyway.
        (0o440, SOMEONE, None),
        (0o640, SOMEONE, None),
        # ... but never for others, whoever owns it.
        (0o444, SOMEONE, "others"),
        (0o644, SOMEONE, "others"),
        (0o604, SOMEONE, "others"),
    ],
)
def test_the_owner_rule(mode: int, owner: int, refused: str | None) -> None:
    status = os.stat_result((stat.S_IFREG | mode, 1, 1, 1, owner, 0, 100, 0, 0, 0))
    problem = key_mode_problem(status, Path("pki/ca.key"))
    if refused is None:
        assert problem is None
    else:
        assert problem == (
            f"permissions {mode:04o} for 'pki/ca.key' are too open: a private key must not be accessible to "
            f"{refused} (chmod 600 it)"
        )


@pytest.mark.parametrize("key", ["ca", "front-proxy-ca", "etcd/ca", "sa", "authsvc/apiserver-webhook-client"])
def test_pki_check_fails_on_a_loose_key(home: Home, key: str) -> None:
    clean = run_cli(["pki", "check", "-o", "json"], home=home.root)
    assert clean.exit_code == 0 and json.loads(clean.stdout)["findings"] == []  # the twin
    home.layout.key_path(key).chmod(0o644)
    result = run_cli(["pki", "check", "-o", "json"], home=home.root)
    assert result.exit_code == 1
    findings = json.loads(result.stdout)["findings"]
    assert [(f["check"], f["path"]) for f in findings] == [("key-mode", f"{key}.key")]


def test_serve_refuses_a_loose_serving_key(home: Home) -> None:
    serving_key = home.layout.path(home.settings.server.tls_key)
    serving_key.chmod(0o644)
    result = serve_refusal(home.root, public=False)
    assert result.returncode == 1, result.stderr
    assert one_error_line(result.stderr).startswith(f"error: permissions 0644 for '{serving_key}' are too open")


def test_serve_refuses_a_loose_signing_key_when_it_serves_login(home: Home) -> None:
    config = yaml.safe_load(home.layout.config_path.read_text())
    config["login"]["backends"] = ["users"]
    home.layout.config_path.write_text(yaml.safe_dump(config))
    home.layout.key_path("sa").chmod(0o640)
    result = serve_refusal(home.root, public=True)
    assert result.returncode == 1, result.stderr
    assert one_error_line(result.stderr).startswith(
        f"error: permissions 0640 for '{home.layout.key_path('sa')}' are too open"
    )


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_init_writes_every_key_owner_only_even_under_umask_000(tmp_path: Path, open_umask: None) -> None:
    root = tmp_path / "home"
    initialize_home(root, Settings(), environ={})
    keys = sorted(root.rglob("*.key"))
    names = {str(k.relative_to(root / "pki")) for k in keys}
    assert {"ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key", "authsvc/serving.key"} <= names
    assert {str(k.relative_to(root)): mode_of(k) for k in keys} == {str(k.relative_to(root)): 0o600 for k in keys}
    secrets = [root / "authsvc.yaml", *root.glob("*.conf")]  # kubeconfigs embed client keys
    assert {p.name: mode_of(p) for p in secrets} == {p.name: 0o600 for p in secrets}
    assert all(mode_of(d) == 0o700 for d in [root, *(p for p in root.rglob("*") if p.is_dir())])
