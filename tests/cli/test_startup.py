"""What a command's process loads and leaves behind (issue 20: the common commands start in
<= 0.4 s; bench/cli_startup.py measures them, docs/operations.md section 6).

Each case runs the real entry point in a process of its own and reads `sys.modules` as the
process exits: a heavy module that a command does not use (the kubernetes client, Flask,
Authlib, PyJWT for a certificate, SQLAlchemy's ORM...) must stay out of its start-up."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import authsvc.cli
from authsvc.home.opened import Home
from tests.conftest import run_cli

# Runs `authsvc ARGS` as the console script does (main() with no argv: the process itself)
# and writes, as the process exits, its modules and the garbage collector's state. The modules
# named in the second argument (comma-separated, may be empty) are imported first.
PROBE = """
import atexit, gc, importlib, json, sys
out = sys.argv.pop(1)
for name in filter(None, sys.argv.pop(1).split(",")):
    importlib.import_module(name)
def report():
    state = {"modules": sorted(sys.modules), "thresholds": gc.get_threshold(), "frozen": gc.get_freeze_count()}
    with open(out, "w") as f:
        json.dump(state, f)
atexit.register(report)
from authsvc.cli import main
main()
"""

# Never loaded by these commands: servers, the cluster client, the OIDC provider, LDAP,
# and migrations.
NEVER = ("kubernetes", "flask", "werkzeug", "granian", "aiohttp", "authlib", "ldap3", "alembic")
# The token stack, for the commands that sign certificates only.
TOKENS = ("jwt", "pki.tokens")
# SQLAlchemy's ORM (~60 ms): every table is a Core table (pki/inventory.py, authsvc/db/tables.py,
# pki/tokens/signing_keys.py) queried with Core, so none of these commands loads it.
ORM = ("sqlalchemy.orm",)

COMMANDS = {
    "issue": (["issue", "alice", "-g", "dev", "-o", "{home}/alice.conf"], (*TOKENS, *ORM)),
    "certs create": (["certs", "create", "bob", "-g", "dev"], (*TOKENS, *ORM)),
    "certs check-expiration": (["certs", "check-expiration"], (*TOKENS, *ORM, "authsvc.drift")),
    "token create": (["token", "create", "-n", "ci", "--serviceaccount", "builder", "--uid", "u-1"], ORM),
}


def run_probe(home: Path, args: list[str], out: Path, *, preload: tuple[str, ...] = ()) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "KUBERNETES_SERVICE_HOST"}}
    argv = [sys.executable, "-c", PROBE, str(out), ",".join(preload), f"--home={home}"]
    argv += [a.format(home=home) for a in args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    state: dict[str, object] = json.loads(out.read_text())
    return state


def loaded(state: dict[str, object], names: tuple[str, ...]) -> list[str]:
    modules = state["modules"]
    assert isinstance(modules, list)
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_common_command_loads_only_what_it_uses(command: str, home: Home, tmp_path: Path) -> None:
    args, unused = COMMANDS[command]
    state = run_probe(home.root, args, tmp_path / "state.json")
    assert loaded(state, (*NEVER, *unused)) == []


def test_the_probe_sees_what_a_command_loads(home: Home, tmp_path: Path) -> None:
    """The twin: `token create` signs a JWT, and the probe finds PyJWT and the token stack."""
    args, _ = COMMANDS["token create"]
    state = run_probe(home.root, args, tmp_path / "state.json")
    assert "jwt" in loaded(state, TOKENS) and "pki.tokens.service" in loaded(state, TOKENS)


def test_the_probe_sees_the_orm_in_a_command_that_loads_it(home: Home, tmp_path: Path) -> None:
    """The twin of the ORM check: a command whose process has loaded the ORM (as it would if a
    table it uses were declared as an ORM class again) is caught, submodules and all."""
    args, _ = COMMANDS["issue"]
    state = run_probe(home.root, args, tmp_path / "state.json", preload=("sqlalchemy.orm",))
    assert {"sqlalchemy.orm", "sqlalchemy.orm.session"} <= set(loaded(state, ORM))


def test_a_command_closes_its_database_before_the_process_ends(home: Home, tmp_path: Path) -> None:
    """The process skips the garbage collector at exit (authsvc/cli/__init__.py), so the
    connections are closed by the command (CliState.close): SQLite then checkpoints its
    write-ahead log and removes it. The process's collector is the command one, frozen at exit."""
    state = run_probe(home.root, COMMANDS["certs create"][0], tmp_path / "state.json")
    assert not (home.root / "authsvc.db-wal").exists()
    assert tuple(state["thresholds"]) == authsvc.cli.COMMAND_GC_THRESHOLDS  # type: ignore[arg-type]
    assert state["frozen"]


def test_an_unclosed_database_leaves_its_log(home: Home, tmp_path: Path) -> None:
    """The twin: a process that writes and ends without closing its connection leaves the log."""
    code = (
        "import os, sys; from authsvc.db.schema import open_engine; from sqlalchemy import text\n"
        "engine = open_engine(sys.argv[1])\n"
        "with engine.begin() as c: c.execute(text('DELETE FROM access_bans'))\n"
        "conn = engine.connect(); os._exit(0)\n"
    )
    url = f"sqlite:///{home.root / 'authsvc.db'}"
    subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60)
    assert (home.root / "authsvc.db-wal").exists()


def test_in_process_the_collector_is_left_alone(tmp_path: Path) -> None:
    """main(argv) (tests, embedding) changes nothing of the caller's garbage collector."""
    before = gc.get_threshold(), gc.get_freeze_count()
    assert run_cli(["--help"], home=tmp_path / "h").exit_code == 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_a_long_lived_command_collects_as_python_does() -> None:
    """`serve`, `proxy` and `csr-signer` put the default thresholds back."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(*authsvc.cli.COMMAND_GC_THRESHOLDS)
        authsvc.cli.long_lived_process()
        assert gc.get_threshold() == authsvc.cli.DEFAULT_GC_THRESHOLDS
    finally:
        gc.set_threshold(*before)


def test_closing_the_home_records_the_tokens_still_buffered(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """CliState.close closes the home before the process ends: tokens that the ledger still
    buffers (a batch signed within its delay) are written then, not left to the exit hook."""
    service = home.stores.token_service
    monkeypatch.setattr(service._ledger, "_delay", 3600.0)  # no timer flushes during the test
    for name in ("a", "b", "c"):
        service.issue_service_account_token("ci", name, uid="u-1")
    store = service.store
    assert len(store.tokens()) < 3  # the twin: the last ones wait for the batch's delay
    home.stores.close()
    assert sorted(t.subject for t in store.tokens()) == [f"system:serviceaccount:ci:{n}" for n in "abc"]
