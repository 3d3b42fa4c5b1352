"""The `cluster:` settings of an adopted kubeadm cluster, read from what is imported.

Each value comes with where it was read, so that `pki import` can say what it inferred. The
sources, most trusted first:

1. a kubeadm configuration file given with `--cluster-config` (what the operator told kubeadm);
2. the kubeconfigs: admin.conf's server is the control-plane endpoint (and `cluster.server`, the
   API URL of `authsvc issue`), the cluster entry's name is the cluster name, the server of
   controller-manager.conf and scheduler.conf is the node's own API endpoint (the advertise
   address), kubelet.conf's user is `system:node:<node name>`;
3. the certificates, in kubeadm's order (pkiutil's GetAPIServerAltNames / GetEtcdAltNames):
   etcd/server's CN is the node name and its first IP SAN the advertise address; the API
   server's first IP SAN is the first service IP, its `kubernetes.default.svc.<domain>` the DNS
   domain, and its SANs beyond kubeadm's defaults the extra SANs; ca.crt's key gives the
   encryption algorithm.

What cannot be read (a service CIDR other than kubeadm's default, without a configuration file)
is said in a note, with the setting to write.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from authsvc.adopt.kubeconfigs import SourceKubeconfig
from pki.keys import key_type_of
from pki.kubeadm.certlist import (
    DEFAULT_SERVICE_CIDR,
    ENCRYPTION_ALGORITHMS,
    ClusterParams,
    apiserver_alt_names,
    first_service_ip,
)
from pki.kubeadm.import_tree import KubeadmTree
from pki.names import NODE_PREFIX, SubjectAltNames, subject_user

SERVICE_DNS_PREFIX = "kubernetes.default.svc."
LOCAL_KUBECONFIGS = ("controller-manager.conf", "scheduler.conf")
ADMIN_KUBECONFIGS = ("admin.conf", "super-admin.conf")


@dataclass(frozen=True, slots=True)
class Inferred:
    field: str  # the `cluster:` setting
    value: Any
    source: str  # "etcd/server.crt: subject CN"


@dataclass
class Inference:
    values: dict[str, Inferred] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def put(self, name: str, value: Any, source: str) -> None:
        """The first source to give a value wins (they are asked most trusted first)."""
        if value not in (None, "", ()) and name not in self.values:
            self.values[name] = Inferred(name, value, source)

    def value(self, name: str, default: Any = None) -> Any:
        found = self.values.get(name)
        return found.value if found is not None else default


def infer_cluster(
    tree: KubeadmTree, kubeconfigs: Sequence[SourceKubeconfig], config: Mapping[str, tuple[Any, str]]
) -> Inference:
    inference = Inference()
    for name, (value, source) in config.items():
        inference.put(name, tuple(value) if isinstance(value, list) else value, source)
    certs = {c.name: c.certificate for c in tree.certificates}
    by_file = {k.file_name: k for k in kubeconfigs}
    _node_name(inference, certs, by_file)
    _cluster_name(inference, kubeconfigs)
    _advertise_address(inference, certs, by_file)
    _endpoint(inference, by_file)
    apiserver = certs.get("apiserver")
    if apiserver is not None:
        _from_apiserver(inference, apiserver)
    if "ca" in certs:
        _encryption_algorithm(inference, certs["ca"])
    return inference


def _node_name(inference: Inference, certs: Mapping[str, x509.Certificate], by_file: Mapping[str, Any]) -> None:
    if "etcd/server" in certs:
        inference.put("node_name", subject_user(certs["etcd/server"].subject)[0], "etcd/server.crt: subject CN")
    kubelet = by_file.get("kubelet.conf")
    if kubelet is not None and kubelet.certificate is not None:
        user, _ = subject_user(kubelet.certificate.subject)
        if user.startswith(NODE_PREFIX):
            inference.put("node_name", user.removeprefix(NODE_PREFIX), "kubelet.conf: client certificate CN")


def _cluster_name(inference: Inference, kubeconfigs: Sequence[SourceKubeconfig]) -> None:
    for kubeconfig in kubeconfigs:
        inference.put("name", kubeconfig.cluster_name, f"{kubeconfig.file_name}: cluster")


def _advertise_address(inference: Inference, certs: Mapping[str, x509.Certificate], by_file: Mapping[str, Any]) -> None:
    for name in LOCAL_KUBECONFIGS:
        if name in by_file:
            host = _host_port(by_file[name].server)[0]
            if _is_ip(host):
                inference.put("advertise_address", host, f"{name}: server")
    if "etcd/server" in certs:
        ips = SubjectAltNames.from_certificate_like(certs["etcd/server"].extensions).ips
        if ips:
            inference.put("advertise_address", str(ips[0]), "etcd/server.crt: first IP SAN")
    if "apiserver" in certs:
        ips = SubjectAltNames.from_certificate_like(certs["apiserver"].extensions).ips
        if len(ips) > 1:
            inference.put("advertise_address", str(ips[1]), "apiserver.crt: second IP SAN")


def _endpoint(inference: Inference, by_file: Mapping[str, SourceKubeconfig]) -> None:
    admin = next((by_file[n] for n in ADMIN_KUBECONFIGS if n in by_file), None)
    if admin is None:
        if "control_plane_endpoint" not in inference.values:
            inference.notes.append(
                "cluster.server: no admin.conf to read the API server's URL from, so `authsvc issue` would write "
                "the default: set cluster.server (and cluster.control_plane_endpoint) in authsvc.yaml, or import "
                "with --kubeconfig-dir or --cluster-config"
            )
        return
    source = f"{admin.file_name}: server"
    inference.put("server", admin.server, source)
    host, port = _host_port(admin.server)
    if host != inference.value("advertise_address"):  # else: kubeadm without --control-plane-endpoint
        inference.put("control_plane_endpoint", f"[{host}]:{port}" if ":" in host else f"{host}:{port}", source)


def _from_apiserver(inference: Inference, cert: x509.Certificate) -> None:
    sans = SubjectAltNames.from_certificate_like(cert.extensions)
    domains = [d.removeprefix(SERVICE_DNS_PREFIX) for d in sans.dns if d.startswith(SERVICE_DNS_PREFIX)]
    if domains:
        inference.put("dns_domain", domains[0], f"apiserver.crt: DNS SAN {SERVICE_DNS_PREFIX}{domains[0]}")
    service_ip = sans.ips[0] if sans.ips else None
    unknown_cidr = service_ip is not None and service_ip != first_service_ip(DEFAULT_SERVICE_CIDR)
    if "service_cidr" not in inference.values and unknown_cidr:
        inference.notes.append(
            f"cluster.service_cidr: apiserver.crt's first service IP is {service_ip}, not in kubeadm's default "
            f"{DEFAULT_SERVICE_CIDR}, and a certificate does not say the network's size: set cluster.service_cidr "
            "in authsvc.yaml (kubeadm's networking.serviceSubnet), or import with --cluster-config"
        )
    if "apiserver_cert_extra_sans" not in inference.values:
        extras = _extra_sans(inference, sans, service_ip)
        inference.put("apiserver_cert_extra_sans", extras, "apiserver.crt: SANs beyond kubeadm's defaults")


def _extra_sans(
    inference: Inference, sans: SubjectAltNames, service_ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
) -> tuple[str, ...]:
    """The API server's SANs that kubeadm's defaults for the inferred values do not explain."""
    try:
        params = ClusterParams(
            node_name=inference.value("node_name", "control-plane"),
            advertise_address=inference.value("advertise_address", "127.0.0.1"),
            control_plane_endpoint=inference.value("control_plane_endpoint"),
            service_cidr=inference.value("service_cidr", DEFAULT_SERVICE_CIDR),
            dns_domain=inference.value("dns_domain", "cluster.local"),
        )
    except ValueError:
        return ()  # a value kubeadm would refuse: reported when the settings are built
    defaults = apiserver_alt_names(params)
    dns = [d for d in sans.dns if d not in defaults.dns]
    ips = [str(ip) for ip in sans.ips if ip not in defaults.ips and ip != service_ip]
    return tuple(dns + ips)


def _encryption_algorithm(inference: Inference, ca: x509.Certificate) -> None:
    key_type = key_type_of(ca.public_key())  # type: ignore[arg-type]
    algorithm = next((name for name, kind in ENCRYPTION_ALGORITHMS.items() if kind is key_type), None)
    if algorithm is not None:
        inference.put("encryption_algorithm", algorithm, f"ca.crt: a {key_type.value} key")


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
