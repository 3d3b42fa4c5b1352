"""`authsvc init` with kubeadm's options: stored on the first run, phases, dry run, refusals."""

from __future__ import annotations

from pathlib import Path

import yaml
from cryptography import x509

from authsvc.settings import Settings, settings_to_yaml
from authsvc.settings.cluster import ClusterSettings
from tests.conftest import run_cli
from tests.kubeadm.conftest import checksums, kubeconfig_cert

OPTIONS = [
    "--cluster-name=prod",
    "--control-plane-endpoint=10.0.0.100",
    "--apiserver-advertise-address=10.0.0.11",
    "--apiserver-cert-extra-sans=api.prod.example,10.0.0.101",
    "--service-cidr=10.112.0.0/12",
    "--dns-domain=prod.local",
    "--node-name=cp-a",
]


def test_phases_store_options_and_build_the_tree(tmp_path: Path) -> None:
    home = tmp_path / "home"
    certs = run_cli(["init", *OPTIONS, "--phase", "certs"], home=home)
    assert certs.exit_code == 0, certs.stderr
    assert (home / "pki" / "apiserver.crt").exists() and not list(home.glob("*.conf"))
    cluster = yaml.safe_load((home / "authsvc.yaml").read_text())["cluster"]
    assert cluster["name"] == "prod" and cluster["node_name"] == "cp-a"
    assert cluster["apiserver_cert_extra_sans"] == ["api.prod.example", "10.0.0.101"]
    assert cluster["server"] == "https://10.0.0.100:6443"  # derived from the endpoint, as kubeadm does

    kubeconfig = run_cli(["init", "--phase", "kubeconfig"], home=home)
    assert kubeconfig.exit_code == 0, kubeconfig.stderr
    assert sorted(p.name for p in home.glob("*.conf")) == [
        "admin.conf",
        "controller-manager.conf",
        "kubelet.conf",
        "scheduler.conf",
        "super-admin.conf",
    ]
    admin = yaml.safe_load((home / "admin.conf").read_text())
    assert admin["clusters"][0]["name"] == "prod" and admin["current-context"] == "kubernetes-admin@prod"
    assert admin["clusters"][0]["cluster"]["server"] == "https://10.0.0.100:6443"
    assert kubeconfig_cert(home / "kubelet.conf").subject.rfc4514_string() == "CN=system:node:cp-a,O=system:nodes"

    before = checksums(home / "pki")
    again = run_cli(["init", *OPTIONS], home=home)
    assert again.exit_code == 0 and checksums(home / "pki") == before  # never overwrites


def test_dry_run_writes_nothing_and_says_what_it_would_make(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(["init", "--dry-run", "--node-name=cp-a", "--apiserver-advertise-address=10.0.0.11"], home=home)
    assert result.exit_code == 0, result.stderr
    assert not home.exists()
    lines = result.stdout.splitlines()
    assert any(line.startswith("would create CA ca (kubernetes)") for line in lines)
    apiserver = next(line for line in lines if line.startswith("would create apiserver "))
    assert "CN=kube-apiserver" in apiserver and "IP:10.96.0.1" in apiserver and "DNS:cp-a" in apiserver
    assert "would write kubeconfig admin.conf (server https://10.0.0.11:6443)" in lines


def test_option_conflicting_with_the_stored_config_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    stored = Settings(cluster=ClusterSettings(node_name="cp-a"))
    (home / "authsvc.yaml").write_text(settings_to_yaml(stored))
    result = run_cli(["init", "--node-name=cp-b"], home=home)
    assert result.exit_code == 1
    assert "already sets cluster.node_name differently" in result.stderr
    assert not (home / "pki").exists()
    agreeing = run_cli(["init", "--dry-run", "--node-name=CP-A"], home=home)  # same name once normalised
    assert agreeing.exit_code == 0, agreeing.stderr


def test_an_option_may_set_what_a_hand_written_config_leaves_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    config = "login:\n  backends: [users]\n"  # no cluster section: every cluster value is a default
    (home / "authsvc.yaml").write_text(config)
    result = run_cli(["init", "--dry-run", "--node-name=cp-a", "--control-plane-endpoint=10.0.0.100"], home=home)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    apiserver = next(line for line in lines if line.startswith("would create apiserver "))
    assert "DNS:cp-a" in apiserver and "IP:10.0.0.100" in apiserver
    assert "would write kubeconfig admin.conf (server https://10.0.0.100:6443)" in lines
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"note: {home / 'authsvc.yaml'} does not set ")
    assert all(f"cluster.{k}" in result.stderr for k in ("server", "control_plane_endpoint", "node_name"))
    assert (home / "authsvc.yaml").read_text() == config


def test_only_values_written_in_the_config_bind_the_options(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "authsvc.yaml").write_text("cluster:\n  node_name: cp-a\n")
    refused = run_cli(["init", "--dry-run", "--node-name=cp-b", "--dns-domain=corp.example"], home=home)
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert refused.stderr == (
        f"error: {home / 'authsvc.yaml'} already sets cluster.node_name differently: edit the file to change it\n"
    )
    accepted = run_cli(["init", "--dry-run", "--node-name=cp-a", "--dns-domain=corp.example"], home=home)
    assert accepted.exit_code == 0, accepted.stderr
    assert "DNS:kubernetes.default.svc.corp.example" in accepted.stdout
    assert "cluster.dns_domain" in accepted.stderr and "cluster.node_name" not in accepted.stderr


def test_invalid_options_are_usage_errors(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_cli(["init", "--apiserver-advertise-address=k8s.example", "--service-cidr=10.0.0.0/30"], home=home)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "--apiserver-advertise-address: advertise address 'k8s.example' is not an IP address" in result.stderr
    assert "--service-cidr" in result.stderr
    assert not home.exists()


def test_init_reads_the_config_given_with_config_and_writes_no_copy_into_the_home(tmp_path: Path) -> None:
    home, config = tmp_path / "home", tmp_path / "etc" / "authsvc.yaml"
    config.parent.mkdir()
    config.write_text("cluster:\n  name: from-etc\n  node_name: cp-etc\n")
    result = run_cli(["--config", str(config), "init", "--phase", "certs"], home=home)
    assert result.exit_code == 0, result.stderr
    assert not (home / "authsvc.yaml").exists()  # later commands would read a stale copy
    apiserver = x509.load_pem_x509_certificate((home / "pki" / "apiserver.crt").read_bytes())
    sans = apiserver.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "cp-etc" in sans.get_values_for_type(x509.DNSName)  # the node name from --config's file
    dry = run_cli(["--config", str(config), "init", "--dry-run", "--node-name=cp-other"], home=tmp_path / "h2")
    assert dry.exit_code == 1 and f"error: {config} already sets cluster.node_name differently" in dry.stderr
    default = run_cli(["init", "--dry-run", "--node-name=cp-other"], home=tmp_path / "h3")
    assert default.exit_code == 0, default.stderr  # the twin: without --config, nothing binds the option


def test_init_writes_a_missing_config_where_config_points(tmp_path: Path) -> None:
    home, config = tmp_path / "home", tmp_path / "etc" / "authsvc.yaml"
    result = run_cli(["--config", str(config), "init", "--phase", "certs", "--node-name=cp-a"], home=home)
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(config.read_text())["cluster"]["node_name"] == "cp-a"
    assert not (home / "authsvc.yaml").exists()
