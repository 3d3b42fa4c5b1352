"""Whose requests a suggestion covers: a user, a service account or a group.

The subject is matched against the identity the API server authorized, which is the
impersonated user when the request carried Impersonate-* headers (as audit2rbac does).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from authsvc.errors import UsageError

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
RBAC_GROUP = "rbac.authorization.k8s.io"
# Kubernetes object names: namespaces are DNS-1123 labels, service accounts DNS-1123 subdomains.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
# What may stand in an RBAC object's name as is (a path segment: never "/" or "%").
_NAME_SAFE = re.compile(r"[^A-Za-z0-9._:@-]")
_SLUG_MAX = 100

SubjectKind = Literal["User", "Group", "ServiceAccount"]


@dataclass(frozen=True, slots=True)
class Subject:
    """One RBAC subject; `namespace` is set for service accounts only."""

    kind: SubjectKind
    name: str
    namespace: str = ""

    @classmethod
    def user(cls, name: str) -> Subject:
        """A user. Raises UsageError for an empty name or a service account's user name."""
        _check_text(name, "--user")
        if name.startswith(SERVICE_ACCOUNT_PREFIX):
            raise UsageError(f"--user {name!r} is a service account: use --serviceaccount NAMESPACE:NAME")
        return cls("User", name)

    @classmethod
    def group(cls, name: str) -> Subject:
        _check_text(name, "--group")
        return cls("Group", name)

    @classmethod
    def service_account(cls, spec: str) -> Subject:
        """`NAMESPACE:NAME`, as audit2rbac and kubectl's --serviceaccount take it."""
        namespace, _, name = spec.partition(":")
        if not (_DNS_LABEL.fullmatch(namespace) and _DNS_SUBDOMAIN.fullmatch(name)):
            raise UsageError(f"--serviceaccount {spec!r}: expected NAMESPACE:NAME (e.g. ci:deployer)")
        return cls("ServiceAccount", name, namespace)

    @property
    def username(self) -> str | None:
        """The user name the API server records for this subject (None for a group)."""
        if self.kind == "ServiceAccount":
            return f"{SERVICE_ACCOUNT_PREFIX}{self.namespace}:{self.name}"
        return self.name if self.kind == "User" else None

    def describe(self) -> str:
        if self.kind == "ServiceAccount":
            return f"service account {self.namespace}/{self.name}"
        return f"{self.kind.lower()} {self.name}"

    def matches(self, user: Any) -> bool:
        """Whether an event's (effective) `user` object is this subject."""
        if not isinstance(user, dict):
            return False
        if self.kind == "Group":
            groups = user.get("groups")
            return isinstance(groups, list) and self.name in groups
        return bool(user.get("username") == self.username)

    def needle(self) -> bytes | None:
        """Bytes every line of this subject's events contains, or None when there are none.

        The API server writes the name as a JSON string with Go's encoder: verbatim unless it
        holds a character Go escapes (quote, backslash, control characters, <, >, &) or one
        another encoder might (non-ASCII, /). For those names there is no fast path.
        """
        text = self.name if self.kind == "Group" else self.username
        assert text is not None
        if all(0x20 <= ord(c) < 0x7F and c not in '"\\/<>&' for c in text):
            return f'"{text}"'.encode()
        return None

    def rbac_subject(self) -> dict[str, str]:
        """The subject as a binding names it (rbac.authorization.k8s.io/v1 Subject)."""
        if self.kind == "ServiceAccount":
            return {"kind": "ServiceAccount", "name": self.name, "namespace": self.namespace}
        return {"kind": self.kind, "apiGroup": RBAC_GROUP, "name": self.name}

    def object_name(self, prefix: str) -> str:
        """`PREFIX:KIND:NAME`, the name of every object suggested for this subject.

        Characters an RBAC name cannot hold become "-", and then a hash of the exact name is
        appended, so that two subjects never share objects (applying one's suggestion must not
        rewrite another's roles).
        """
        exact = f"{self.namespace}:{self.name}" if self.kind == "ServiceAccount" else self.name
        slug = _NAME_SAFE.sub("-", exact)
        if slug != exact or len(slug) > _SLUG_MAX:
            digest = hashlib.sha256(exact.encode()).hexdigest()[:10]
            slug = f"{slug[:_SLUG_MAX]}-{digest}"
        return f"{prefix}:{self.kind.lower()}:{slug}"


def effective_user(event: dict[str, Any]) -> Any:
    """The identity the request was authorized as: impersonatedUser where set, else user."""
    impersonated = event.get("impersonatedUser")
    return impersonated if isinstance(impersonated, dict) else event.get("user")


def check_name_prefix(prefix: str) -> str:
    """Raises UsageError unless `prefix` can begin an RBAC object's name."""
    if not prefix or _NAME_SAFE.search(prefix):
        raise UsageError(f"--name-prefix {prefix!r}: use letters, digits and . _ : @ - only")
    return prefix


def _check_text(value: str, option: str) -> None:
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise UsageError(f"{option} must be a non-empty name without control characters")
