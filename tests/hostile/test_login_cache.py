"""`authsvc login` (the kubectl exec plugin) against a cache file it did not write.

The token cache ($XDG_CACHE_HOME/authsvc/tokens.json) belongs to the user: edited by hand,
cut short by a full disk, written by another version or another tool. Each row puts one such
file in place and runs the real `authsvc login` (a whole process, as kubectl runs it) against
the real `authsvc serve` (its public listener, TLS, a users-file login): the broken cache must
count as empty, so the run logs in, prints a valid ExecCredential and leaves a well-formed
cache; `authsvc logout` on the same file removes nothing and says so. Never a traceback.

The twins: a well-formed entry is used as it is (no login), and a well-formed entry of another
login URL survives the repair of a broken one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from authsvc.home.opened import open_home
from authsvc.login.users_file import StaticUser, hash_password, write_users
from tests.components.support import free_port
from tests.login.fixtures import CHEAP_HASHER
from tests.serve.support import authsvc_serve

AUTHSVC = str(Path(sys.executable).parent / "authsvc")
USER, PASSWORD = "admin", "admin-pw"
URL = "@URL@"  # replaced by the served login URL
FAR = 4070908800  # 2099-01-01T00:00:00Z
GOOD = {"token": "cached-token", "expirationTimestamp": "2099-01-01T00:00:00Z", "expires": FAR}


@dataclass(frozen=True)
class Served:
    home: Path
    login_url: str


@pytest.fixture(scope="module")
def served(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("login-cache") / "home"
    shutil.copytree(home_template, home)
    webhook, public = free_port(), free_port()
    config = home / "authsvc.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["login"]["backends"] = ["users"]
    settings["server"]["public_url"] = f"https://127.0.0.1:{public}"
    config.write_text(yaml.safe_dump(settings))
    write_users(home / "users.csv", [StaticUser(USER, "admin-uid", ("dev",), hash_password(PASSWORD, CHEAP_HASHER))])
    with authsvc_serve(home, home / "serve.log", webhook=webhook, public=public):
        yield Served(home, f"https://127.0.0.1:{public}/login")


def document(servers: object, version: object = 1) -> str:
    return json.dumps({"version": version, "servers": servers})


def entry(**fields: object) -> str:
    """A cache whose one token entry (the served URL, user admin) has these fields."""
    return document({URL: {"last_user": USER, "tokens": {USER: fields}}})


def tokens(value: object) -> str:
    return document({URL: {"last_user": USER, "tokens": {USER: value}}})


def server(value: object) -> str:
    return document({URL: value})


VALID = entry(**GOOD)
# (row id, file content): each must count as empty (for the served URL and user).
BROKEN: list[tuple[str, str | bytes]] = [
    ("token entry a string", tokens("a-token")),
    ("token entry a list", tokens(["a-token", FAR])),
    ("token entry a number", tokens(7)),
    ("token entry null", tokens(None)),
    ("token entry true", tokens(True)),
    ("token entry empty", tokens({})),
    ("token missing", entry(expirationTimestamp=GOOD["expirationTimestamp"], expires=FAR)),
    ("token a number", entry(**{**GOOD, "token": 12345})),
    ("token a list", entry(**{**GOOD, "token": ["a", "b"]})),
    ("token empty", entry(**{**GOOD, "token": ""})),
    ("expirationTimestamp missing", entry(token="t", expires=FAR)),
    ("expirationTimestamp a number", entry(**{**GOOD, "expirationTimestamp": FAR})),
    ("expires missing", entry(token="t", expirationTimestamp=GOOD["expirationTimestamp"])),
    ("expires a string", entry(**{**GOOD, "expires": str(FAR)})),
    ("expires null", entry(**{**GOOD, "expires": None})),
    ("expires true", entry(**{**GOOD, "expires": True})),
    ("expires a list", entry(**{**GOOD, "expires": [FAR]})),
    ("expires Infinity", VALID.replace(str(FAR), "Infinity")),
    ("expires NaN", VALID.replace(str(FAR), "NaN")),
    ("expires 1e400", VALID.replace(str(FAR), "1e400")),
    ("expires 10**400", VALID.replace(str(FAR), "1" + "0" * 400)),
    ("tokens a string", server({"last_user": USER, "tokens": "x"})),
    ("tokens a list", server({"last_user": USER, "tokens": [GOOD]})),
    ("tokens null", server({"last_user": USER, "tokens": None})),
    ("last_user a number", server({"last_user": 5, "tokens": {}})),
    ("last_user a list, tokens missing", server({"last_user": [USER]})),
    ("server entry a string", server("x")),
    ("server entry a list", server([USER, GOOD])),
    ("server entry null", server(None)),
    ("server entry empty", server({})),
    ("servers a string", document("x")),
    ("servers a list", document([URL])),
    ("servers null", json.dumps({"version": 1, "servers": None})),
    ("servers missing", json.dumps({"version": 1})),
    ("version 2 (a newer cache)", VALID.replace('"version": 1', '"version": 2')),
    ("version a string", VALID.replace('"version": 1', '"version": "1"')),
    ("version missing", json.dumps({"servers": json.loads(VALID)["servers"]})),
    ("a JSON string", json.dumps("tokens")),
    ("a JSON list", json.dumps([json.loads(VALID)])),
    ("a JSON number", "1"),
    ("JSON null", "null"),
    ("empty file", ""),
    ("whitespace", " \n\t"),
    ("truncated JSON", VALID[: len(VALID) // 2]),
    ("trailing garbage", VALID + "}"),
    ("not UTF-8", b'{"version": 1, "servers": {"\xff\xfe": {}}}'),
    ("binary", bytes(range(256)) * 16),
    ("nested 100,000 deep", "[" * 100_000 + "]" * 100_000),
    ("a valid cache of 5 MiB", VALID[:-1] + ', "padding": "' + "x" * (5 << 20) + '"}'),
]


def run(served: Served, args: list[str], cache_home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(cache_home.parent),
        "XDG_CACHE_HOME": str(cache_home),
        "AUTHSVC_USERNAME": USER,
        "AUTHSVC_PASSWORD": PASSWORD,
    }
    command = [AUTHSVC, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)


def login(served: Served, cache_home: Path) -> subprocess.CompletedProcess[str]:
    ca = str(served.home / "pki" / "ca.crt")
    return run(served, ["login", "--server", served.login_url, "--ca-file", ca], cache_home)


def put_cache(cache_home: Path, content: str | bytes, url: str) -> Path:
    folder = cache_home / "authsvc"
    folder.mkdir(parents=True, mode=0o700, exist_ok=True)
    path = folder / "tokens.json"
    data = content.replace(URL, url) if isinstance(content, str) else content
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o600)
    return path


def credential_token(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0 and result.stderr == "", result.stderr
    credential = json.loads(result.stdout)
    assert credential["kind"] == "ExecCredential" and credential["apiVersion"] == "client.authentication.k8s.io/v1"
    token: str = credential["status"]["token"]
    return token


@pytest.mark.parametrize("content", [c for _, c in BROKEN], ids=[i for i, _ in BROKEN])
def test_a_broken_cache_counts_as_empty(served: Served, tmp_path: Path, content: str | bytes) -> None:
    cache_home = tmp_path / "cache"
    cache = put_cache(cache_home, content, served.login_url)
    token = credential_token(login(served, cache_home))
    assert token != GOOD["token"]
    identity = open_home(served.home, environ={}).stores.token_service.verify(token).identity()
    assert identity.username == USER  # a fresh token from the server, not something from the file
    repaired = json.loads(cache.read_text())
    assert repaired["version"] == 1 and repaired["servers"][served.login_url]["tokens"][USER]["token"] == token
    assert cache.stat().st_mode & 0o777 == 0o600

    put_cache(cache_home, content, served.login_url)
    logged_out = run(served, ["logout"], cache_home)
    assert logged_out.returncode == 0 and logged_out.stderr == "removed 0 cached tokens\n", logged_out.stderr


def test_the_twin_a_well_formed_entry_is_used(served: Served, tmp_path: Path) -> None:
    cache_home = tmp_path / "cache"
    put_cache(cache_home, VALID, served.login_url)
    assert credential_token(login(served, cache_home)) == GOOD["token"]  # from the cache: no login
    logged_out = run(served, ["logout"], cache_home)
    assert logged_out.returncode == 0 and logged_out.stderr == "removed 1 cached token\n", logged_out.stderr


def test_the_twin_a_well_formed_entry_survives_the_repair_of_another(served: Served, tmp_path: Path) -> None:
    other = "https://other.example/login"
    cache_home = tmp_path / "cache"
    content = document({URL: "broken", other: {"last_user": USER, "tokens": {USER: GOOD, "x": "broken"}}})
    cache = put_cache(cache_home, content, served.login_url)
    token = credential_token(login(served, cache_home))
    assert token != GOOD["token"]
    kept = json.loads(cache.read_text())["servers"]
    assert kept[other] == {"last_user": USER, "tokens": {USER: GOOD}, "certificates": {}}
    assert kept[served.login_url]["tokens"][USER]["token"] == token
