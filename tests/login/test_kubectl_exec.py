"""End to end: real kubectl runs `authsvc login` from an exec-mode kubeconfig (`authsvc issue
--mode exec`), the production server (`authsvc serve`, granian, TLS) answers /login from a
real slapd, kubectl sends the token to an HTTPS API-server stand-in, and that token, posted
as a TokenReview to the same running server, authenticates as the LDAP user with LDAP groups.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.home.opened import Home, open_home
from tests.components.slapd import Slapd
from tests.components.support import free_port, require_binary
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl
from tests.kubeconfig.tls_server import VersionServer
from tests.ldap.fixtures import ENVIRON
from tests.login.fixtures import MakeHome
from tests.login.login_server import serving_files
from tests.serve.support import AuthsvcServe

pytestmark = [pytest.mark.slapd, pytest.mark.kubectl, pytest.mark.e2e]
AUTHSVC = str(Path(sys.executable).parent / "authsvc")


@pytest.fixture
def served_home(make_home: MakeHome, directory_server: Slapd) -> Home:
    home = make_home(directory_server)
    port = free_port()
    data = home.settings.model_dump(mode="json")
    data["server"].update({"bind": f"127.0.0.1:{port}", "public_url": f"https://127.0.0.1:{port}", "workers": 1})
    home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return open_home(home.root, clock=home.clock, environ=ENVIRON)


@pytest.fixture
def authsvc_serve(served_home: Home, tmp_path: Path) -> Iterator[str]:
    """`authsvc serve` (granian). /login is called without a client certificate, so this runs
    with --insecure-no-client-cert (see docs/ldap.md: /login needs a listener without mTLS)."""
    env = {**os.environ, **ENVIRON, "AUTHSVC_HOME": str(served_home.root)}
    url = served_home.settings.server.public_url
    assert url is not None  # served_home sets it
    context = ssl.create_default_context(cafile=served_home.layout.cert_path("ca"))

    def healthy() -> str | None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", context=context, timeout=2):
                return None
        except OSError as exc:
            return str(exc)

    port = int(url.rpartition(":")[2])
    server = AuthsvcServe(
        served_home.root,
        tmp_path / "serve.log",
        webhook=None,
        configured_ports=[port],
        workers=None,
        args=["--insecure-no-client-cert"],
        env=env,
        ready=healthy,
        command=[AUTHSVC],
    )
    with server.running():
        yield url


def test_kubectl_exec_plugin_token_authenticates_as_the_ldap_user(
    served_home: Home, authsvc_serve: str, tmp_path: Path
) -> None:
    kubectl = Kubectl(require_binary("kubectl"), tmp_path / "kubectl-home")
    kubectl.home_dir.mkdir()
    cert, key = serving_files(served_home, tmp_path)
    with VersionServer(cert, key, client_ca=None) as apiserver:
        data = served_home.settings.model_dump(mode="json")
        data["cluster"]["server"] = apiserver.url
        served_home.layout.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        kubeconfig = tmp_path / "carol.kubeconfig"
        issued = run_cli(["issue", "carol", "--mode", "exec", "-o", str(kubeconfig)], home=served_home.root)
        assert issued.exit_code == 0, issued.stderr

        env = {"AUTHSVC_USERNAME": "carol", "AUTHSVC_PASSWORD": "carol-pw", "XDG_CACHE_HOME": str(tmp_path / "cache")}
        result = kubectl.run(kubeconfig, "get", "--raw", "/version", env=env, plugin=True)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["gitVersion"] == "v1.32.0"
        authorization = apiserver.seen[-1].authorization
        assert authorization is not None and authorization.startswith("Bearer ")
        token = authorization.removeprefix("Bearer ")

        again = kubectl.run(kubeconfig, "get", "--raw", "/version", env={**env, "AUTHSVC_PASSWORD": ""}, plugin=True)
        assert again.returncode == 0, again.stderr  # from the plugin's cache: no password needed
        assert apiserver.seen[-1].authorization == authorization

    status = _tokenreview(authsvc_serve, served_home, token)
    assert status["authenticated"] is True
    assert status["user"]["username"] == "carol" and status["user"]["groups"] == ["ops"]
    assert status["user"]["uid"]
    assert _tokenreview(authsvc_serve, served_home, token[:-2] + "xx")["authenticated"] is False


def _tokenreview(url: str, home: Home, token: str) -> dict[str, Any]:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    request = urllib.request.Request(
        f"{url}/authenticate", data=json.dumps(review).encode(), headers={"Content-Type": "application/json"}
    )
    context = ssl.create_default_context(cafile=home.layout.cert_path("ca"))
    with urllib.request.urlopen(request, context=context, timeout=20) as response:
        status: dict[str, Any] = json.loads(response.read())["status"]
    return status
