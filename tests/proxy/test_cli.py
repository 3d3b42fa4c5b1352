"""The command line around the proxy: `apiserver-config --proxy`, `issue --via-proxy`, and
`authsvc proxy` refusing to start on what cannot work (one line, exit 1; bad usage, exit 2)."""

from __future__ import annotations

import base64

import yaml

from authsvc.home.opened import Home
from tests.conftest import run_cli


def test_apiserver_config_prints_the_requestheader_flags_kubeadm_sets(home: Home) -> None:
    result = run_cli(["apiserver-config", "--proxy"], home=home.root)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        f"--requestheader-client-ca-file={(home.root / 'pki' / 'front-proxy-ca.crt').resolve()}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    ]


def test_apiserver_config_refuses_a_client_certificate_of_another_ca(home: Home) -> None:
    text = (home.root / "authsvc.yaml").read_text()
    settings = yaml.safe_load(text)
    settings["proxy"] = {"request_header": {"client_cert": "pki/apiserver-kubelet-client.crt"}}
    (home.root / "authsvc.yaml").write_text(yaml.safe_dump(settings))

    result = run_cli(["apiserver-config", "--proxy"], home=home.root)

    assert result.exit_code == 1
    assert "is not signed by" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_issue_via_proxy_points_the_kubeconfig_at_the_proxy_with_its_ca(home: Home) -> None:
    out = home.root / "alice.kubeconfig"
    result = run_cli(
        ["issue", "alice", "-g", "dev", "--via-proxy", "https://proxy.example:8445", "-o", str(out)], home=home.root
    )

    assert result.exit_code == 0, result.stderr
    cluster = yaml.safe_load(out.read_text())["clusters"][0]["cluster"]
    assert cluster["server"] == "https://proxy.example:8445"
    assert base64.b64decode(cluster["certificate-authority-data"]) == (home.root / "pki" / "ca.crt").read_bytes()


def test_issue_refuses_via_proxy_with_server_or_a_plain_url(home: Home) -> None:
    both = run_cli(
        ["issue", "bob", "--server", "https://a:6443", "--via-proxy", "https://b:8445", "-o", "-"], home=home.root
    )
    plain = run_cli(["issue", "bob", "--via-proxy", "http://b:8445", "-o", "-"], home=home.root)

    assert both.exit_code == 2 and "choose one" in both.stderr
    assert plain.exit_code == 2 and "--via-proxy" in plain.stderr
    assert not list(home.root.glob("bob*"))


def test_proxy_refuses_a_bad_bind_as_usage(home: Home) -> None:
    result = run_cli(["proxy", "--bind", "nowhere"], home=home.root)
    assert result.exit_code == 2 and "HOST:PORT" in result.stderr


def test_proxy_refuses_to_start_without_its_certificate(home: Home) -> None:
    (home.root / "pki" / "authsvc" / "proxy.crt").unlink()
    result = run_cli(["proxy", "--bind", "127.0.0.1:1"], home=home.root)
    assert result.exit_code == 1
    assert "proxy.crt does not exist: run `authsvc init`" in result.stderr


def test_impersonation_mode_needs_a_token(home: Home) -> None:
    result = run_cli(["proxy", "--bind", "127.0.0.1:1", "--mode", "impersonation"], home=home.root)
    assert result.exit_code == 1
    assert "proxy.impersonation.token_file" in result.stderr and "Traceback" not in result.stderr
