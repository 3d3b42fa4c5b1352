"""`authsvc login` / `authsvc logout`, the exec plugin, as kubectl runs it: a whole process,
against the real app over real TLS (and the real slapd behind it)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from authsvc.home.opened import Home
from authsvc.login.client import LoginError, LoginOptions, login, logout, run
from tests.components.slapd import Slapd
from tests.conftest import run_cli
from tests.login.fixtures import MakeHome
from tests.login.login_server import LoginServer, serving_files

pytestmark = pytest.mark.slapd
AUTHSVC = str(Path(sys.executable).parent / "authsvc")


@pytest.fixture
def server_home(make_home: MakeHome, directory_server: Slapd) -> Home:
    return make_home(directory_server)


@pytest.fixture
def server(server_home: Home, app_for: Callable[[Home], Flask], tmp_path: Path) -> Iterator[LoginServer]:
    cert, key = serving_files(server_home, tmp_path)
    with LoginServer(app_for(server_home), cert, key) as running:
        yield running


@pytest.fixture
def ca_file(server_home: Home) -> Path:
    return server_home.layout.cert_path("ca")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [AUTHSVC, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )


def _credential(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["apiVersion"] == "client.authentication.k8s.io/v1" and document["kind"] == "ExecCredential"
    return document


def test_login_caches_the_token_and_answers_from_the_cache(
    server: LoginServer, server_home: Home, ca_file: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path, AUTHSVC_USERNAME="alice", AUTHSVC_PASSWORD="alice-pw")
    first = _credential(_run(["login", "--server", server.url, "--ca-file", str(ca_file)], env))
    token = first["status"]["token"]
    assert server_home.stores.token_service.verify(token).identity().groups == ("dev",)
    cache = tmp_path / "cache" / "authsvc" / "tokens.json"
    assert cache.stat().st_mode & 0o777 == 0o600 and cache.parent.stat().st_mode & 0o777 == 0o700

    no_password = _env(tmp_path)  # the cached path needs neither a password nor the server
    again = _credential(
        _run(["login", "--server", server.url, "--ca-file", str(ca_file), "--username", "alice"], no_password)
    )
    assert again == first and server.logins == 1
    assert _credential(_run(["login", "--server", server.url], no_password)) == first  # the last user

    logged_out = _run(["logout"], no_password)
    assert logged_out.returncode == 0 and "removed 1 cached token" in logged_out.stderr
    refused = _run(["login", "--server", server.url, "--ca-file", str(ca_file)], no_password)
    assert refused.returncode == 1 and "AUTHSVC_PASSWORD" in refused.stderr and refused.stdout == ""


def test_ten_parallel_runs_with_an_empty_cache_make_one_login(
    server: LoginServer, ca_file: Path, tmp_path: Path
) -> None:
    env = _env(tmp_path, AUTHSVC_USERNAME="bob", AUTHSVC_PASSWORD="bob-pw")
    args = ["login", "--server", server.url, "--ca-file", str(ca_file)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: _run(args, env), range(10)))
    tokens = {_credential(r)["status"]["token"] for r in results}
    assert len(tokens) == 1
    assert server.logins == 1


def test_refusals_leave_nothing_in_the_cache(server: LoginServer, ca_file: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, AUTHSVC_USERNAME="alice", AUTHSVC_PASSWORD="wrong")
    result = _run(["login", "--server", server.url, "--ca-file", str(ca_file)], env)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: login failed: invalid user name or password"
    cache = (
        json.loads((tmp_path / "cache" / "authsvc" / "tokens.json").read_text())
        if (tmp_path / "cache" / "authsvc" / "tokens.json").exists()
        else {}
    )
    assert not cache.get("servers", {}).get(server.url, {}).get("tokens")
    for _ in range(3):
        _run(["login", "--server", server.url, "--ca-file", str(ca_file)], env)
    limited = _run(["login", "--server", server.url, "--ca-file", str(ca_file)], env)
    assert limited.returncode == 1 and "too many failed attempts, retry in 900 seconds" in limited.stderr


def test_the_ca_from_ca_data_or_kubectls_cluster_info(server: LoginServer, ca_file: Path, tmp_path: Path) -> None:
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    env = _env(tmp_path, AUTHSVC_USERNAME="carol", AUTHSVC_PASSWORD="carol-pw")
    _credential(_run(["login", "--server", server.url, "--ca-data", ca_data], env))
    _run(["logout", "--server", server.url], env)
    info = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "spec": {
            "cluster": {"server": "https://127.0.0.1:6443", "certificate-authority-data": ca_data},
            "interactive": False,
        },
    }
    _credential(_run(["login", "--server", server.url], {**env, "KUBERNETES_EXEC_INFO": json.dumps(info)}))
    assert server.logins == 2


def test_tls_is_verified(server: LoginServer, tmp_path: Path) -> None:
    env = _env(tmp_path, AUTHSVC_USERNAME="alice", AUTHSVC_PASSWORD="alice-pw")
    untrusted = _run(["login", "--server", server.url], env)  # system trust store: not our CA
    assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    plain = _run(["login", "--server", server.url.replace("https://", "http://")], env)
    assert plain.returncode == 1 and "must be an https:// URL" in plain.stderr
    assert server.logins == 0


def test_expiry_leads_to_a_new_login(server: LoginServer, ca_file: Path, tmp_path: Path) -> None:
    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "AUTHSVC_USERNAME": "alice", "AUTHSVC_PASSWORD": "alice-pw"}
    now = dt.datetime.now(dt.UTC).timestamp()
    options = LoginOptions(server.url, ca_file=str(ca_file), environ=environ, now=lambda: now)
    first = login(options)
    expires = dt.datetime.fromisoformat(str(first["status"]["expirationTimestamp"]).replace("Z", "+00:00")).timestamp()  # type: ignore[index]
    assert login(options) == first and server.logins == 1
    almost = LoginOptions(server.url, ca_file=str(ca_file), environ=environ, now=lambda: expires - 61)
    assert login(almost) == first and server.logins == 1
    late = LoginOptions(server.url, ca_file=str(ca_file), environ=environ, now=lambda: expires - 59)
    assert login(late) != first and server.logins == 2  # within the 60 s margin: replaced
    assert logout(environ) == 1


def test_slow_path_and_usage_errors_go_through_click(server: LoginServer, ca_file: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, AUTHSVC_USERNAME="alice", AUTHSVC_PASSWORD="alice-pw")
    via_click = _run(["--debug", "login", "--server", server.url, "--ca-file", str(ca_file)], env)
    assert _credential(via_click)["status"]["token"]
    missing = _run(["login"], env)
    assert missing.returncode == 2 and "--server" in missing.stderr
    # What the fast path declines, click answers (in-process here: the same decision).
    assert run(["login", "--server", server.url, "--bogus", "x"]) is None
    assert run(["login", "--help"]) is None and run(["logout", "--server"]) is None
    assert "exec plugin" in run_cli(["login", "--help"]).stdout
    assert run_cli(["login", "--server", server.url, "--bogus", "x"]).exit_code == 2


def test_login_url_rules() -> None:
    assert LoginOptions("https://authsvc:8443").server == "https://authsvc:8443/login"
    assert LoginOptions("https://authsvc:8443/").server == "https://authsvc:8443/login"
    assert LoginOptions("https://authsvc:8443/auth/login").server == "https://authsvc:8443/auth/login"
    with pytest.raises(LoginError):
        LoginOptions("http://authsvc:8443/login")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_asks_on_the_terminal_and_writes_prompts_to_stderr(server: LoginServer, ca_file: Path, tmp_path: Path) -> None:
    prompts = io.StringIO()
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return "carol-pw"

    environ = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    options = LoginOptions(
        server.url, ca_file=str(ca_file), environ=environ, stdin=Terminal("carol\n"), stderr=prompts, ask_password=ask
    )
    credential = login(options)
    assert credential["status"]
    assert prompts.getvalue() == "Username: " and asked == ["Password for carol: "]
    # kubectl says when there is no terminal to ask on (interactiveMode Never): no prompt then.
    info = json.dumps({"spec": {"interactive": False}})
    quiet = LoginOptions(
        server.url,
        ca_file=str(ca_file),
        environ={**environ, "KUBERNETES_EXEC_INFO": info, "AUTHSVC_USERNAME": "dave"},
        stdin=Terminal(""),
        stderr=prompts,
        ask_password=ask,
    )
    with pytest.raises(LoginError, match="no terminal"):
        login(quiet)
    assert asked == ["Password for carol: "]
