"""`authsvc serve` with both listeners, over real TLS (granian): each serves only its routes.

The webhook listener refuses callers without the API server's client certificate; the public
listener (people, probes) has /login and discovery but never /authenticate.
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from tests.components.support import eventually, free_port
from tests.conftest import run_cli
from tests.serve.support import AUTHSVC_MODULE, authsvc_serve

REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": "nope"}}


@pytest.fixture(scope="module")
def listeners(home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    home = tmp_path_factory.mktemp("listeners") / "home"
    shutil.copytree(home_template, home)
    config = home / "authsvc.yaml"
    settings = yaml.safe_load(config.read_text())
    settings["login"]["backends"] = ["users"]
    config.write_text(yaml.safe_dump(settings))
    added = run_cli(["users", "add", "carol", "-g", "dev", "--password-stdin"], home=home, input="carol-pw\n")
    assert added.exit_code == 0, added.stderr
    webhook, public = free_port(), free_port()
    with authsvc_serve(home, home / "serve.log", webhook=webhook, public=public) as server:
        yield home, f"https://127.0.0.1:{webhook}", f"https://127.0.0.1:{public}"
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
        # The public listener follows its parent down, by itself (its group is killed only after this).
        accepting = eventually(lambda: accepts(public), lambda up: not up, timeout=10)
        assert not accepting, "the public listener outlived `authsvc serve`"


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_webhook_listener_needs_the_client_certificate(listeners: tuple[Path, str, str]) -> None:
    home, webhook, _ = listeners
    ca = str(home / "pki/ca.crt")
    client = (
        str(home / "pki/authsvc/apiserver-webhook-client.crt"),
        str(home / "pki/authsvc/apiserver-webhook-client.key"),
    )
    answer = requests.post(f"{webhook}/authenticate", json=REVIEW, verify=ca, cert=client, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == {"authenticated": False}
    assert requests.post(f"{webhook}/login", verify=ca, cert=client, timeout=10).status_code == 404
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.post(f"{webhook}/authenticate", json=REVIEW, verify=ca, timeout=10)


def test_public_listener_serves_people_not_the_api_server(listeners: tuple[Path, str, str]) -> None:
    home, _, public = listeners
    ca = str(home / "pki/ca.crt")
    assert requests.post(f"{public}/authenticate", json=REVIEW, verify=ca, timeout=10).status_code == 404
    jwks = requests.get(f"{public}/openid/v1/jwks", verify=ca, timeout=10)
    assert jwks.status_code == 200 and jwks.json()["keys"]
    refused = requests.post(f"{public}/login", auth=("carol", "wrong"), verify=ca, timeout=10)
    assert refused.status_code == 401 and "Traceback" not in refused.text
    login = requests.post(f"{public}/login", auth=("carol", "carol-pw"), verify=ca, timeout=10)
    assert login.status_code == 200 and login.json()["user"] == "carol" and login.json()["groups"] == ["dev"]
    assert requests.get(f"{public}/healthz", verify=ca, timeout=10).status_code == 200


def test_no_user_issuer_no_user_discovery(listeners: tuple[Path, str, str]) -> None:
    """Only the service-account issuer's discovery without tokens.user_issuer (see test_user_issuer.py)."""
    home, _, public = listeners
    ca = str(home / "pki/ca.crt")
    discovery = requests.get(f"{public}/.well-known/openid-configuration", verify=ca, timeout=10)
    assert discovery.status_code == 200 and discovery.json()["issuer"] == "https://kubernetes.default.svc.cluster.local"
    users = requests.get(f"{public}/users/.well-known/openid-configuration", verify=ca, timeout=10)
    assert users.status_code == 404


def test_public_listener_is_real_tls(listeners: tuple[Path, str, str]) -> None:
    _, _, public = listeners
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{public}/healthz", verify=True, timeout=10)  # system CAs do not know our CA
    assert ssl.HAS_TLSv1_3


def test_a_port_in_use_is_a_one_line_error(home_template: Path, tmp_path: Path) -> None:
    """Another process on the webhook's port: `authsvc serve` says which address and why, exit 1,
    not an internal error (the twin: the same home serves on a free port, the fixture above)."""
    home = tmp_path / "home"
    shutil.copytree(home_template, home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = [*AUTHSVC_MODULE, f"--home={home}", "serve", f"--bind=127.0.0.1:{port}", "--public-bind="]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another authsvc serve? "
                      "choose another with --bind)"], result.stderr  # fmt: skip
