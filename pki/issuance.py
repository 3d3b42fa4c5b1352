"""Issuing certificates: CA + policy + inventory, wired together for one CA.

The builders stay pure; this module decides *whether* to sign (policy), signs, and
records the result. It writes no files: callers decide where PEM bytes go.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.ca import CertificateAuthority
from pki.clock import Clock
from pki.csr import csr_public_key, csr_sans, load_csr, refuse_ca_request
from pki.csr_signers import CsrRefused, KubernetesCSR, Reason, SignerRules, review
from pki.errors import PolicyError, StoreError
from pki.inventory import CertRecord, Inventory, SignedNames
from pki.keys import KeyType, PrivateKey, PublicKey, generate_private_key, private_key_to_pem
from pki.names import (
    NODE_PREFIX,
    NODES_GROUP,
    SubjectAltNames,
    check_node_name,
    subject_user,
    user_subject,
)
from pki.policy import (
    SigningPolicy,
    SigningRequest,
    SubjectGate,
    check_key,
    check_node_subject,
    evaluate_names,
    node_identity_policy,
)
from pki.profiles import CLIENT, KUBELET_CLIENT, Profile
from pki.store import certs_to_pem


@dataclass(frozen=True, slots=True)
class IssuedCert:
    """A signed certificate, its inventory record, its key (None when signed from a CSR) and the
    intermediates a peer needs to reach the root (empty when the CA is a root)."""

    certificate: x509.Certificate
    record: CertRecord
    key: PrivateKey | None = None
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def chain_pem(self) -> bytes:
        """The certificate followed by its intermediates: what a TLS client or server presents."""
        return certs_to_pem((self.certificate, *self.chain))

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        if self.key is None:
            raise StoreError("this certificate was signed from a CSR: its key stays with the requester")
        return private_key_to_pem(self.key, passphrase)


def kubelet_subject(node_name: str) -> x509.Name:
    """CN system:node:<node>, O system:nodes: the identity the Node authorizer expects."""
    return user_subject(f"{NODE_PREFIX}{check_node_name(node_name)}", (NODES_GROUP,))


class CertificateIssuer:
    """Signs for one CA under one policy and records every certificate it signs.

    With `inventory=None` nothing is recorded (notebooks, benchmarks, callers that batch
    records through `Inventory.add`); the returned `IssuedCert.record` is filled either way.
    `gate` is asked about the certificate's user (CN) before anything is signed (PolicyError
    refuses); `on_issued` hears of every certificate signed, after it is recorded (an audit trail).
    """

    def __init__(
        self,
        ca: CertificateAuthority,
        inventory: Inventory | None,
        policy: SigningPolicy,
        clock: Clock,
        *,
        ca_name: str = "ca",
        gate: SubjectGate | None = None,
        on_issued: Callable[[IssuedCert], None] | None = None,
    ) -> None:
        self.ca = ca
        self.inventory = inventory
        self.policy = policy
        self.clock = clock
        self.ca_name = ca_name
        self.gate = gate
        self.on_issued = on_issued

    def check(self, request: SigningRequest, *, trusted_operator: bool) -> None:
        """Raise PolicyError unless `request` may be signed."""
        self._check_names(
            request.profile, request.subject, request.sans, request.ttl, trusted_operator=trusted_operator
        )
        check_key(self.policy, request.public_key)

    def _check_names(
        self, profile: Profile, subject: x509.Name, sans: SubjectAltNames, ttl: dt.timedelta, *, trusted_operator: bool
    ) -> None:
        # An operator's own kubelet-client request is the one privileged shape allowed;
        # every other rule (TTL cap, SANs, name syntax) still applies to it.
        policy = self.policy
        if profile is KUBELET_CLIENT:
            if not trusted_operator:
                raise PolicyError("kubelet-client certificates are issued by the operator, not through CSRs")
            check_node_subject(subject)
            policy = node_identity_policy(policy)
        evaluate_names(policy, profile=profile, subject=subject, sans=sans, ttl=ttl)
        if self.gate is not None:
            self.gate(subject_user(subject)[0])

    def create(
        self,
        user: str,
        *,
        profile: Profile,
        groups: Sequence[str] = (),
        sans: SubjectAltNames | None = None,
        ttl: dt.timedelta | None = None,
        key_type: KeyType | str = KeyType.EC_P256,
        key: PrivateKey | None = None,
        requester: str = "",
        name: str | None = None,
    ) -> IssuedCert:
        """Generate a key (unless given) and sign a certificate for it, under the policy.

        Raises PolicyError (before any key is generated) when the policy refuses the request.
        """
        subject = self._subject(user, profile, tuple(groups))
        lifetime, alt_names = ttl or profile.default_ttl, sans or SubjectAltNames()
        self._check_names(profile, subject, alt_names, lifetime, trusted_operator=True)
        private_key = key or generate_private_key(key_type)
        public_key = private_key.public_key()
        check_key(self.policy, public_key)
        request = SigningRequest(subject, public_key, profile, lifetime, alt_names)
        return self._issue(request, key=private_key, requester=requester, name=name)

    def sign_csr(
        self,
        csr_data: bytes,
        *,
        profile: Profile,
        ttl: dt.timedelta | None = None,
        requester: str = "",
        name: str | None = None,
    ) -> IssuedCert:
        """Sign a PKCS#10 request: only its subject, key and SANs are taken from it.

        Raises PolicyError naming the reason (bad signature, CA:TRUE, weak key, privileged group,
        SAN outside the policy, TTL over the cap); nothing is recorded then.
        """
        csr = load_csr(csr_data)
        refuse_ca_request(csr)
        request = SigningRequest(csr.subject, csr_public_key(csr), profile, ttl or profile.default_ttl, csr_sans(csr))
        self.check(request, trusted_operator=False)
        return self._issue(request, key=None, requester=requester, name=name)

    def sign_for_identity(
        self,
        csr_data: bytes,
        user: str,
        groups: Sequence[str],
        *,
        ttl: dt.timedelta,
        requester: str = "",
    ) -> IssuedCert:
        """A client certificate for `user` in `groups` (an identity a login established) on the
        key of a CSR the user made: only the CSR's key is used (its signature proves that the
        requester holds it); its subject and SANs are ignored. Under the policy, as `create`."""
        csr = load_csr(csr_data)
        refuse_ca_request(csr)
        subject = self._subject(user, CLIENT, tuple(groups))
        request = SigningRequest(subject, csr_public_key(csr), CLIENT, ttl, SubjectAltNames())
        self.check(request, trusted_operator=False)
        return self._issue(request, key=None, requester=requester, name=None)

    def sign_kubernetes_csr(
        self, request: KubernetesCSR, rules: SignerRules, *, ttl: dt.timedelta, name: str | None = None
    ) -> IssuedCert:
        """Sign a certificates.k8s.io request for the signer `rules` describe, under this issuer's
        policy; the requester recorded is the CSR's spec.username.

        Raises CsrRefused (a PolicyError with a `reason`) naming the first rule the request breaks;
        nothing is recorded then.
        """
        checked = review(rules, request, self.policy, ttl)
        if self.gate is not None:
            user = subject_user(checked.subject)[0]
            try:
                self.gate(user)
            except PolicyError as e:
                raise CsrRefused(Reason.IDENTITY, f"{user}: {e}") from None
        return self._issue(checked, key=None, requester=request.username, name=name)

    def _subject(self, user: str, profile: Profile, groups: tuple[str, ...]) -> x509.Name:
        if profile is KUBELET_CLIENT and groups:
            raise PolicyError(f"a kubelet-client certificate carries the group {NODES_GROUP} only: drop the groups")
        try:
            return kubelet_subject(user) if profile is KUBELET_CLIENT else user_subject(user, groups)
        except ValueError as e:  # a name that cannot be a CN / node name: refused like any policy breach
            raise PolicyError(str(e)) from None

    def _issue(
        self, request: SigningRequest, *, key: PrivateKey | None, requester: str, name: str | None
    ) -> IssuedCert:
        now = self.clock()
        cert = self.ca.issue(
            subject=request.subject,
            public_key=request.public_key,
            profile=request.profile,
            now=now,
            ttl=request.ttl,
            sans=request.sans,
        )
        record = CertRecord.for_certificate(
            cert,
            profile=request.profile.name,
            now=now,
            requester=requester,
            name=name,
            ca_name=self.ca_name,
            signed=SignedNames(request.subject, request.sans, self.ca.subject_text),
        )
        if self.inventory is not None:
            self.inventory.add([record])
        issued = IssuedCert(cert, record, key, self.ca.intermediates)
        if self.on_issued is not None:
            self.on_issued(issued)
        return issued


def public_key_of(cert: x509.Certificate) -> PublicKey:
    return cert.public_key()  # type: ignore[return-value]
