"""`cluster:` section: what kubeconfigs point at and what kubeadm's tree is built for.

The fields are kubeadm's InitConfiguration/ClusterConfiguration values (`authsvc init` takes
them as kubeadm's flags and stores them here on the first run). Each is checked the way
kubeadm checks it, so a bad value in authsvc.yaml is reported with its dotted path.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import field_validator

from authsvc.settings.types import Duration, Section
from pki.kubeadm import (
    CERTIFICATE_VALIDITY,
    DEFAULT_DNS_DOMAIN,
    DEFAULT_ENCRYPTION_ALGORITHM,
    DEFAULT_SERVICE_CIDR,
    ClusterParams,
    classify_sans,
    first_service_ip,
    key_type_for,
    parse_advertise_address,
    split_host_port,
)
from pki.names import check_dns_name, check_name, check_node_name


class ClusterSettings(Section):
    name: str = "kubernetes"
    # URL of the API server written into kubeconfigs (`authsvc init` derives it from
    # --control-plane-endpoint / --apiserver-advertise-address the way kubeadm does).
    server: str = "https://127.0.0.1:6443"
    control_plane_endpoint: str | None = None
    advertise_address: str = "127.0.0.1"
    apiserver_cert_extra_sans: tuple[str, ...] = ()
    service_cidr: str = DEFAULT_SERVICE_CIDR
    dns_domain: str = DEFAULT_DNS_DOMAIN
    node_name: str = "control-plane"
    # kubeadm's ClusterConfiguration.encryptionAlgorithm: RSA-2048 (default), RSA-3072, RSA-4096,
    # ECDSA-P256, ECDSA-P384. Applies to the kubeadm CAs, leaves and kubeconfig keys.
    encryption_algorithm: str = DEFAULT_ENCRYPTION_ALGORITHM
    # ClusterConfiguration.certificateValidityPeriod: lifetime of leaves and kubeconfig certificates.
    certificate_validity_period: Duration = CERTIFICATE_VALIDITY

    @field_validator("name")
    @classmethod
    def _cluster_name(cls, value: str) -> str:
        return check_name(value, what="cluster name")

    @field_validator("node_name")
    @classmethod
    def _node_name(cls, value: str) -> str:
        return check_node_name(value)

    @field_validator("advertise_address")
    @classmethod
    def _advertise_address(cls, value: str) -> str:
        return str(parse_advertise_address(value))

    @field_validator("control_plane_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value:
            split_host_port(value)
        return value or None

    @field_validator("apiserver_cert_extra_sans", mode="before")
    @classmethod
    def _extra_sans(cls, value: Any) -> Any:
        values = [value] if isinstance(value, str) else list(value or ())
        # kubeadm's flag takes a comma-separated list; accept it in the file too.
        items = tuple(s.strip() for v in values for s in str(v).split(",") if s.strip())
        classify_sans(items)
        return items

    @field_validator("service_cidr")
    @classmethod
    def _service_cidr(cls, value: str) -> str:
        first_service_ip(value)
        return value

    @field_validator("dns_domain")
    @classmethod
    def _dns_domain(cls, value: str) -> str:
        return check_dns_name(value)

    @field_validator("encryption_algorithm")
    @classmethod
    def _encryption_algorithm(cls, value: str) -> str:
        key_type_for(value)
        return value

    @field_validator("certificate_validity_period")
    @classmethod
    def _validity(cls, value: dt.timedelta) -> dt.timedelta:
        if value < dt.timedelta(hours=1):
            raise ValueError("certificate_validity_period must be at least 1h")
        return value

    def params(self) -> ClusterParams:
        return ClusterParams(
            cluster_name=self.name,
            node_name=self.node_name,
            advertise_address=self.advertise_address,
            control_plane_endpoint=self.control_plane_endpoint,
            service_cidr=self.service_cidr,
            dns_domain=self.dns_domain,
            apiserver_extra_sans=self.apiserver_cert_extra_sans,
        )
