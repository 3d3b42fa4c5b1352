"""--mode token: a bearer token authsvc signed, recorded by its id, and revocable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client, config

from authsvc.home.opened import Home
from authsvc.kubeconfig.documents import load_kubeconfig
from authsvc.kubeconfig.issuer import CredentialInventory, IssueMode
from pki.errors import TokenRejected
from tests.conftest import run_cli
from tests.kubeconfig.conftest import Kubectl
from tests.kubeconfig.tls_server import VersionServer

pytestmark = pytest.mark.kubectl


def token_kubeconfig(home: Home, tmp_path: Path, server: str, *args: str) -> tuple[Path, str]:
    out = tmp_path / "token.kubeconfig"
    result = run_cli(["issue", "tom", "--mode", "token", "--server", server, "-o", str(out), *args], home=home.root)
    assert result.exit_code == 0, result.stderr
    return out, load_kubeconfig(out)["users"][0]["user"]["token"]


def test_kubectl_sends_the_token_and_it_verifies(
    home: Home, tmp_path: Path, kubectl: Kubectl, token_server: VersionServer
) -> None:
    kubeconfig, token = token_kubeconfig(home, tmp_path, token_server.url, "-g", "dev", "-g", "qa", "--ttl", "2h")

    assert kubectl.view(kubeconfig)["users"][0]["user"]["token"] == token
    result = kubectl.run(kubeconfig, "get", "--raw", "/version")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["gitVersion"] == "v1.32.0"
    assert {s.authorization for s in token_server.seen} == {f"Bearer {token}"}
    verified = home.stores.token_service.verify(token)
    identity = verified.identity()
    assert (identity.username, identity.groups) == ("tom", ("dev", "qa"))
    [record] = CredentialInventory(home.stores.engine).credentials()
    assert (record.mode, record.token_jti, record.serial) == (IssueMode.TOKEN, verified.jti, None)
    assert record.expires_at == verified.expires_at


def test_python_client_sends_the_token(home: Home, tmp_path: Path, token_server: VersionServer) -> None:
    kubeconfig, token = token_kubeconfig(home, tmp_path, token_server.url, "-g", "dev")
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)

    with client.ApiClient(configuration) as api:
        assert client.VersionApi(api).get_code().git_version == "v1.32.0"

    assert token_server.seen[-1].authorization == f"Bearer {token}"


def test_revoked_token_no_longer_verifies(home: Home, tmp_path: Path, token_server: VersionServer) -> None:
    _, token = token_kubeconfig(home, tmp_path, token_server.url)
    [record] = CredentialInventory(home.stores.engine).credentials()
    assert record.token_jti is not None

    revoked = run_cli(["token", "revoke", record.token_jti], home=home.root)

    assert revoked.exit_code == 0, revoked.stderr
    with pytest.raises(TokenRejected, match="revoked"):
        home.stores.token_service.verify(token)


def test_token_lifetime_over_the_cap_is_refused_and_nothing_written(home: Home, tmp_path: Path) -> None:
    out = tmp_path / "t.kubeconfig"

    result = run_cli(["issue", "tom", "--mode", "token", "--ttl", "30d", "-o", str(out)], home=home.root)

    assert result.exit_code == 1
    assert result.stderr == "error: token lifetime 30d exceeds the maximum 1d (tokens.max_ttl)\n"
    assert not out.exists()
    assert CredentialInventory(home.stores.engine).credentials() == []
