"""Subjects and SANs in Kubernetes' conventions (CN = user name, O = groups)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

# Kubernetes takes any string as a user name, but names reach file names, YAML and logs:
# control characters and path separators are refused everywhere.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f/\\]")
MAX_NAME_LENGTH = 253

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"


def check_name(value: str, *, what: str = "name") -> str:
    """Return `value` if it is safe as a user, group or cluster name; else raise ValueError."""
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _FORBIDDEN.search(value):
        raise ValueError(f"{what} {value!r} contains a control character or path separator")
    if value in {".", ".."}:
        raise ValueError(f"{what} {value!r} is not allowed")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} has leading or trailing white space")
    return value


def user_subject(user: str, groups: Sequence[str] = ()) -> x509.Name:
    """CN = user, one O per group, in the order given (what kube-apiserver reads)."""
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
        """Parse `DNS:x`, `IP:y`, `URI:z`, `email:w`; a bare value is an IP if it parses as one, else DNS."""
        dns: list[str] = []
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        uris: list[str] = []
        emails: list[str] = []
        for raw in values:
            kind, sep, value = raw.partition(":")
            if not sep or kind.upper() not in {"DNS", "IP", "URI", "EMAIL"}:
                kind, value = ("IP", raw) if _is_ip(raw) else ("DNS", raw)
            kind = kind.upper()
            if not value or (_FORBIDDEN.search(value) and kind != "URI"):
                raise ValueError(f"invalid SAN {raw!r}")
            if kind == "IP":
                try:
                    ips.append(ipaddress.ip_address(value))
                except ValueError:
                    raise ValueError(f"invalid IP SAN {raw!r}") from None
            elif kind == "DNS":
                dns.append(value.lower())
            elif kind == "URI":
                uris.append(value)
            else:
                emails.append(value)
        return cls(tuple(dict.fromkeys(dns)), tuple(dict.fromkeys(ips)), tuple(uris), tuple(emails))

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


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
