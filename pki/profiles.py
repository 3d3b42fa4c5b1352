"""Certificate profiles: what a certificate may be used for, as data.

A profile fixes KeyUsage, ExtendedKeyUsage and the CA flag; the subject and SANs come
from the request and are checked by the policy, never by the profile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from pki.errors import InvalidValue


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    ext_key_usages: tuple[ObjectIdentifier, ...]
    default_ttl: dt.timedelta
    is_ca: bool = False
    path_length: int | None = None
    # Leaves sign with their key; RSA leaves also get keyEncipherment (kubeadm sets it for
    # every RSA leaf, and TLS with RSA key exchange needs it).
    digital_signature: bool = True
    # Server certificates are matched by SAN only (Go ignores the CN since 1.15): refuse them without.
    needs_sans: bool = False


CLIENT = Profile("client", (ExtendedKeyUsageOID.CLIENT_AUTH,), dt.timedelta(days=365))
SERVER = Profile("server", (ExtendedKeyUsageOID.SERVER_AUTH,), dt.timedelta(days=365), needs_sans=True)
# Peers (etcd members, webhooks that also call out) are servers too: TLS clients check SANs only.
PEER = Profile(
    "peer",
    (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    dt.timedelta(days=365),
    needs_sans=True,
)
# Kubelet client certificates: CN system:node:<name>, O system:nodes (the Node authorizer's shape).
KUBELET_CLIENT = Profile("kubelet-client", (ExtendedKeyUsageOID.CLIENT_AUTH,), dt.timedelta(days=365))
ROOT_CA = Profile("root-ca", (), dt.timedelta(days=3650), is_ca=True, path_length=1)
INTERMEDIATE_CA = Profile("intermediate-ca", (), dt.timedelta(days=1825), is_ca=True, path_length=0)

LEAF_PROFILES: dict[str, Profile] = {p.name: p for p in (CLIENT, SERVER, PEER, KUBELET_CLIENT)}
ALL_PROFILES: dict[str, Profile] = {**LEAF_PROFILES, ROOT_CA.name: ROOT_CA, INTERMEDIATE_CA.name: INTERMEDIATE_CA}


def profile_named(name: str) -> Profile:
    try:
        return ALL_PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(LEAF_PROFILES))
        raise InvalidValue(f"unknown profile {name!r} (known: {known})") from None
