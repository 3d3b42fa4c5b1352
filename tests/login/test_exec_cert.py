"""Short-lived client certificates at login (Pinniped-style): POST /login with a CSR signs the
CSR's key for the identity the login established (never the CSR's subject), for
login.certificate_ttl; `authsvc login --credential certificate` makes the key, caches the pair,
and answers from the cache; `authsvc issue --mode exec-cert` writes the kubeconfig. Each
success has its refusal: a bad CSR, a wrong password, a revoked user."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient

from authsvc.access.bans import Ban
from authsvc.home.opened import Home
from authsvc.web.app import runtime_of
from pki.builder import CLOCK_SKEW
from pki.clock import FixedClock
from pki.csr import build_csr, csr_pem
from pki.keys import generate_private_key
from pki.names import user_subject
from tests.components.slapd import Slapd
from tests.conftest import run_cli
from tests.login.fixtures import ADMIN, ADMIN_PASSWORD, MakeHome, basic
from tests.login.login_server import LoginServer, serving_files

pytestmark = pytest.mark.slapd
AUTHSVC = str(Path(sys.executable).parent / "authsvc")


def a_csr(subject: str = "anything", key: Any = None) -> tuple[Any, str]:
    key = key or generate_private_key()
    return key, csr_pem(build_csr(key, user_subject(subject))).decode()


def login_with_csr(client: FlaskClient, user: str, password: str, csr: str, query: str = "") -> Any:
    return client.post(f"/login{query}", headers=basic(user, password), json={"certificateSigningRequest": csr},
                       environ_base={"REMOTE_ADDR": "10.0.0.7"})  # fmt: skip


def trail(home: Home) -> list[dict[str, Any]]:
    runtime_lines = (home.root / "audit.log").read_text().splitlines() if (home.root / "audit.log").exists() else []
    return [json.loads(line) for line in runtime_lines]


def test_a_login_with_a_csr_gets_a_certificate_for_its_key_and_the_logins_identity(
    client: FlaskClient, clock: FixedClock
) -> None:
    key, csr = a_csr("system:masters-please")  # the subject asked for is ignored
    response = login_with_csr(client, ADMIN.username, ADMIN_PASSWORD, csr)
    assert response.status_code == 200, response.json
    body = response.json
    cert = x509.load_pem_x509_certificate(body["clientCertificateData"].encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == ADMIN.username
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == list(ADMIN.groups)
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    # login.certificate_ttl from now; notBefore is backdated by the usual clock-skew margin.
    assert cert.not_valid_after_utc == clock() + dt.timedelta(minutes=15)
    assert cert.not_valid_before_utc == clock() - CLOCK_SKEW
    assert body["expirationTimestamp"] == f"{clock() + dt.timedelta(minutes=15):%Y-%m-%dT%H:%M:%SZ}"
    home: Home = runtime_of(client.application).home
    assert "token" not in body and response.headers["Cache-Control"] == "no-store"
    record = home.stores.inventory.get(format(cert.serial_number, "x"))
    assert (record.requester, record.common_name) == ("login:users", ADMIN.username)
    runtime_of(client.application).audit.flush()
    issued, logged_in = trail(home)[-2:]
    assert (issued["action"], issued["actor"]) == ("cert.issue", ADMIN.username)
    assert issued["ids"] == {"serial": record.serial}
    assert (logged_in["action"], logged_in["outcome"], logged_in["client"]) == ("login", "ok", "10.0.0.7")


def test_a_directory_user_gets_the_directorys_groups(client: FlaskClient) -> None:
    _, csr = a_csr()
    response = login_with_csr(client, "alice", "alice-pw", csr)
    assert response.status_code == 200, response.json
    cert = x509.load_pem_x509_certificate(response.json["clientCertificateData"].encode())
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["dev"]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: a_csr()[1].replace("A", "B", 3), "invalid certificate signing request"),
        (lambda: a_csr(key=rsa.generate_private_key(65537, 1024))[1], "too weak"),
        (lambda: 42, "certificateSigningRequest"),
    ],
    ids=["tampered", "weak key", "not a string"],
)
def test_a_bad_csr_is_a_400_before_any_credential_is_checked(
    client: FlaskClient, make: Callable[[], Any], message: str
) -> None:
    home: Home = runtime_of(client.application).home
    before = home.stores.inventory.count()
    response = login_with_csr(client, ADMIN.username, "wrong-password", make())
    assert response.status_code == 400 and message in response.json["error"]
    assert home.stores.inventory.count() == before
    # No failed login was counted: the right password still works at once.
    assert login_with_csr(client, ADMIN.username, ADMIN_PASSWORD, a_csr()[1]).status_code == 200


def test_wrong_password_execcredential_format_and_a_revoked_user_get_no_certificate(
    client: FlaskClient, clock: FixedClock
) -> None:
    home: Home = runtime_of(client.application).home
    before = home.stores.inventory.count()
    assert login_with_csr(client, ADMIN.username, "wrong", a_csr()[1]).status_code == 401
    wrong_format = login_with_csr(client, ADMIN.username, ADMIN_PASSWORD, a_csr()[1], "?format=execcredential")
    assert wrong_format.status_code == 400 and "JSON" in wrong_format.json["error"]
    home.stores.bans.add(Ban(ADMIN.username, clock(), "cli:test", "gone"))
    banned = login_with_csr(client, ADMIN.username, ADMIN_PASSWORD, a_csr()[1])
    assert banned.status_code == 403 and "is revoked" in banned.json["error"] and "gone" not in banned.json["error"]
    assert home.stores.inventory.count() == before
    runtime_of(client.application).audit.flush()
    refused = trail(home)[-1]
    assert (refused["action"], refused["outcome"]) == ("login", "refused")
    assert refused["reason"] == "access revoked (authsvc access revoke)"
    assert login_with_csr(client, "alice", "alice-pw", a_csr()[1]).status_code == 200  # the twin


# --- the plugin ------------------------------------------------------------------------------


@pytest.fixture
def server_home(make_home: MakeHome, directory_server: Slapd) -> Home:
    return make_home(directory_server)


@pytest.fixture
def server(server_home: Home, app_for: Callable[[Home], Flask], tmp_path: Path) -> Iterator[LoginServer]:
    cert, key = serving_files(server_home, tmp_path)
    with LoginServer(app_for(server_home), cert, key) as running:
        yield running


def plugin(server: LoginServer, home: Home, tmp_path: Path, *extra: str, password: str = "alice-pw") -> dict[str, Any]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "AUTHSVC_USERNAME": "alice", "AUTHSVC_PASSWORD": password}  # fmt: skip
    args = ["login", "--server", server.url, "--ca-file", str(home.layout.cert_path("ca")), *extra]
    result = subprocess.run([AUTHSVC, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_the_plugin_makes_the_key_caches_the_pair_and_answers_from_the_cache(
    server: LoginServer, server_home: Home, tmp_path: Path
) -> None:
    status = plugin(server, server_home, tmp_path, "--credential", "certificate")["status"]
    cert = x509.load_pem_x509_certificate(status["clientCertificateData"].encode())
    key = serialization.load_pem_private_key(status["clientKeyData"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert status["expirationTimestamp"] == f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
    cache = tmp_path / "cache" / "authsvc" / "tokens.json"
    assert cache.stat().st_mode & 0o777 == 0o600
    logins = server.logins

    again = plugin(server, server_home, tmp_path, "--credential", "certificate", password="")["status"]
    assert again == status and server.logins == logins  # from the cache: no password, no login
    token = plugin(server, server_home, tmp_path)["status"]  # token mode has its own cache entry
    assert "token" in token and server.logins == logins + 1


def test_an_expired_cached_certificate_takes_a_new_login(
    server: LoginServer, server_home: Home, tmp_path: Path
) -> None:
    first = plugin(server, server_home, tmp_path, "--credential", "certificate")["status"]
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "AUTHSVC_USERNAME": "alice",
           "AUTHSVC_PASSWORD": "alice-pw"}  # fmt: skip
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    args = [f"--now={later:%Y-%m-%dT%H:%M:%SZ}", "login", "--server", server.url, "--credential", "certificate",
            "--ca-file", str(server_home.layout.cert_path("ca"))]  # fmt: skip
    result = run_cli(args, env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"]["clientCertificateData"] != first["clientCertificateData"]


def test_issue_exec_cert_writes_the_plugin_with_certificates_and_refuses_a_revoked_user(
    server_home: Home, tmp_path: Path, clock: FixedClock
) -> None:
    out = tmp_path / "alice.kubeconfig"
    result = run_cli(["issue", "alice", "--mode", "exec-cert", "-o", str(out)], home=server_home.root)
    assert result.exit_code == 0, result.stderr
    assert "exec-cert mode, authsvc login (certificates)" in result.stdout
    exec_config = yaml.safe_load(out.read_text())["users"][0]["user"]["exec"]
    assert exec_config["args"][-2:] == ["--credential", "certificate"] and exec_config["command"] == "authsvc"
    with_groups = run_cli(["issue", "alice", "--mode", "exec-cert", "-g", "dev", "-o", str(tmp_path / "g")],
                          home=server_home.root)  # fmt: skip
    assert with_groups.exit_code == 2 and "groups come from the directory" in with_groups.stderr

    server_home.stores.bans.add(Ban("alice", clock(), "cli:test"))
    refused = run_cli(["issue", "alice", "--mode", "exec-cert", "-o", str(tmp_path / "again")], home=server_home.root)
    assert refused.exit_code == 1 and "is revoked" in refused.stderr and not (tmp_path / "again").exists()
