"""The signing policy: small validators applied in turn, each naming what it refuses.

Deny by default for privileged identities: the groups and users below are refused whatever
`denied_groups` / `denied_users` say, unless the operator lists them in `allowed_groups` /
`allowed_users`. A certificate in `system:masters` bypasses RBAC entirely and cannot be
revoked by the API server; one in `kubeadm:cluster-admins` is cluster-admin in every cluster
kubeadm >= 1.29 built. `check_user` / `check_groups` are the one rule for every identity
that is minted or refreshed, not only certificates (user tokens, logins, their re-checks);
`privileged_user` / `privileged_group` test a name against the list alone, for identities
that get no opt-in (those asserted by an external issuer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import functools
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.errors import InvalidValue, PolicyError
from pki.keys import PublicKey, check_key_strength
from pki.names import (
    NODE_PREFIX,
    NODES_GROUP,
    SubjectAltNames,
    check_dns_name,
    check_name,
    check_node_name,
    subject_user,
)
from pki.profiles import Profile

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Groups that carry power in a cluster (globs), refused unless allowed_groups names them:
# - `system:*`, Kubernetes' own: system:masters (bypasses RBAC and authorization webhooks),
#   system:nodes (the Node authorizer), system:bootstrappers:* (kubeadm's node bootstrap
#   token group system:bootstrappers:kubeadm:default-node-token may have node client
#   certificates signed), system:serviceaccounts:*, ...
# - `kubeadm:*`, kubeadm's own: from v1.29 kubeadm binds kubeadm:cluster-admins to the
#   cluster-admin ClusterRole (cmd/kubeadm/app/constants ClusterAdminsGroupAndClusterRoleBinding;
#   admin.conf and apiserver-kubelet-client authenticate with it). Its other bindings are to
#   system: groups; the prefix covers the ones later releases add.
# authsvc binds nothing of its own beyond these (its CronJob's RoleBinding names a service account).
PRIVILEGED_GROUPS: tuple[str, ...] = ("system:*", "kubeadm:*")
# Kubernetes' own user names: system:node:<node>, system:kube-controller-manager, system:anonymous, ...
PRIVILEGED_USERS: tuple[str, ...] = ("system:*",)

# Asked before anything is minted for a user name (certificate, token): raises PolicyError to
# refuse. authsvc's is its list of users whose access was revoked (`authsvc access revoke`).
SubjectGate = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SigningPolicy:
    # Glob patterns. The privileged groups and users above are refused whatever these say; a
    # name matching allowed_* is accepted even if it also matches a denied or privileged pattern
    # (the explicit opt-in). denied_* add patterns of the operator's own.
    denied_groups: tuple[str, ...] = ()
    allowed_groups: tuple[str, ...] = ()
    denied_users: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    user_pattern: str = r"^[A-Za-z0-9][A-Za-z0-9._@+=:-]*$"
    # Globs for DNS SANs (`*.svc.cluster.local`), CIDRs for IP SANs. Empty: no SAN allowed
    # on client certificates; server/peer certificates need an explicit allow-list.
    allowed_dns_sans: tuple[str, ...] = ()
    allowed_ip_sans: tuple[str, ...] = ()
    max_ttl: dt.timedelta = dt.timedelta(days=365)
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    max_groups: int = 64
    # A wildcard certificate (`*.svc`) speaks for every name below it: off unless asked for.
    allow_wildcard_dns: bool = False
    _user_regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _ip_networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compile the patterns once; raise InvalidValue naming a bad pattern or CIDR."""
        try:
            regex = re.compile(self.user_pattern)
        except re.error as e:
            raise InvalidValue(f"signing policy: user_pattern {self.user_pattern!r} is not a regex: {e}") from None
        object.__setattr__(self, "_user_regex", regex)
        object.__setattr__(self, "_ip_networks", tuple(_network(cidr) for cidr in self.allowed_ip_sans))


def _network(cidr: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise InvalidValue(f"signing policy: allowed_ip_sans entry {cidr!r} is not an IP network (CIDR)") from None


@dataclass(frozen=True, slots=True)
class SigningRequest:
    subject: x509.Name
    public_key: PublicKey
    profile: Profile
    ttl: dt.timedelta
    sans: SubjectAltNames = field(default_factory=SubjectAltNames)


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    return _matcher(patterns)(value) is not None


@functools.lru_cache(maxsize=64)
def _matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """One compiled regex for a tuple of globs (fnmatchcase's rules): a check per group of every
    uncached review costs one match, not a cache look-up and a match per pattern."""
    if not patterns:
        return lambda value: None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns)).match


def privileged_group(group: str) -> bool:
    """Whether `group` is one of PRIVILEGED_GROUPS (case-sensitive, as RBAC compares names)."""
    return _PRIVILEGED_GROUP(group) is not None


def privileged_user(user: str) -> bool:
    """Whether `user` is one of PRIVILEGED_USERS."""
    return _PRIVILEGED_USER(user) is not None


_PRIVILEGED_GROUP = _matcher(PRIVILEGED_GROUPS)
_PRIVILEGED_USER = _matcher(PRIVILEGED_USERS)


def check_user(policy: SigningPolicy, user: str) -> None:
    try:
        check_name(user, what="user name")
    except ValueError as e:
        raise PolicyError(str(e)) from None
    denied = privileged_user(user) or _matches(user, policy.denied_users)
    if denied and not _matches(user, policy.allowed_users):
        raise PolicyError(f"user name {user!r} is privileged and not allowed by the signing policy")
    if not policy._user_regex.fullmatch(user) and not _matches(user, policy.allowed_users):
        raise PolicyError(f"user name {user!r} does not match the policy's pattern {policy.user_pattern}")


def check_groups(policy: SigningPolicy, groups: tuple[str, ...]) -> None:
    if len(groups) > policy.max_groups:
        raise PolicyError(f"{len(groups)} groups requested; the policy allows at most {policy.max_groups}")
    for group in groups:
        try:
            check_name(group, what="group")
        except ValueError as e:
            raise PolicyError(str(e)) from None
        denied = privileged_group(group) or _matches(group, policy.denied_groups)
        if denied and not _matches(group, policy.allowed_groups):
            raise PolicyError(f"group {group!r} is privileged and not allowed by the signing policy")


def check_sans(policy: SigningPolicy, sans: SubjectAltNames) -> None:
    for name in sans.dns:
        try:
            # Names from a CSR were never parsed by us: the same syntax check as the CLI's --san.
            dns_name = check_dns_name(name)
        except ValueError as e:
            raise PolicyError(str(e)) from None
        if dns_name.startswith("*") and not policy.allow_wildcard_dns:
            raise PolicyError(f"wildcard DNS SAN {name!r} is not allowed by the signing policy")
        if not _matches(dns_name, policy.allowed_dns_sans):
            raise PolicyError(f"DNS SAN {name!r} is not allowed by the signing policy (allowed_dns_sans)")
    for ip in sans.ips:
        if not any(ip in net for net in policy._ip_networks):
            raise PolicyError(f"IP SAN {ip} is not allowed by the signing policy (allowed_ip_sans)")
    if sans.uris or sans.emails:
        raise PolicyError("URI and email SANs are not allowed by the signing policy")


def check_required_sans(profile: Profile, sans: SubjectAltNames) -> None:
    if profile.needs_sans and not (sans.dns or sans.ips):
        raise PolicyError(f"a {profile.name} certificate needs at least one DNS or IP SAN (clients ignore the CN)")


def check_ttl(policy: SigningPolicy, ttl: dt.timedelta) -> None:
    if ttl <= dt.timedelta(0):
        raise PolicyError("the requested lifetime must be positive")
    if ttl > policy.max_ttl:
        raise PolicyError(f"requested lifetime {ttl} exceeds the policy's maximum of {policy.max_ttl}")


def check_node_subject(subject: x509.Name) -> None:
    """PolicyError unless the subject is a kubelet's: CN system:node:<node name>, O exactly system:nodes."""
    user, groups = subject_user(subject)
    if not user.startswith(NODE_PREFIX) or groups != (NODES_GROUP,):
        raise PolicyError(f"a node's certificate needs CN {NODE_PREFIX}<node> and O {NODES_GROUP} (and no other O)")
    try:
        check_node_name(user.removeprefix(NODE_PREFIX))
    except ValueError as e:
        raise PolicyError(str(e)) from None


def node_identity_policy(policy: SigningPolicy) -> SigningPolicy:
    """The operator's policy plus the one privileged identity a node's certificate carries
    (system:node:<name> in system:nodes); every other rule (names, SANs, TTL) still applies."""
    return dataclasses.replace(
        policy,
        allowed_users=(*policy.allowed_users, f"{NODE_PREFIX}*"),
        allowed_groups=(*policy.allowed_groups, NODES_GROUP),
    )


def check_key(policy: SigningPolicy, key: PublicKey) -> None:
    check_key_strength(key, min_rsa_bits=policy.min_rsa_bits, min_ec_bits=policy.min_ec_bits)


def check_subject_shape(subject: x509.Name) -> None:
    allowed = {NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME}
    for attr in subject:
        if attr.oid not in allowed:
            raise PolicyError(f"subject attribute {attr.rfc4514_attribute_name} is not allowed (only CN and O)")
    if len(subject.get_attributes_for_oid(NameOID.COMMON_NAME)) != 1:
        raise PolicyError("the subject must have exactly one CN (the user name)")


def evaluate(policy: SigningPolicy, request: SigningRequest) -> None:
    """Raise PolicyError for the first rule the request breaks; return None when it may be signed."""
    check_key(policy, request.public_key)
    evaluate_names(policy, profile=request.profile, subject=request.subject, sans=request.sans, ttl=request.ttl)


def evaluate_names(
    policy: SigningPolicy, *, profile: Profile, subject: x509.Name, sans: SubjectAltNames, ttl: dt.timedelta
) -> None:
    """Every rule but the key's: run before a key is generated, so a refusal costs no key generation."""
    if profile.is_ca:
        raise PolicyError("CA certificates cannot be requested through the signing policy")
    check_subject_shape(subject)
    user, groups = subject_user(subject)
    check_user(policy, user)
    check_groups(policy, groups)
    check_required_sans(profile, sans)
    check_sans(policy, sans)
    check_ttl(policy, ttl)
