"""`pki:` section: key types, CA lifetimes, signing policy, key encryption at rest."""

from __future__ import annotations

import datetime as dt
import shlex
from typing import Any

from pydantic import Field, field_validator, model_validator

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
    # Encryption at rest for the CA keys (`authsvc keys encrypt|decrypt` converts a home): a
    # file holding the passphrase, the name of an environment variable holding it, or a
    # command that prints it (a secret manager's CLI: run once per process, without a shell;
    # a list of arguments, or one string split like a shell would, e.g. `vault kv get
    # -field=passphrase secret/authsvc`). One of the three; never the passphrase itself.
    # Keys that other programs read stay in clear (leaf keys, pki/sa.key): see docs/pki.md.
    key_passphrase_file: str | None = None
    key_passphrase_env: str | None = None
    key_passphrase_command: tuple[str, ...] | None = None
    # The home is a control-plane node's /etc/kubernetes (`authsvc pki import --in-place`):
    # kube-apiserver, kube-controller-manager and etcd read these very files, so pki/ca.key
    # (the controller-manager's --cluster-signing-key-file) stays in clear as well.
    in_place: bool = False
    policy: PolicySettings = PolicySettings()

    @field_validator("key_passphrase_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        # A string is split as a shell would split it, but never run by one (no pipes,
        # variables or globs): what people write for a secret manager's CLI.
        if isinstance(value, str):
            try:
                value = shlex.split(value)
            except ValueError as e:
                raise ValueError(f"cannot split the command: {e}") from None
        if value is not None and (not value or not all(isinstance(a, str) and a for a in value)):
            raise ValueError("must name a program and its arguments (non-empty strings)")
        return value

    @model_validator(mode="after")
    def _one_passphrase_source(self) -> PKISettings:
        given = [n for n in PASSPHRASE_SOURCES if getattr(self, n) is not None]
        if len(given) > 1:
            names = ", ".join(f"pki.{n}" for n in PASSPHRASE_SOURCES)
            raise ValueError(f"set one of {names}, not {' and '.join(given)}")
        return self

    @property
    def passphrase_configured(self) -> bool:
        """Whether CA keys are to be encrypted at rest (known without reading the secret)."""
        return any(getattr(self, n) is not None for n in PASSPHRASE_SOURCES)


PASSPHRASE_SOURCES = ("key_passphrase_file", "key_passphrase_env", "key_passphrase_command")
