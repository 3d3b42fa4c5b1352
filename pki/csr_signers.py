"""Kubernetes' CertificateSigningRequest signers as data, and the review of a request for one.

A `certificates.k8s.io/v1` CSR names its signer (`spec.signerName`) and the key usages it wants
(`spec.usages`); the API server adds who asked (`spec.username`, `spec.groups`). Kubernetes
documents, per built-in signer, the subjects, extensions and usages it may sign
(https://kubernetes.io/docs/reference/access-authn-authz/certificate-signing-requests/#kubernetes-signers,
and `ValidateKubeletClientCSR` / `ValidateKubeletServingCSR` in pkg/apis/certificates/helpers.go):

- `kubernetes.io/kube-apiserver-client`: any subject; usages must include "client auth" and go
  no further than "digital signature", "key encipherment", "client auth";
- `kubernetes.io/kube-apiserver-client-kubelet`: O exactly `system:nodes`, CN `system:node:*`,
  no subjectAltName; usages exactly {"digital signature", "client auth"} (+ "key encipherment");
- `kubernetes.io/kubelet-serving`: the same subject, at least one DNS or IP SAN and no email or
  URI SAN; usages exactly {"digital signature", "server auth"} (+ "key encipherment").

`review` applies those rules and authsvc's signing policy in turn, without trusting whoever
approved the request: each step that refuses raises `CsrRefused` with a machine-friendly
`reason` (TitleCase, as Kubernetes' conditions use) and a message naming the offending value.
Pure: no kubernetes client, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypeVar

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from pki.csr import (
    csr_public_key,
    csr_sans,
    parse_csr,
    refuse_ca_request,
    refuse_unrequestable_extensions,
    verify_csr_signature,
)
from pki.errors import PolicyError
from pki.names import SubjectAltNames, subject_user
from pki.policy import (
    SigningPolicy,
    SigningRequest,
    check_groups,
    check_key,
    check_node_subject,
    check_sans,
    check_subject_shape,
    check_user,
    node_identity_policy,
)
from pki.profiles import CLIENT, KUBELET_CLIENT, PEER, SERVER, Profile

KUBE_APISERVER_CLIENT = "kubernetes.io/kube-apiserver-client"
KUBE_APISERVER_CLIENT_KUBELET = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"

# certificates.k8s.io/v1 KeyUsage values this module reasons about.
DIGITAL_SIGNATURE = "digital signature"
KEY_ENCIPHERMENT = "key encipherment"
CLIENT_AUTH = "client auth"
SERVER_AUTH = "server auth"
_EKU_USAGES = {ExtendedKeyUsageOID.CLIENT_AUTH: CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH: SERVER_AUTH}

# Kubernetes' own signer never goes below this (2 x its 5-minute backdating); expirationSeconds
# under it is raised to it, as kube-controller-manager does.
MIN_LIFETIME = dt.timedelta(minutes=10)


class Reason(StrEnum):
    """Why a request is refused: the `reason` of the Failed condition the signer adds."""

    MALFORMED = "MalformedRequest"
    BAD_SIGNATURE = "BadSignature"
    CA_REQUESTED = "CARequested"
    EXTENSION = "ExtensionNotAllowed"
    WEAK_KEY = "WeakKey"
    USAGES = "UsagesNotAllowed"
    IDENTITY = "IdentityNotAllowed"
    REQUESTER = "RequesterMismatch"
    SANS = "SubjectAltNameNotAllowed"


class CsrRefused(PolicyError):
    """The request must not be signed; `reason` is a Reason, the message names the value."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SanRule(StrEnum):
    POLICY = "policy"  # SANs as the signing policy allows them (none required)
    FORBIDDEN = "forbidden"  # kube-apiserver-client-kubelet: no subjectAltName at all
    DNS_OR_IP = "dns-or-ip"  # kubelet-serving: at least one DNS or IP SAN, never email or URI


@dataclass(frozen=True, slots=True)
class SignerRules:
    """What one signerName may sign, and with which profile."""

    signer_name: str
    profile: Profile
    # spec.usages must include every required one and nothing outside allowed.
    required_usages: frozenset[str]
    allowed_usages: frozenset[str]
    # O exactly system:nodes and CN system:node:<node name>; the policy's privileged-name rule
    # is lifted for that one identity, and for no other.
    node_identity: bool = False
    sans: SanRule = SanRule.POLICY
    # kubelet-serving: a node asks for its own serving certificate, never another node's.
    requester_is_subject: bool = False
    # SAN allow-lists that replace the policy's for this signer (globs, CIDRs); None: the policy's.
    allowed_dns_sans: tuple[str, ...] | None = None
    allowed_ip_sans: tuple[str, ...] | None = None
    # DNS names never signed by this signer, whatever the allow-lists say (the API server's own).
    reserved_dns_sans: tuple[str, ...] = ()

    def with_sans(
        self,
        dns: tuple[str, ...] | None,
        ips: tuple[str, ...] | None,
        reserved: tuple[str, ...] = (),
    ) -> SignerRules:
        return replace(self, allowed_dns_sans=dns, allowed_ip_sans=ips, reserved_dns_sans=reserved)


def _usages(*values: str) -> frozenset[str]:
    return frozenset(values)


KUBE_APISERVER_CLIENT_RULES = SignerRules(
    KUBE_APISERVER_CLIENT,
    CLIENT,
    required_usages=_usages(CLIENT_AUTH),
    allowed_usages=_usages(DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, CLIENT_AUTH),
)
KUBELET_CLIENT_RULES = SignerRules(
    KUBE_APISERVER_CLIENT_KUBELET,
    KUBELET_CLIENT,
    required_usages=_usages(DIGITAL_SIGNATURE, CLIENT_AUTH),
    allowed_usages=_usages(DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, CLIENT_AUTH),
    node_identity=True,
    sans=SanRule.FORBIDDEN,
)
KUBELET_SERVING_RULES = SignerRules(
    KUBELET_SERVING,
    SERVER,
    required_usages=_usages(DIGITAL_SIGNATURE, SERVER_AUTH),
    allowed_usages=_usages(DIGITAL_SIGNATURE, KEY_ENCIPHERMENT, SERVER_AUTH),
    node_identity=True,
    sans=SanRule.DNS_OR_IP,
    requester_is_subject=True,
)
BUILT_IN_RULES = {r.signer_name: r for r in (KUBE_APISERVER_CLIENT_RULES, KUBELET_CLIENT_RULES, KUBELET_SERVING_RULES)}
CUSTOM_PROFILES = {p.name: p for p in (CLIENT, SERVER, PEER)}
T = TypeVar("T")


def custom_rules(signer_name: str, profile: Profile) -> SignerRules:
    """An operator's signerName (`example.com/internal-serving`): the profile's extended key
    usages are required, "digital signature" and "key encipherment" allowed besides."""
    ekus = frozenset(_EKU_USAGES[oid] for oid in profile.ext_key_usages)
    sans = SanRule.DNS_OR_IP if profile.needs_sans else SanRule.POLICY
    allowed = ekus | {DIGITAL_SIGNATURE, KEY_ENCIPHERMENT}
    return SignerRules(signer_name, profile, required_usages=ekus, allowed_usages=allowed, sans=sans)


@dataclass(frozen=True, slots=True)
class KubernetesCSR:
    """What the signer reads of a CertificateSigningRequest (spec.request as PEM bytes)."""

    request: bytes
    signer_name: str
    usages: tuple[str, ...]
    username: str
    groups: tuple[str, ...] = ()
    # spec.expirationSeconds (API servers >= 1.22; older ones drop the field: None).
    expiration_seconds: int | None = None


def lifetime(expiration_seconds: int | None, default: dt.timedelta, policy: SigningPolicy) -> dt.timedelta:
    """The certificate's lifetime: `default` (the signer's), or the request's expirationSeconds
    when shorter; never above the policy's max_ttl, never below MIN_LIFETIME."""
    ceiling = min(default, policy.max_ttl)
    if expiration_seconds is None:
        return ceiling
    return max(MIN_LIFETIME, min(dt.timedelta(seconds=expiration_seconds), ceiling))


def review(rules: SignerRules, request: KubernetesCSR, policy: SigningPolicy, ttl: dt.timedelta) -> SigningRequest:
    """The SigningRequest to sign, or CsrRefused for the first rule the request breaks.

    `ttl`: the lifetime (see `lifetime`); it is not a reason to refuse.
    """
    if request.signer_name != rules.signer_name:
        raise CsrRefused(Reason.MALFORMED, f"signerName {request.signer_name} is not {rules.signer_name}")
    csr = _step(Reason.MALFORMED, lambda: parse_csr(request.request))
    _step(Reason.BAD_SIGNATURE, lambda: verify_csr_signature(csr))
    _step(Reason.CA_REQUESTED, lambda: refuse_ca_request(csr))
    _step(Reason.EXTENSION, lambda: refuse_unrequestable_extensions(csr, rules.profile))
    key = _step(Reason.WEAK_KEY, lambda: csr_public_key(csr))
    _step(Reason.WEAK_KEY, lambda: check_key(policy, key))
    _step(Reason.USAGES, lambda: check_usages(rules, request.usages))
    _step(Reason.IDENTITY, lambda: check_identity(rules, csr.subject, policy))
    _step(Reason.REQUESTER, lambda: check_requester(rules, csr.subject, request.username))
    sans = _step(Reason.SANS, lambda: csr_sans(csr))
    _step(Reason.SANS, lambda: check_signer_sans(rules, sans, policy))
    return SigningRequest(csr.subject, key, rules.profile, ttl, sans)


def _step(reason: Reason, check: Callable[[], T]) -> T:
    try:
        return check()
    except CsrRefused:
        raise
    except (PolicyError, ValueError) as e:
        raise CsrRefused(reason, str(e)) from None


def check_usages(rules: SignerRules, usages: Sequence[str]) -> None:
    requested = frozenset(usages)
    if len(requested) != len(usages):
        raise PolicyError(f"spec.usages lists a usage twice: {', '.join(usages)}")
    beyond = sorted(requested - rules.allowed_usages)
    if beyond:
        allowed = ", ".join(sorted(rules.allowed_usages))
        raise PolicyError(f"{rules.signer_name} does not sign for the usage {', '.join(beyond)} (allowed: {allowed})")
    missing = sorted(rules.required_usages - requested)
    if missing:
        raise PolicyError(f"{rules.signer_name} requires the usages {', '.join(sorted(rules.required_usages))}")


def check_identity(rules: SignerRules, subject: x509.Name, policy: SigningPolicy) -> None:
    """The subject's user (CN) and groups (O) under the policy; a node's identity for node signers."""
    check_subject_shape(subject)
    if rules.node_identity:
        check_node_subject(subject)
        policy = node_identity_policy(policy)
    user, groups = subject_user(subject)
    check_user(policy, user)
    check_groups(policy, groups)


def check_requester(rules: SignerRules, subject: x509.Name, username: str) -> None:
    user, _ = subject_user(subject)
    if rules.requester_is_subject and user != username:
        raise PolicyError(f"{user} may be requested by {user} only, and {username or 'nobody'} asked")


def check_signer_sans(rules: SignerRules, sans: SubjectAltNames, policy: SigningPolicy) -> None:
    if rules.sans is SanRule.FORBIDDEN and sans:
        raise PolicyError(f"{rules.signer_name} signs no subjectAltName (asked: {', '.join(sans.as_strings())})")
    if rules.sans is SanRule.DNS_OR_IP:
        if sans.uris or sans.emails:
            raise PolicyError(f"{rules.signer_name} signs DNS and IP subjectAltNames only")
        if not (sans.dns or sans.ips):
            raise PolicyError(f"{rules.signer_name} needs at least one DNS or IP subjectAltName")
    for name in sans.dns:
        if name.lower() in rules.reserved_dns_sans:
            raise PolicyError(f"DNS SAN {name!r} is the API server's name: {rules.signer_name} never signs it")
    if rules.allowed_dns_sans is not None or rules.allowed_ip_sans is not None:
        policy = replace(
            policy,
            allowed_dns_sans=policy.allowed_dns_sans if rules.allowed_dns_sans is None else rules.allowed_dns_sans,
            allowed_ip_sans=policy.allowed_ip_sans if rules.allowed_ip_sans is None else rules.allowed_ip_sans,
        )
    check_sans(policy, sans)
