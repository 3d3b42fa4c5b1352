"""`cluster:` section: what kubeconfigs point at and what kubeadm's tree is built for."""

from __future__ import annotations

from authsvc.settings.types import Section


class ClusterSettings(Section):
    name: str = "kubernetes"
    # URL of the API server written into kubeconfigs.
    server: str = "https://127.0.0.1:6443"
    control_plane_endpoint: str | None = None
    advertise_address: str = "127.0.0.1"
    apiserver_cert_extra_sans: tuple[str, ...] = ()
    service_cidr: str = "10.96.0.0/12"
    dns_domain: str = "cluster.local"
    node_name: str = "control-plane"
