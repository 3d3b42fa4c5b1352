"""`cluster:` section: what kubeconfigs point at, what kubeadm's tree is for, how to reach the API server.

The fields are kubeadm's InitConfiguration/ClusterConfiguration values (`authsvc init` takes
them as kubeadm's flags and stores them here on the first run; `authsvc pki import` infers them
from an adopted cluster). Each is checked the way kubeadm checks it, so a bad value in
authsvc.yaml is reported with its dotted path. The certificates they shape are compared with
them (authsvc/drift/): `pki check` reports a difference, `certs renew` and `rotate` reissue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from authsvc.settings.fields import Duration, Section
from pki.kubeadm.certlist import (
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


def _min_validity(value: dt.timedelta) -> dt.timedelta:
    if value < dt.timedelta(hours=1):
        raise ValueError("certificate_validity_period must be at least 1h")
    return value


def _checked(check: Callable[[Any], object]) -> Callable[[Any], Any]:
    """A check that raises ValueError, as a validator that keeps the value."""

    def validate(value: Any) -> Any:
        check(value)
        return value

    return validate


# field -> the check kubeadm makes on that value (each raises ValueError naming it); the value
# returned is the one stored (node names and DNS names lower-cased, IPs in canonical form).
_KUBEADM_CHECKS: dict[str, Callable[[Any], Any]] = {
    "name": lambda v: check_name(v, what="cluster name"),
    "node_name": check_node_name,
    "advertise_address": lambda v: str(parse_advertise_address(v)),
    "control_plane_endpoint": lambda v: _checked(split_host_port)(v) if v else None,
    "apiserver_cert_extra_sans": _checked(classify_sans),
    "service_cidr": _checked(first_service_ip),
    "dns_domain": check_dns_name,
    "encryption_algorithm": _checked(key_type_for),
    "certificate_validity_period": _min_validity,
}


class ClusterAPISettings(Section):
    """How authsvc talks to the API server (bootstrap objects, bootstrap-token Secrets, grants,
    service-account look-ups). Without a connection those commands work on authsvc's own state
    only; the ones that need the cluster say so."""

    # A kubeconfig whose user may write what authsvc manages (relative to the home), e.g.
    # super-admin.conf for `authsvc cluster bootstrap`. `--kubeconfig` overrides it; unset, the
    # KUBECONFIG environment variable, then the pod's service account (in_cluster) are used.
    kubeconfig: str | None = None
    # The kubeconfig context to use. [default: its current-context]
    context: str | None = None
    # Running in a pod with no kubeconfig: use the pod's service account (in-cluster config).
    in_cluster: bool = True
    # How long one request to the API server may take.
    request_timeout: Duration = Field(dt.timedelta(seconds=10), gt=dt.timedelta(0))


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
    # How authsvc reaches the API server: `cluster bootstrap`, bootstrap-token Secrets, grants
    # (`issue --clusterrole`, `access grant`), service-account UIDs for `token create`.
    api: ClusterAPISettings = ClusterAPISettings()

    @field_validator("apiserver_cert_extra_sans", mode="before")
    @classmethod
    def _split_sans(cls, value: Any) -> Any:
        # kubeadm's flag takes a comma-separated list; the file may use one too.
        values = [value] if isinstance(value, str) else list(value or ())
        return tuple(s.strip() for v in values for s in str(v).split(",") if s.strip())

    @field_validator(*_KUBEADM_CHECKS)
    @classmethod
    def _check_like_kubeadm(cls, value: Any, info: ValidationInfo) -> Any:
        return _KUBEADM_CHECKS[str(info.field_name)](value)

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
