"""--mode exec end to end: kubectl runs `authsvc login`, which logs in at authsvc's real /login.

authsvc serves /login with `authsvc serve` (granian over TLS, serving certificate from the
cluster CA, which the kubeconfig carries in the plugin's --ca-data); the user is in the static
users file and the password comes from AUTHSVC_PASSWORD, as in automation. The "API server"
is the loopback test server: it must see `Authorization: Bearer <token>`, and the token must
verify with authsvc's token service as the user with the users file's groups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from authsvc.home.opened import Home
from tests.components.support import free_port
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl, reconfigure
from tests.kubeconfig.tls_server import VersionServer
from tests.serve.support import AuthsvcServe

pytestmark = [pytest.mark.kubectl]

PASSWORD = "carol's password: 12345"


@pytest.fixture
def login_home(home: Home, tmp_path: Path) -> Iterator[Home]:
    """The home serving /login on a free loopback port, with carol (group dev) in its users file."""
    port = free_port()
    home = reconfigure(
        home,
        server={
            "bind": f"127.0.0.1:{port}",
            "public_url": f"https://127.0.0.1:{port}",
            # People reach /login without a client certificate (the webhook's mTLS is for the API server).
            "require_client_cert": False,
            "workers": 1,
        },
        login={"backends": ["users"]},
    )
    added = run_cli(["users", "add", "carol", "-g", "dev", "--password-stdin"], home=home.root, input=PASSWORD + "\n")
    assert added.exit_code == 0, added.stderr
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    log = tmp_path / "serve.log"
    server = AuthsvcServe(home.root, log, webhook=None, configured_ports=[port], workers=None, env=env)
    with server.running():
        yield home


def exec_kubeconfig(home: Home, tmp_path: Path, server: str) -> Path:
    out = tmp_path / "carol.kubeconfig"
    result = run_cli(["issue", "carol", "--mode", "exec", "--server", server, "-o", str(out)], home=home.root)
    assert result.exit_code == 0, result.stderr
    return out


def login_env(tmp_path: Path, password: str) -> dict[str, str]:
    return {"AUTHSVC_PASSWORD": password, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_kubectl_runs_authsvc_login_and_sends_its_token(
    login_home: Home, tmp_path: Path, kubectl: Kubectl, token_server: VersionServer
) -> None:
    kubeconfig = exec_kubeconfig(login_home, tmp_path, token_server.url)

    result = kubectl.run(kubeconfig, "get", "--raw", "/version", env=login_env(tmp_path, PASSWORD), plugin=True)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gitVersion"] == "v1.32.0"
    bearers = {s.authorization for s in token_server.seen}
    assert len(bearers) == 1 and next(iter(bearers)).startswith("Bearer ")  # type: ignore[union-attr]
    token = next(iter(bearers)).removeprefix("Bearer ")  # type: ignore[union-attr]
    identity = login_home.stores.token_service.verify(token).identity()
    assert (identity.username, identity.groups, identity.source) == ("carol", ("dev",), "users")


def test_a_wrong_password_gets_no_token_and_kubectl_sends_nothing(
    login_home: Home, tmp_path: Path, kubectl: Kubectl, token_server: VersionServer
) -> None:
    kubeconfig = exec_kubeconfig(login_home, tmp_path, token_server.url)

    result = kubectl.run(kubeconfig, "get", "--raw", "/version", env=login_env(tmp_path, "wrong"), plugin=True)

    assert result.returncode != 0
    assert "invalid user name or password" in result.stderr
    assert [s for s in token_server.seen if s.authorization] == []
