"""Subjects and SANs in Kubernetes' conventions (CN = user name, O = groups)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from pki.errors import InvalidValue

# Kubernetes takes any string as a user name, but names reach file names, YAML and logs:
# control characters and path separators are refused everywhere.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_NAME_LENGTH = 253
# RFC 5280's ub-common-name: cryptography (and strict verifiers) refuse a longer CN.
MAX_COMMON_NAME_LENGTH = 64
# A DNS label (RFC 1123; underscores allowed because internal names use them), lower case.
_DNS_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# Kubernetes node names are DNS-1123 subdomains (what `kubectl get nodes` shows).
_DNS1123_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


def check_name(value: str, *, what: str = "name") -> str:
    """Return `value` if it is safe as a user, group or cluster name; else raise InvalidValue."""
    if not value or not value.strip():
        raise InvalidValue(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidValue(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _FORBIDDEN.search(value):
        raise InvalidValue(f"{what} {value!r} contains a control character or path separator")
    if value in {".", ".."}:
        raise InvalidValue(f"{what} {value!r} is not allowed")
    if value != value.strip():
        raise InvalidValue(f"{what} {value!r} has leading or trailing white space")
    return value


def check_dns_name(value: str) -> str:
    """Return `value` lower-cased if it is a DNS name (a leading `*.` wildcard label allowed); else ValueError."""
    name = value.lower()
    labels = name.split(".")
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    if not name.isascii() or len(name) > MAX_NAME_LENGTH or not all(_DNS_LABEL.fullmatch(x) for x in labels):
        raise InvalidValue(f"invalid DNS name {value!r}: use ASCII labels of letters, digits and '-' (IDNs as xn--)")
    return name


def check_node_name(value: str) -> str:
    """Return a Kubernetes node name (DNS-1123 subdomain, lower-cased like kubelet does); else ValueError."""
    name = value.lower()
    labels = name.split(".")
    if not name.isascii() or len(name) > MAX_NAME_LENGTH or not all(_DNS1123_LABEL.fullmatch(x) for x in labels):
        raise InvalidValue(f"invalid node name {value!r}: a node name is a DNS-1123 subdomain, e.g. worker-1")
    return name


def user_subject(user: str, groups: Sequence[str] = ()) -> x509.Name:
    """CN = user, one O per group, in the order given (what kube-apiserver reads).

    Raises ValueError when the user name does not fit in a CN (64 characters).
    """
    if not 1 <= len(user) <= MAX_COMMON_NAME_LENGTH:
        raise InvalidValue(
            f"user name of {len(user)} characters does not fit in a certificate: a CN holds 1 to "
            f"{MAX_COMMON_NAME_LENGTH} (RFC 5280 ub-common-name)"
        )
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return x509.Name(attrs)


def common_name_subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def subject_user(name: x509.Name) -> tuple[str, tuple[str, ...]]:
    """(CN, O values) of a subject: the identity kube-apiserver derives from a client cert."""
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return (str(cns[0].value) if cns else "", tuple(str(o.value) for o in orgs))


@dataclass(frozen=True, slots=True)
class SubjectAltNames:
    dns: tuple[str, ...] = ()
    ips: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    uris: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns or self.ips or self.uris or self.emails)

    def as_extension(self) -> x509.SubjectAlternativeName:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in self.dns]
        names += [x509.IPAddress(ip) for ip in self.ips]
        names += [x509.UniformResourceIdentifier(u) for u in self.uris]
        names += [x509.RFC822Name(e) for e in self.emails]
        return x509.SubjectAlternativeName(names)

    def as_strings(self) -> list[str]:
        return (
            [f"DNS:{d}" for d in self.dns]
            + [f"IP:{ip}" for ip in self.ips]
            + [f"URI:{u}" for u in self.uris]
            + [f"email:{e}" for e in self.emails]
        )

    @classmethod
    def parse(cls, values: Iterable[str]) -> SubjectAltNames:
        """Parse `DNS:x`, `IP:y`, `URI:z`, `email:w`; a bare value is an IP if it parses as one, else DNS.

        DNS names are lower-cased; duplicates are dropped. Raises ValueError naming the bad value.
        `parse(sans.as_strings()) == sans` for every value this returns.
        """
        found: dict[str, list[str]] = {"DNS": [], "IP": [], "URI": [], "EMAIL": []}
        for raw in values:
            kind, sep, value = raw.partition(":")
            if not sep or kind.upper() not in found:
                kind, value = ("IP", raw) if is_ip_address(raw) else ("DNS", raw)
            found[kind.upper()].append(value)
        return cls(
            tuple(dict.fromkeys(check_dns_name(v) for v in found["DNS"])),
            tuple(dict.fromkeys(_parse_ip(v) for v in found["IP"])),
            tuple(dict.fromkeys(_check_uri(v) for v in found["URI"])),
            tuple(dict.fromkeys(_check_email(v) for v in found["EMAIL"])),
        )

    @classmethod
    def from_certificate_like(cls, extensions: x509.Extensions) -> SubjectAltNames:
        try:
            san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return cls()
        return cls(
            tuple(san.get_values_for_type(x509.DNSName)),
            tuple(san.get_values_for_type(x509.IPAddress)),  # type: ignore[arg-type]
            tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
            tuple(san.get_values_for_type(x509.RFC822Name)),
        )


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidValue(f"invalid IP SAN {value!r}: expected an IPv4 or IPv6 address") from None
    if getattr(ip, "scope_id", None):
        # A certificate holds only the 16 address bytes: the zone would be silently lost.
        raise InvalidValue(f"invalid IP SAN {value!r}: an IPv6 zone (%...) cannot be in a certificate")
    return ip


def _check_uri(value: str) -> str:
    if not _PRINTABLE_ASCII.fullmatch(value) or not urlsplit(value).scheme:
        raise InvalidValue(f"invalid URI SAN {value!r}: expected an absolute ASCII URI such as spiffe://cluster/ns/x")
    return value


def _check_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not _PRINTABLE_ASCII.fullmatch(value) or not at or not local or not domain or "@" in local:
        raise InvalidValue(f"invalid email SAN {value!r}: expected user@domain in ASCII")
    return value


def is_ip_address(value: str) -> bool:
    """True when `value` is an IPv4 or IPv6 address (how a bare SAN value is classified)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
