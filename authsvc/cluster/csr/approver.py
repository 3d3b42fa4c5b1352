"""The approver: which kubelet requests authsvc approves or denies by itself (off by default).

Pure functions of the request and (for serving certificates) the Node; the handler asks them
only for a pending request whose signer's approver is on, and only after the signer's own
review (pki/csr_signers.py) passed: a request the signer would refuse is denied with the
signer's reason, so approving never means more than the signer would sign.

- kubelet-serving: the requester is a node (`system:node:<name>`) asking for its own name (CN,
  O `system:nodes`), and every DNS and IP SAN is one of its Node's `status.addresses`
  (Hostname, InternalDNS, ExternalDNS; InternalIP, ExternalIP) or in the operator's
  allow-lists: approved. A node asking for anything else: denied, with the SAN named. (A
  request for a node made by anyone else is denied by the signer's own rule: a kubelet asks
  for its serving certificate itself.) (kubelet-csr-approver checks a
  DNS name against the node's name and resolves it; authsvc compares with what the Node object
  says, which the node itself wrote, and which the API server's own kubelet client trusts.)
- kube-apiserver-client-kubelet: a bootstrap token (`system:bootstrap:<id>`) in an allowed
  group asking for a node's first client certificate, or a node renewing its own: approved.
  A node asking for another node's identity: denied. Anyone else: left to humans (an admin
  may have created it on a node's behalf).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pki.names import NODE_PREFIX, NODES_GROUP, SubjectAltNames

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BOOTSTRAP_USER_PREFIX = "system:bootstrap:"
APPROVED_REASON = "AutoApproved"


class Verdict(StrEnum):
    APPROVE = "approved"
    DENY = "denied"


@dataclass(frozen=True, slots=True)
class ApproverDecision:
    verdict: Verdict
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class NodeAddresses:
    """A Node's status.addresses, split into names and IPs."""

    dns: frozenset[str]
    ips: frozenset[IPAddress]

    @classmethod
    def of(cls, node: Any) -> NodeAddresses:
        entries = ((node.status.addresses if node.status is not None else None) or []) if node is not None else []
        dns, ips = set(), set()
        for entry in entries:
            if entry.type in ("Hostname", "InternalDNS", "ExternalDNS"):
                dns.add(str(entry.address).lower())
            elif entry.type in ("InternalIP", "ExternalIP"):
                try:
                    ips.add(ipaddress.ip_address(entry.address))
                except ValueError:
                    continue
        return cls(frozenset(dns), frozenset(ips))


@dataclass(frozen=True, slots=True)
class ServingApproval:
    """csr_signer.kubelet_serving's approver settings."""

    extra_dns: tuple[str, ...] = ()
    extra_ips: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ClientApproval:
    """csr_signer.kube_apiserver_client_kubelet's approver settings."""

    bootstrap_groups: tuple[str, ...] = ()
    renewals: bool = True


def deny(reason: str, message: str) -> ApproverDecision:
    return ApproverDecision(Verdict.DENY, reason, message)


def node_of(username: str) -> str | None:
    """`n1` for `system:node:n1`; None for anyone who is not a node."""
    return username.removeprefix(NODE_PREFIX) if username.startswith(NODE_PREFIX) else None


def kubelet_serving(
    username: str, subject_user: str, sans: SubjectAltNames, node: NodeAddresses | None, settings: ServingApproval
) -> ApproverDecision | None:
    """The decision on a kubelet-serving request the signer's review accepted; None: humans decide."""
    name = node_of(username)
    if name is None:
        return None
    if subject_user != username:
        return deny("RequesterMismatch", f"{username} asked for a certificate of {subject_user}")
    if node is None:
        return deny("NodeNotFound", f"there is no Node {name} to compare the subjectAltNames with")
    for dns_name in sans.dns:
        if dns_name.lower() not in node.dns and not _glob(dns_name.lower(), settings.extra_dns):
            return deny("SANNotOnNode", f"DNS name {dns_name} is not one of Node {name}'s addresses")
    for ip in sans.ips:
        if ip not in node.ips and not _in_networks(ip, settings.extra_ips):
            return deny("SANNotOnNode", f"IP address {ip} is not one of Node {name}'s addresses")
    names = ", ".join(sans.as_strings())
    return ApproverDecision(
        Verdict.APPROVE, APPROVED_REASON, f"authsvc: node {name} asked for its own serving certificate ({names})"
    )


def kubelet_client(
    username: str, groups: Sequence[str], subject_user: str, settings: ClientApproval
) -> ApproverDecision | None:
    """The decision on a kube-apiserver-client-kubelet request the signer's review accepted."""
    if username.startswith(BOOTSTRAP_USER_PREFIX):
        allowed = [g for g in groups if g in settings.bootstrap_groups]
        if allowed:
            return ApproverDecision(
                Verdict.APPROVE,
                APPROVED_REASON,
                f"authsvc: bootstrap token {username} (group {allowed[0]}) asked for {subject_user}",
            )
        return None
    requester_node = node_of(username)
    if requester_node is None:
        return None
    if subject_user != username:
        return deny("RequesterMismatch", f"node {requester_node} may renew its own identity only, not {subject_user}")
    if settings.renewals and NODES_GROUP in groups:
        return ApproverDecision(
            Verdict.APPROVE, APPROVED_REASON, f"authsvc: node {requester_node} renewed its identity"
        )
    return None


def _glob(value: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _in_networks(ip: IPAddress, cidrs: tuple[str, ...]) -> bool:
    return any(ip in ipaddress.ip_network(c, strict=False) for c in cidrs)
