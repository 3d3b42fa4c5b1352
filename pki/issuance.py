"""Issuing certificates: CA + policy + inventory, wired together for one CA.

The builders stay pure; this module decides *whether* to sign (policy), signs, and
records the result. It writes no files: callers decide where PEM bytes go.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from pki.ca import CertificateAuthority
from pki.clock import Clock
from pki.csr import csr_public_key, csr_sans, load_csr, refuse_ca_request
from pki.errors import PolicyError
from pki.inventory import CertRecord, Inventory
from pki.keys import KeyType, PrivateKey, PublicKey, generate_private_key, private_key_to_pem
from pki.names import (
    NODE_PREFIX,
    NODES_GROUP,
    SubjectAltNames,
    check_name,
    subject_user,
    user_subject,
)
from pki.policy import SigningPolicy, SigningRequest, evaluate
from pki.profiles import KUBELET_CLIENT, Profile


@dataclass(frozen=True, slots=True)
class IssuedCert:
    certificate: x509.Certificate
    record: CertRecord
    key: PrivateKey | None = None

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        if self.key is None:
            raise ValueError("this certificate was signed from a CSR: its key stays with the requester")
        return private_key_to_pem(self.key, passphrase)


def kubelet_subject(node_name: str) -> x509.Name:
    check_name(node_name, what="node name")
    return user_subject(f"{NODE_PREFIX}{node_name.lower()}", (NODES_GROUP,))


def _check_kubelet_shape(subject: x509.Name) -> None:
    user, groups = subject_user(subject)
    if not user.startswith(NODE_PREFIX) or groups != (NODES_GROUP,):
        raise PolicyError(f"kubelet-client certificates need CN {NODE_PREFIX}<node> and O {NODES_GROUP}")


class CertificateIssuer:
    """Signs for one CA under one policy and records every certificate it signs."""

    def __init__(
        self,
        ca: CertificateAuthority,
        inventory: Inventory,
        policy: SigningPolicy,
        clock: Clock,
        *,
        ca_name: str = "ca",
    ) -> None:
        self.ca = ca
        self.inventory = inventory
        self.policy = policy
        self.clock = clock
        self.ca_name = ca_name

    def check(self, request: SigningRequest, *, trusted_operator: bool) -> None:
        """Policy first; an operator's own kubelet-client request is the one privileged shape allowed."""
        if request.profile is KUBELET_CLIENT:
            _check_kubelet_shape(request.subject)
            if not trusted_operator:
                raise PolicyError("kubelet-client certificates are issued by the operator, not through CSRs")
            return
        evaluate(self.policy, request)

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
        """Generate a key (unless given) and sign a certificate for it, under the policy."""
        subject = kubelet_subject(user) if profile is KUBELET_CLIENT else user_subject(user, tuple(groups))
        private_key = key or generate_private_key(key_type)
        issued = self._sign(
            SigningRequest(
                subject, private_key.public_key(), profile, ttl or profile.default_ttl, sans or SubjectAltNames()
            ),
            requester=requester,
            name=name,
            trusted_operator=True,
        )
        return IssuedCert(issued.certificate, issued.record, private_key)

    def sign_csr(
        self,
        csr_data: bytes,
        *,
        profile: Profile,
        ttl: dt.timedelta | None = None,
        requester: str = "",
        name: str | None = None,
    ) -> IssuedCert:
        """Sign a PKCS#10 request: only its subject, key and SANs are taken from it."""
        csr = load_csr(csr_data)
        refuse_ca_request(csr)
        request = SigningRequest(csr.subject, csr_public_key(csr), profile, ttl or profile.default_ttl, csr_sans(csr))
        return self._sign(request, requester=requester, name=name, trusted_operator=False)

    def _sign(self, request: SigningRequest, *, requester: str, name: str | None, trusted_operator: bool) -> IssuedCert:
        self.check(request, trusted_operator=trusted_operator)
        now = self.clock()
        cert = self.ca.issue(
            subject=request.subject,
            public_key=request.public_key,
            profile=request.profile,
            now=now,
            ttl=request.ttl,
            sans=request.sans,
        )
        record = self.inventory.record(
            cert, profile=request.profile.name, now=now, requester=requester, name=name, ca_name=self.ca_name
        )
        return IssuedCert(cert, record)


def public_key_of(cert: x509.Certificate) -> PublicKey:
    return cert.public_key()  # type: ignore[return-value]
