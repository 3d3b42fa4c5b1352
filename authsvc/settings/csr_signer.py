"""`csr_signer:` section: which CertificateSigningRequests `authsvc csr-signer` signs (and approves),
with which CA, and the Lease its replicas elect a leader on."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from authsvc.settings.fields import Duration, Section

# A signerName is a qualified name: <DNS subdomain>/<path> (k8s.io/api/certificates/v1 validation).
_SIGNER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+/[A-Za-z0-9][-A-Za-z0-9_.]*")


def _cidrs(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP network (CIDR)") from None
    return values


class SignerSettings(Section):
    """One of Kubernetes' signerNames: whether authsvc signs it, and how."""

    enabled: bool = True
    # The CA of the home that signs (ca: the cluster CA, whose certificate kube-apiserver's
    # --client-ca-file trusts and kubelets' bootstrap kubeconfigs carry).
    ca: Literal["ca", "front-proxy-ca", "etcd/ca"] = "ca"
    # Lifetime of what it signs; a shorter spec.expirationSeconds (API servers >= 1.22) is
    # honoured. Capped by pki.policy.max_ttl. [default: pki.client_ttl for people's client
    # certificates, cluster.certificate_validity_period for kubelets']
    ttl: Duration | None = None


class KubeletClientSettings(SignerSettings):
    """kubernetes.io/kube-apiserver-client-kubelet: kubelets' client certificates."""

    # Approve (and deny) these requests: off, humans decide (kubectl certificate approve).
    approve: bool = False
    # Approved when a bootstrap token (system:bootstrap:<id>) in one of these groups asks:
    # a node joining (kubeadm's default token group).
    approve_bootstrap_groups: tuple[str, ...] = ("system:bootstrappers:kubeadm:default-node-token",)
    # Approved when a node asks for its own identity again (certificate rotation).
    approve_renewals: bool = True


class KubeletServingSettings(SignerSettings):
    """kubernetes.io/kubelet-serving: the certificates kubelets serve their API with."""

    # SANs this signer signs (globs for DNS names, CIDRs for IPs), replacing pki.policy's
    # allow-lists. [default: any node name and address; never a wildcard, never the API
    # server's names (kubernetes.default.svc, ...)]
    allowed_dns_sans: tuple[str, ...] = ("*",)
    allowed_ip_sans: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    # Approve (and deny) these requests: off, humans decide. On: approved when a node
    # (system:node:<name>) asks for its own name, with every DNS and IP SAN among its Node's
    # status.addresses (or in the lists below); denied with the reason otherwise.
    approve: bool = False
    # SANs approved though not among the Node's addresses (globs, CIDRs).
    approve_dns_sans: tuple[str, ...] = ()
    approve_ip_sans: tuple[str, ...] = ()

    @field_validator("allowed_ip_sans", "approve_ip_sans")
    @classmethod
    def _check_cidrs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _cidrs(value)


class CustomSignerSettings(Section):
    """A signerName of your own (`example.com/internal-serving`), signed with a profile."""

    name: str
    profile: Literal["client", "server", "peer"]
    ca: Literal["ca", "front-proxy-ca", "etcd/ca"] = "ca"
    # [default: pki.client_ttl for client, pki.server_ttl for server and peer]
    ttl: Duration | None = None

    @field_validator("name")
    @classmethod
    def _qualified(cls, value: str) -> str:
        if not _SIGNER_NAME.fullmatch(value) or len(value) > 571:
            raise ValueError(f"{value!r} is not a signerName (<domain>/<path>, e.g. example.com/my-signer)")
        if value.startswith("kubernetes.io/") or ".kubernetes.io/" in value:
            raise ValueError(f"{value!r}: kubernetes.io signer names are Kubernetes' own (set them above)")
        return value


class LeaseSettings(Section):
    """The coordination.k8s.io/v1 Lease replicas elect a leader on: only the leader signs."""

    name: str = "authsvc-csr-signer"
    namespace: str = "kube-system"
    # How long a leader's lease lasts without renewal: another replica takes over once it has
    # seen no renewal for this long (client-go's LeaseDuration).
    duration: Duration = Field(dt.timedelta(seconds=15), ge=dt.timedelta(seconds=1))
    # The leader stops signing when it could not renew for this long (less than duration, so
    # that it stops before another replica may start).
    renew_deadline: Duration = Field(dt.timedelta(seconds=10), gt=dt.timedelta(0))
    # How often the leader renews and the others try to acquire.
    retry_period: Duration = Field(dt.timedelta(seconds=2), gt=dt.timedelta(0))

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.retry_period < self.renew_deadline < self.duration:
            raise ValueError("need retry_period < renew_deadline < duration")
        return self


class CSRSignerSettings(Section):
    """What `authsvc csr-signer` signs; see docs/csr-signer.md."""

    # kubernetes.io/kube-apiserver-client: people's and programs' client certificates.
    kube_apiserver_client: SignerSettings = SignerSettings()
    kube_apiserver_client_kubelet: KubeletClientSettings = KubeletClientSettings()
    kubelet_serving: KubeletServingSettings = KubeletServingSettings()
    # Signer names of your own: [{name: example.com/x, profile: server, ca: ca, ttl: 30d}].
    custom: tuple[CustomSignerSettings, ...] = ()
    lease: LeaseSettings = LeaseSettings()
    # This replica's name in the Lease. [default: <hostname>_<random>, as client-go's]
    identity: str | None = None
    # A watch is re-established (from its resourceVersion) at most this often.
    watch_timeout: Duration = Field(dt.timedelta(minutes=5), ge=dt.timedelta(seconds=1))
    # HOST:PORT for plain-HTTP Prometheus metrics (/metrics) of the signer; null: none.
    metrics_bind: str | None = None

    @model_validator(mode="after")
    def _distinct_custom_names(self) -> Self:
        names = [c.name for c in self.custom]
        if len(names) != len(set(names)):
            raise ValueError("custom signer names must be distinct")
        return self
