"""The pure parts of pki/kubeadm/certlist.py: SAN rules, endpoints and the checks kubeadm makes on its inputs."""

from __future__ import annotations

import ipaddress

import pytest

from pki.kubeadm.certlist import (
    ClusterParams,
    apiserver_alt_names,
    control_plane_url,
    etcd_alt_names,
    find_spec,
    first_service_ip,
    key_type_for,
    local_api_url,
    split_host_port,
)


@pytest.mark.parametrize(
    ("cidr", "first"),
    [
        ("10.96.0.0/12", "10.96.0.1"),
        ("10.100.0.0/16", "10.100.0.1"),
        ("fd00:10:96::/108", "fd00:10:96::1"),
        ("10.96.0.0/12,fd00:10:96::/108", "10.96.0.1"),  # dual stack: the first family's
    ],
)
def test_first_service_ip(cidr: str, first: str) -> None:
    assert first_service_ip(cidr) == ipaddress.ip_address(first)


@pytest.mark.parametrize("cidr", ["10.96.0.1/12", "10.96.0.0/29", "not-a-cidr", ""])
def test_bad_service_cidr_refused(cidr: str) -> None:
    with pytest.raises(ValueError, match="service CIDR"):
        first_service_ip(cidr)


def test_endpoint_ip_goes_to_ip_sans_and_dns_to_dns_sans() -> None:
    by_ip = apiserver_alt_names(ClusterParams(control_plane_endpoint="[2001:db8::1]:443"))
    by_name = apiserver_alt_names(ClusterParams(control_plane_endpoint="LB.Example.Test"))
    assert ipaddress.ip_address("2001:db8::1") in by_ip.ips and "lb.example.test" not in by_ip.dns
    assert "lb.example.test" in by_name.dns


def test_duplicates_removed_the_kubeadm_way() -> None:
    params = ClusterParams(apiserver_extra_sans=("kubernetes", "127.0.0.1", "zz.example", "aa.example"))
    names = apiserver_alt_names(params)
    assert names.dns == tuple(sorted(set(names.dns))) and names.dns.count("kubernetes") == 1
    assert [str(ip) for ip in names.ips] == ["10.96.0.1", "127.0.0.1"]


def test_etcd_sans_without_duplicate_loopback() -> None:
    names = etcd_alt_names(ClusterParams(node_name="cp-1", advertise_address="127.0.0.1"))
    assert names.dns == ("cp-1", "localhost")
    assert [str(ip) for ip in names.ips] == ["127.0.0.1", "::1"]


@pytest.mark.parametrize(
    ("endpoint", "url"),
    [
        (None, "https://127.0.0.2:6443"),
        ("k8s.example.test", "https://k8s.example.test:6443"),
        ("k8s.example.test:443", "https://k8s.example.test:443"),
        ("[2001:db8::1]:8443", "https://[2001:db8::1]:8443"),
        ("2001:db8::1", "https://[2001:db8::1]:6443"),
    ],
)
def test_control_plane_url(endpoint: str | None, url: str) -> None:
    params = ClusterParams(advertise_address="127.0.0.2", control_plane_endpoint=endpoint)
    assert control_plane_url(params) == url
    assert local_api_url(params) == "https://127.0.0.2:6443"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("advertise_address", "k8s.example.test", "not an IP address"),
        ("node_name", "CP_1", "node name"),
        ("node_name", "Cp-1", "lower case"),
        ("apiserver_extra_sans", ("bad name!",), "DNS name"),
        ("dns_domain", "cluster..local", "DNS name"),
        ("control_plane_endpoint", "k8s.example.test:99999", "invalid port"),
        ("control_plane_endpoint", "*.example.test", "neither an IP address nor a DNS name"),
    ],
)
def test_parameters_kubeadm_refuses(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClusterParams(**{field: value})  # type: ignore[arg-type]


def test_split_host_port_defaults_to_bind_port() -> None:
    assert split_host_port("10.0.0.1") == ("10.0.0.1", 6443)
    assert split_host_port("lb:7443") == ("lb", 7443)


def test_names_accepted_by_renew() -> None:
    for name in ("etcd-server", "etcd/server"):
        spec = find_spec(name)
        assert spec is not None and getattr(spec, "base_name", None) == "etcd/server"
    assert find_spec("admin.conf") is not None and find_spec("admin") is not None
    assert find_spec("etcd-ca") is None  # CAs are not renewed


def test_encryption_algorithms() -> None:
    assert key_type_for("RSA-2048").value == "rsa-2048"
    with pytest.raises(ValueError, match="RSA-2048, RSA-3072"):
        key_type_for("DSA-1024")
