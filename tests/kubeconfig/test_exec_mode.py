"""--mode exec: the kubeconfig runs `authsvc login` as a client-go exec credential plugin."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from authsvc.home.opened import Home
from authsvc.kubeconfig.issuer import CredentialInventory, IssueMode
from pki.ca import CertificateAuthority
from pki.names import SubjectAltNames, common_name_subject
from pki.profiles import SERVER
from pki.store import write_certificates
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl, reconfigure


def exec_kubeconfig(home: Home, tmp_path: Path, kubectl: Kubectl, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "exec.kubeconfig"
    result = run_cli(["issue", "carol", "--mode", "exec", "-o", str(out), *args], home=home.root)
    assert result.exit_code == 0, result.stderr
    return kubectl.view(out)["users"][0]["user"]["exec"], result.stderr


def test_exec_user_runs_authsvc_login_with_the_login_ca(home: Home, tmp_path: Path, kubectl: Kubectl) -> None:
    plugin, _ = exec_kubeconfig(home, tmp_path, kubectl)

    assert plugin["apiVersion"] == "client.authentication.k8s.io/v1"
    assert plugin["command"] == "authsvc"
    assert plugin["interactiveMode"] == "IfAvailable"
    assert plugin["provideClusterInfo"] is True
    assert "install authsvc" in plugin["installHint"]
    args = plugin["args"]
    assert args[:3] == ["login", "--server", "https://127.0.0.1:8444/login"]
    assert args[3] == "--ca-data" and base64.b64decode(args[4]) == home.layout.cert_path("ca").read_bytes()
    assert args[5:] == ["--username", "carol"]
    [record] = CredentialInventory(home.stores.engine).credentials()
    assert (record.mode, record.serial, record.token_jti, record.expires_at) == (IssueMode.EXEC, None, None, None)


def test_login_url_follows_public_url(home: Home, tmp_path: Path, kubectl: Kubectl) -> None:
    home = reconfigure(home, server={"public_url": "https://auth.example.com/authsvc/"})

    plugin, _ = exec_kubeconfig(home, tmp_path, kubectl)

    assert plugin["args"][2] == "https://auth.example.com/authsvc/login"


def serving_cert(home: Home, ca: CertificateAuthority) -> None:
    cert = ca.issue(
        subject=common_name_subject("authsvc"),
        public_key=ca.key.public_key(),
        profile=SERVER,
        now=home.clock(),
        ttl=SERVER.default_ttl,
        sans=SubjectAltNames.parse(["DNS:localhost"]),
    )
    write_certificates(home.layout.path(home.settings.server.tls_cert), [cert])


def test_serving_cert_from_the_cluster_ca_embeds_it(home: Home, tmp_path: Path, kubectl: Kubectl) -> None:
    serving_cert(home, home.stores.load_ca())

    plugin, stderr = exec_kubeconfig(home, tmp_path, kubectl)

    assert base64.b64decode(plugin["args"][4]) == home.layout.cert_path("ca").read_bytes()
    assert "note:" not in stderr


def test_serving_cert_from_an_unknown_ca_leaves_ca_data_out_and_says_so(
    home: Home, tmp_path: Path, kubectl: Kubectl
) -> None:
    serving_cert(home, CertificateAuthority.create_root("public CA", now=home.clock()))

    plugin, stderr = exec_kubeconfig(home, tmp_path, kubectl)

    assert "--ca-data" not in plugin["args"]
    assert "note: the login endpoint's certificate" in stderr and "system trust store" in stderr


@pytest.mark.parametrize("public_url", ["http://auth.example.com", "https://"])
def test_a_bad_public_url_is_refused(home: Home, public_url: str) -> None:
    home = reconfigure(home, server={"public_url": public_url})

    result = run_cli(["issue", "carol", "--mode", "exec", "-o", "-"], home=home.root)

    assert result.exit_code == 2
    assert "server.public_url in authsvc.yaml" in result.stderr and result.stdout == ""


PUBLIC_CLIENT = {"id": "kubernetes", "type": "public", "redirect_uris": ["http://127.0.0.1/callback"]}


def test_browser_mode_runs_authsvc_login_browser(home: Home, tmp_path: Path, kubectl: Kubectl) -> None:
    issuer = "https://127.0.0.1:8444/users"
    home = reconfigure(home, tokens={"user_issuer": issuer}, oidc={"clients": [PUBLIC_CLIENT]})

    plugin, _ = exec_kubeconfig(home, tmp_path, kubectl, "--browser")

    args = plugin["args"]
    assert args[:6] == ["login", "--browser", "--issuer", issuer, "--client-id", "kubernetes"]
    assert args[6] == "--ca-data" and base64.b64decode(args[7]) == home.layout.cert_path("ca").read_bytes()
    assert args[8:] == ["--username", "carol"]  # prefills the sign-in form


def test_browser_mode_needs_the_provider_and_one_public_client(home: Home, tmp_path: Path) -> None:
    out = str(tmp_path / "k")
    off = run_cli(["issue", "carol", "--mode", "exec", "--browser", "-o", out], home=home.root)
    assert off.exit_code == 1 and "oidc.clients" in off.stderr
    two = [PUBLIC_CLIENT, {**PUBLIC_CLIENT, "id": "other"}]
    home = reconfigure(home, tokens={"user_issuer": "https://127.0.0.1:8444/users"}, oidc={"clients": two})
    several = run_cli(["issue", "carol", "--mode", "exec", "--browser", "-o", out], home=home.root)
    assert several.exit_code == 2 and "--client-id" in several.stderr
    unknown = run_cli(["issue", "carol", "--mode", "exec", "--browser", "--client-id", "x", "-o", out], home=home.root)
    assert unknown.exit_code == 2 and "not a public client" in unknown.stderr
    cert_mode = run_cli(["issue", "carol", "--browser", "-o", out], home=home.root)
    assert cert_mode.exit_code == 2 and "--mode exec" in cert_mode.stderr
