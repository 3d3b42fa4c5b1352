"""The signerNames `authsvc csr-signer` serves, from the `csr_signer:` settings.

Each is Kubernetes' rules for that signer (pki/csr_signers.py), the CertificateIssuer of the CA
it signs with (so the policy and the inventory are the ones every other certificate goes
through), the lifetime it gives, and its approver's settings when the approver is on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsvc.cluster.csr.approver import ClientApproval, ServingApproval
from authsvc.settings import Settings
from pki.csr_signers import (
    CUSTOM_PROFILES,
    KUBE_APISERVER_CLIENT_RULES,
    KUBELET_CLIENT_RULES,
    KUBELET_SERVING_RULES,
    SignerRules,
    custom_rules,
)

if TYPE_CHECKING:
    from pki.issuance import CertificateIssuer


@dataclass(frozen=True, slots=True)
class ConfiguredSigner:
    rules: SignerRules
    issuer: CertificateIssuer
    ca_name: str
    ttl: dt.timedelta
    # Set when the approver is on for this signer.
    serving_approval: ServingApproval | None = None
    client_approval: ClientApproval | None = None

    @property
    def name(self) -> str:
        return self.rules.signer_name

    @property
    def approves(self) -> bool:
        return self.serving_approval is not None or self.client_approval is not None


def api_server_names(settings: Settings) -> tuple[str, ...]:
    """DNS names only the API server may have a certificate for (kubeadm's apiserver SANs that are
    not a node's): a kubelet-serving certificate carrying one could impersonate the API server to
    every client that trusts the cluster CA."""
    cluster = settings.cluster
    names = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        f"kubernetes.default.svc.{cluster.dns_domain}",
    ]
    endpoint = cluster.control_plane_endpoint
    if endpoint:
        host = endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
        if host and not host.replace(".", "").isdigit() and ":" not in host:
            names.append(host.lower())
    return tuple(names)


def configured_signers(
    settings: Settings, issuer_for: Callable[[str], CertificateIssuer]
) -> dict[str, ConfiguredSigner]:
    """signerName -> ConfiguredSigner for every enabled signer; `issuer_for(ca_name)` loads a CA once."""
    issuers: dict[str, CertificateIssuer] = {}

    def issuer(ca_name: str) -> CertificateIssuer:
        if ca_name not in issuers:
            issuers[ca_name] = issuer_for(ca_name)
        return issuers[ca_name]

    section, pki = settings.csr_signer, settings.pki
    node_ttl = settings.cluster.certificate_validity_period
    found: list[ConfiguredSigner] = []
    people = section.kube_apiserver_client
    if people.enabled:
        found.append(
            ConfiguredSigner(KUBE_APISERVER_CLIENT_RULES, issuer(people.ca), people.ca, people.ttl or pki.client_ttl)
        )
    kubelet = section.kube_apiserver_client_kubelet
    if kubelet.enabled:
        approval = (
            ClientApproval(kubelet.approve_bootstrap_groups, kubelet.approve_renewals) if kubelet.approve else None
        )
        found.append(
            ConfiguredSigner(
                KUBELET_CLIENT_RULES, issuer(kubelet.ca), kubelet.ca, kubelet.ttl or node_ttl, client_approval=approval
            )
        )
    serving = section.kubelet_serving
    if serving.enabled:
        rules = KUBELET_SERVING_RULES.with_sans(
            serving.allowed_dns_sans, serving.allowed_ip_sans, api_server_names(settings)
        )
        serving_approval = (
            ServingApproval(serving.approve_dns_sans, serving.approve_ip_sans) if serving.approve else None
        )
        found.append(
            ConfiguredSigner(
                rules, issuer(serving.ca), serving.ca, serving.ttl or node_ttl, serving_approval=serving_approval
            )
        )
    for custom in section.custom:
        profile = CUSTOM_PROFILES[custom.profile]
        default = pki.client_ttl if custom.profile == "client" else pki.server_ttl
        found.append(
            ConfiguredSigner(custom_rules(custom.name, profile), issuer(custom.ca), custom.ca, custom.ttl or default)
        )
    return {signer.name: signer for signer in found}
