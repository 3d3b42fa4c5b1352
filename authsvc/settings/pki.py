"""`pki:` section: key types, CA lifetimes, signing policy, key encryption at rest."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from authsvc.settings.fields import Duration, Section
from pki.keys import KeyType
from pki.policy import SigningPolicy


class PolicySettings(Section):
    """Which users and groups authsvc may put in a credential, what `certs sign|create` may sign."""

    # Glob patterns. Privileged groups (pki/policy.py: system:*, and kubeadm:* as kubeadm
    # >= 1.29 binds kubeadm:cluster-admins to cluster-admin) and users (system:*) are always
    # refused, in certificates, user tokens, /login and the users file, unless allowed_groups /
    # allowed_users names them: the explicit opt-in (e.g. [kubeadm:cluster-admins] for a
    # break-glass admin). denied_groups / denied_users add patterns of your own; an older
    # ['system:*'] here is still valid and changes nothing.
    denied_groups: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    denied_users: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    user_pattern: str = r"^[A-Za-z0-9][A-Za-z0-9._@+=:-]*$"
    allowed_dns_sans: tuple[str, ...] = ("*.svc", "*.svc.cluster.local", "localhost")
    allowed_ip_sans: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    max_ttl: Duration = dt.timedelta(days=365)
    min_rsa_bits: int = Field(2048, ge=2048)
    min_ec_bits: int = Field(256, ge=256)
    max_groups: int = Field(64, ge=1)

    def to_policy(self) -> SigningPolicy:
        return SigningPolicy(
            denied_groups=self.denied_groups,
            allowed_groups=self.allowed_groups,
            denied_users=self.denied_users,
            allowed_users=self.allowed_users,
            user_pattern=self.user_pattern,
            allowed_dns_sans=self.allowed_dns_sans,
            allowed_ip_sans=self.allowed_ip_sans,
            max_ttl=self.max_ttl,
            min_rsa_bits=self.min_rsa_bits,
            min_ec_bits=self.min_ec_bits,
            max_groups=self.max_groups,
        )


class PKISettings(Section):
    key_type: KeyType = KeyType.EC_P256
    ca_key_type: KeyType = KeyType.EC_P256
    ca_ttl: Duration = dt.timedelta(days=3650)
    client_ttl: Duration = dt.timedelta(days=1)
    server_ttl: Duration = dt.timedelta(days=365)
    crl_next_update: Duration = dt.timedelta(days=7)
    # Encryption at rest for private keys written by authsvc: a file holding the passphrase,
    # or the name of an environment variable holding it. Never the passphrase itself.
    key_passphrase_file: str | None = None
    key_passphrase_env: str | None = None
    policy: PolicySettings = PolicySettings()
