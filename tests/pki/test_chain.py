"""pki.issued_by.issued_by: the signature decides, not the names (a rolled-over CA keeps its subject)."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from pki.ca import CertificateAuthority
from pki.issued_by import issued_by
from pki.keys import KeyType, generate_private_key
from pki.names import user_subject
from pki.profiles import CLIENT


def client_leaf(ca: CertificateAuthority, now: dt.datetime) -> x509.Certificate:
    key = generate_private_key(KeyType.EC_P256)
    return ca.issue(subject=user_subject("alice", ["dev"]), public_key=key.public_key(), profile=CLIENT, now=now)


def test_a_leaf_is_issued_by_its_ca(root_ca: CertificateAuthority, now: dt.datetime) -> None:
    assert issued_by(client_leaf(root_ca, now), root_ca.certificate)


def test_a_ca_with_the_same_subject_and_another_key_did_not_issue_it(
    root_ca: CertificateAuthority, other_ca: CertificateAuthority, now: dt.datetime
) -> None:
    assert root_ca.certificate.subject == other_ca.certificate.subject
    assert not issued_by(client_leaf(root_ca, now), other_ca.certificate)


def test_a_ca_with_another_subject_did_not_issue_it(root_ca: CertificateAuthority, now: dt.datetime) -> None:
    stranger = CertificateAuthority.create_root("another root", now=now)
    assert not issued_by(client_leaf(root_ca, now), stranger.certificate)


def test_only_the_direct_issuer_counts(root_ca: CertificateAuthority, now: dt.datetime) -> None:
    intermediate = root_ca.create_intermediate("authsvc test intermediate", now=now)
    leaf = client_leaf(intermediate, now)
    assert issued_by(leaf, intermediate.certificate)
    assert not issued_by(leaf, root_ca.certificate)
