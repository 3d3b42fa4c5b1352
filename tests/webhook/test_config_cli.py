"""What `authsvc init` creates for the webhook, `webhook-config`, `apiserver-config`, and `serve`'s refusals."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from authsvc.cli.webhook_config import authentication_configuration, webhook_url
from authsvc.errors import HomeError
from authsvc.init.steps import initialize_home
from authsvc.init.webhook_pki import webhook_pki_step
from pki.clock import FixedClock
from tests.components.support import require_binary
from tests.conftest import run_cli

from .support import small_home

SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
USER_ISSUER = "https://authsvc.example/users"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("config") / "home"
    result = run_cli(["init"], home=root)
    assert result.exit_code == 0, result.stderr
    return root


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _openssl_verify(ca: Path, cert: Path, purpose: str) -> subprocess.CompletedProcess[str]:
    openssl = require_binary("openssl")
    command = [str(openssl), "verify", "-CAfile", str(ca), "-purpose", purpose, str(cert)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_init_creates_the_serving_cert_and_a_client_ca_of_its_own(home: Path) -> None:
    pki = home / "pki"
    serving = _cert(pki / "authsvc/serving.crt")
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _openssl_verify(pki / "ca.crt", pki / "authsvc/serving.crt", "sslserver").returncode == 0
    client = pki / "authsvc/apiserver-webhook-client.crt"
    assert _openssl_verify(pki / "authsvc/webhook-client-ca.crt", client, "sslclient").returncode == 0
    # Its twin: the cluster CA did not sign it, and the webhook's client CA is not the cluster CA.
    assert _openssl_verify(pki / "ca.crt", client, "sslclient").returncode != 0
    assert _cert(pki / "authsvc/webhook-client-ca.crt").subject != _cert(pki / "ca.crt").subject
    for key in ("serving.key", "webhook-client-ca.key", "apiserver-webhook-client.key"):
        assert (pki / "authsvc" / key).stat().st_mode & 0o777 == 0o600


def test_init_twice_changes_nothing(home: Path) -> None:
    files = sorted((home / "pki/authsvc").iterdir())
    before = {f: f.read_bytes() for f in files}
    result = run_cli(["init"], home=home)
    assert result.exit_code == 0 and "already initialised" in result.stdout
    assert {f: f.read_bytes() for f in files} == before


def test_half_a_pair_is_an_error_naming_the_fix(tmp_path: Path, clock: FixedClock) -> None:
    home = small_home(tmp_path / "home", clock, with_ca=True)
    initialize_home(home.root, home.settings, clock=clock, environ={}, steps=[webhook_pki_step])
    (home.root / "pki/authsvc/serving.key").unlink()
    with pytest.raises(HomeError, match=r"serving\.crt.*remove both"):
        initialize_home(home.root, home.settings, clock=clock, environ={}, steps=[webhook_pki_step])


def test_webhook_config_is_what_the_api_server_needs(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "webhook.kubeconfig"
    result = run_cli(["webhook-config", "--url", "https://10.0.0.5:8443", "-o", str(out)], home=home)
    assert result.exit_code == 0, result.stderr
    assert f"--authentication-token-webhook-config-file={out}" in result.stdout
    assert "--authentication-token-webhook-version=v1" in result.stdout
    assert "--authentication-token-webhook-cache-ttl=30s" in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(out.read_text())
    cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
    assert cluster["server"] == "https://10.0.0.5:8443/authenticate"
    assert base64.b64decode(cluster["certificate-authority-data"]) == (home / "pki/ca.crt").read_bytes()
    client_pem = (home / "pki/authsvc/apiserver-webhook-client.crt").read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == client_pem
    assert b"PRIVATE KEY" in base64.b64decode(user["client-key-data"])
    kubectl = require_binary("kubectl")
    view = subprocess.run(
        [str(kubectl), "config", "view", "--kubeconfig", str(out), "-o", "jsonpath={.clusters[0].cluster.server}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert view.stdout == "https://10.0.0.5:8443/authenticate"


def test_webhook_config_to_stdout_keeps_flags_on_stderr(home: Path) -> None:
    result = run_cli(
        ["webhook-config", "--url", "https://127.0.0.1:8443/authenticate", "--cache-ttl", "30s"], home=home
    )
    assert yaml.safe_load(result.stdout)["kind"] == "Config"
    assert "--authentication-token-webhook-cache-ttl=30s" in result.stderr


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443/authenticate", "127.0.0.1:8443", "https://"])
def test_webhook_config_refuses_urls_that_are_not_https(home: Path, url: str) -> None:
    result = run_cli(["webhook-config", "--url", url], home=home)
    assert result.exit_code == 2 and "https://" in result.stderr
    with pytest.raises(ValueError):
        webhook_url(url)


def config_with(home: Path, tmp_path: Path, **tokens: str) -> Path:
    """authsvc.yaml of `home` with other `tokens:` settings, as a file of its own (for --config)."""
    config = yaml.safe_load((home / "authsvc.yaml").read_text())
    config["tokens"].update(tokens)
    config_file = tmp_path / "authsvc.yaml"
    config_file.write_text(yaml.safe_dump(config))
    return config_file


def test_apiserver_config(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "authn.yaml"
    config = config_with(home, tmp_path, user_issuer=USER_ISSUER)
    result = run_cli(
        ["--config", str(config), "apiserver-config", "--audience", "a", "--audience", "b",
         "--username-prefix", "authsvc:", "-o", str(out)],
        home=home,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"--authentication-config={out}" in result.stdout and result.stderr == ""
    document = yaml.safe_load(out.read_text())
    assert document["apiVersion"] == "apiserver.config.k8s.io/v1beta1"
    assert document["kind"] == "AuthenticationConfiguration"
    (jwt_authenticator,) = document["jwt"]
    issuer = jwt_authenticator["issuer"]
    assert issuer["url"] == USER_ISSUER  # tokens.user_issuer, the iss of the user tokens
    assert (issuer["audiences"], issuer["audienceMatchPolicy"]) == (["a", "b"], "MatchAny")
    public_url = yaml.safe_load((home / "authsvc.yaml").read_text())["server"]["public_url"]
    # The user issuer's discovery on the public listener, not the service-account issuer's.
    assert issuer["discoveryURL"] == f"{public_url}/users/.well-known/openid-configuration"
    assert x509.load_pem_x509_certificate(issuer["certificateAuthority"].encode())
    assert jwt_authenticator["claimMappings"] == {
        "username": {"claim": "sub", "prefix": "authsvc:"},
        "groups": {"claim": "groups", "prefix": ""},
        # A claim mapping would make the claim required: most user tokens have no uid.
        "uid": {"expression": "has(claims.uid) ? claims.uid : ''"},
    }


def test_apiserver_config_defaults_to_the_user_audience(home: Path, tmp_path: Path) -> None:
    config = config_with(home, tmp_path, user_issuer=USER_ISSUER, user_audience="kube-users")
    result = run_cli(["--config", str(config), "apiserver-config", "--issuer", USER_ISSUER], home=home)
    assert result.exit_code == 0, result.stderr
    issuer = yaml.safe_load(result.stdout)["jwt"][0]["issuer"]
    assert issuer["url"] == USER_ISSUER and issuer["audiences"] == ["kube-users"]


def test_apiserver_config_refuses_the_service_account_issuer(home: Path) -> None:
    """Without tokens.user_issuer the user tokens carry the service-account issuer: an error, not a warning."""
    for args in ([], ["--issuer", "https://authsvc.example/users"], ["--issuer", SA_ISSUER]):
        result = run_cli(["apiserver-config", "--api-version", "v1", *args], home=home)
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr.count("\n") == 1 and "set tokens.user_issuer in authsvc.yaml" in result.stderr
        assert f"service-account issuer {SA_ISSUER}, which kube-apiserver refuses" in result.stderr


def test_apiserver_config_refuses_an_issuer_no_token_carries(home: Path, tmp_path: Path) -> None:
    config = config_with(home, tmp_path, user_issuer=USER_ISSUER)
    result = run_cli(["--config", str(config), "apiserver-config", "--issuer", "https://other.example/u"], home=home)
    assert (result.exit_code, result.stdout) == (2, "")
    assert f"is not tokens.user_issuer {USER_ISSUER}" in result.stderr and result.stderr.count("\n") == 1


def test_one_audience_needs_no_match_policy() -> None:
    document = authentication_configuration(
        api_version="v1beta1", issuer="https://x.example", audiences=["a"], ca_pem=None, discovery_url=None
    )
    assert document["jwt"][0]["issuer"] == {"url": "https://x.example", "audiences": ["a"]}


def test_serve_refuses_a_home_without_its_certificates(tmp_path: Path, clock: FixedClock) -> None:
    bare = small_home(tmp_path / "bare", clock)
    result = run_cli(["serve"], home=bare.root)
    assert result.exit_code == 1 and "serving.crt does not exist: run `authsvc init" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("bind", ["8443", "127.0.0.1", "127.0.0.1:99999", ":8443", "[::1]"])
def test_serve_refuses_a_bad_bind(home: Path, bind: str) -> None:
    result = run_cli(["serve", "--bind", bind], home=home)
    assert result.exit_code == 2 and "HOST:PORT" in result.stderr


def test_serve_refuses_a_broken_token_file_in_one_line(home: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((home / "authsvc.yaml").read_text())
    config["authn"]["tokenfile"] = {"path": "broken-tokens.csv"}
    config_file = tmp_path / "authsvc.yaml"
    config_file.write_text(yaml.safe_dump(config))
    (home / "broken-tokens.csv").write_text("only-a-token\n")
    result = run_cli(["--config", str(config_file), "serve", "--bind", "127.0.0.1:1"], home=home)
    assert result.exit_code == 1 and "needs at least 3 columns" in result.stderr
    assert result.stderr.count("\n") == 1


def test_serve_plan_requires_client_certificates_unless_told_otherwise(home: Path) -> None:
    from authsvc.cli.serve import granian_server, serve_plan
    from authsvc.home.opened import open_home

    opened = open_home(home, environ={})
    plan = serve_plan(opened, bind="127.0.0.1:8443", workers=None, threads=3, insecure=False)
    assert plan.client_ca == home / "pki/authsvc/webhook-client-ca.crt"
    assert (plan.workers, plan.threads, plan.tls_min_version) == (2, 3, "tls1.3")
    assert granian_server(plan).ssl_ctx[-1] is True  # granian verifies client certificates itself
    insecure = serve_plan(opened, bind=None, workers=1, threads=None, insecure=True)
    assert insecure.client_ca is None and granian_server(insecure).ssl_ctx[-1] is False


def test_serve_refuses_an_encrypted_serving_key(home: Path, tmp_path: Path) -> None:
    from pki.keys import generate_private_key
    from pki.store import write_private_key

    encrypted = write_private_key(tmp_path / "encrypted.key", generate_private_key(), b"passphrase")
    config = yaml.safe_load((home / "authsvc.yaml").read_text())
    config["server"]["tls_key"] = str(encrypted)
    config_file = tmp_path / "authsvc.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = run_cli(["--config", str(config_file), "serve"], home=home)
    assert result.exit_code == 1 and "is encrypted" in result.stderr


def test_webhook_config_defaults_to_the_webhook_listener_not_the_public_one(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "webhook.kubeconfig"
    result = run_cli(["webhook-config", "-o", str(out)], home=home)
    assert result.exit_code == 0, result.stderr
    server = yaml.safe_load(out.read_text())["clusters"][0]["cluster"]["server"]
    assert server == "https://127.0.0.1:8443/authenticate"  # server.bind's default; 8444 has no /authenticate


def test_webhook_config_without_url_refuses_a_wildcard_bind(home: Path, tmp_path: Path) -> None:
    mine = tmp_path / "home"
    shutil.copytree(home, mine)  # the module's home stays as it is
    config = yaml.safe_load((mine / "authsvc.yaml").read_text())
    config.setdefault("server", {})["bind"] = "0.0.0.0:8443"
    (mine / "authsvc.yaml").write_text(yaml.safe_dump(config))
    result = run_cli(["webhook-config", "-o", str(tmp_path / "w.conf")], home=mine)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "listens on every address: pass --url" in result.stderr
    assert not (tmp_path / "w.conf").exists()


def _with_oidc(home: Path, tmp_path: Path, clients: list[dict[str, object]]) -> Path:
    config_file = config_with(home, tmp_path, user_issuer=USER_ISSUER)
    config = yaml.safe_load(config_file.read_text())
    config["oidc"] = {"clients": clients}
    config_file.write_text(yaml.safe_dump(config))
    return config_file


KUBECTL_CLIENT = {"id": "kubernetes", "type": "public", "redirect_uris": ["http://127.0.0.1/callback"]}


def test_apiserver_config_prints_the_oidc_flags(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "authn.yaml"
    config = _with_oidc(home, tmp_path, [KUBECTL_CLIENT])
    result = run_cli(["--config", str(config), "apiserver-config", "-o", str(out)], home=home)
    assert result.exit_code == 0, result.stderr
    flags = [line for line in result.stdout.splitlines() if line.startswith("--oidc-")]
    assert flags == [
        f"--oidc-issuer-url={USER_ISSUER}",
        "--oidc-client-id=kubernetes",
        "--oidc-username-claim=sub",
        "--oidc-username-prefix=-",  # else kube-apiserver prefixes names with "<issuer>#"
        "--oidc-groups-claim=groups",
        f"--oidc-ca-file={(home / 'pki' / 'ca.crt').resolve()}",
    ]
    # The structured configuration takes the client's ID tokens too.
    assert yaml.safe_load(out.read_text())["jwt"][0]["issuer"]["audiences"] == ["authsvc", "kubernetes"]
    # Without -o the YAML alone is on stdout, the flags on stderr.
    printed = run_cli(["--config", str(config), "apiserver-config"], home=home)
    assert yaml.safe_load(printed.stdout)["kind"] == "AuthenticationConfiguration"
    assert "--oidc-client-id=kubernetes" in printed.stderr


def test_apiserver_config_without_oidc_prints_no_oidc_flags(home: Path, tmp_path: Path) -> None:
    config = config_with(home, tmp_path, user_issuer=USER_ISSUER)
    result = run_cli(["--config", str(config), "apiserver-config", "-o", str(tmp_path / "a.yaml")], home=home)
    assert result.exit_code == 0 and "--oidc-" not in result.stdout + result.stderr


def test_apiserver_config_asks_which_of_several_public_clients(home: Path, tmp_path: Path) -> None:
    other = {**KUBECTL_CLIENT, "id": "other"}
    config = _with_oidc(home, tmp_path, [KUBECTL_CLIENT, other])
    ambiguous = run_cli(["--config", str(config), "apiserver-config"], home=home)
    assert ambiguous.exit_code == 2 and "--client-id" in ambiguous.stderr
    unknown = run_cli(["--config", str(config), "apiserver-config", "--client-id", "nope"], home=home)
    assert unknown.exit_code == 2 and "not in oidc.clients" in unknown.stderr
    chosen = run_cli(["--config", str(config), "apiserver-config", "--client-id", "other"], home=home)
    assert chosen.exit_code == 0 and "--oidc-client-id=other" in chosen.stderr
