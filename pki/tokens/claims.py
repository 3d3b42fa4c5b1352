"""Pure claim builders for the tokens authsvc signs, and the inverse: claims → identity.

Shapes follow kube-apiserver so that it accepts authsvc's service-account tokens natively:

- bound tokens (pkg/serviceaccount/claims.go): `iss`, `sub` = system:serviceaccount:NS:NAME,
  `aud`, `exp`, `iat`, `nbf`, and the private `kubernetes.io` claim holding the namespace,
  `serviceaccount{name,uid}` and optionally `pod{name,uid}` (empty fields omitted, as Go's
  `omitempty` does). authsvc adds a `jti` so that a token can be revoked.
- legacy secret-based tokens (pkg/serviceaccount/legacy.go): `iss: kubernetes/serviceaccount`
  and the flat `kubernetes.io/serviceaccount/...` claims. kube-apiserver's legacy tokens
  never expire; authsvc's always carry `exp` (a token that cannot expire cannot be retired).
- user tokens: `sub` = user name, `groups`, optional `uid`/`extra`, and `authsvc.io/source`
  naming the login backend that vouched for the user.
- ID tokens (OpenID Connect Core 1.0 section 2): a user token's identity claims for one client
  (`aud` = its client id), with `auth_time`, and `nonce` / `at_hash` when the flow has them.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pki.errors import MalformedToken, PolicyError
from pki.names import SERVICE_ACCOUNT_PREFIX, check_name

KUBERNETES_CLAIM = "kubernetes.io"
LEGACY_ISSUER = "kubernetes/serviceaccount"
LEGACY_NAMESPACE_CLAIM = "kubernetes.io/serviceaccount/namespace"
LEGACY_SECRET_NAME_CLAIM = "kubernetes.io/serviceaccount/secret.name"
LEGACY_SA_NAME_CLAIM = "kubernetes.io/serviceaccount/service-account.name"
LEGACY_SA_UID_CLAIM = "kubernetes.io/serviceaccount/service-account.uid"
SOURCE_CLAIM = "authsvc.io/source"

ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
SERVICE_ACCOUNT_GROUP_PREFIX = "system:serviceaccounts:"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"

# Token kinds, as stored in the inventory and shown by `token list`.
KIND_SERVICE_ACCOUNT = "serviceaccount"
KIND_LEGACY = "legacy-serviceaccount"
KIND_USER = "user"
KIND_ID_TOKEN = "id_token"

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_LABEL_RE = re.compile(_DNS_LABEL)
_SUBDOMAIN_RE = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


# Tokens are issued for few distinct names, many times each: remember the answers.
@functools.lru_cache(maxsize=4096)
def _is_label(value: str) -> bool:
    return len(value) <= 63 and _LABEL_RE.fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)
def _is_subdomain(value: str) -> bool:
    return len(value) <= 253 and _SUBDOMAIN_RE.fullmatch(value) is not None


def check_dns_label(value: str, *, what: str) -> str:
    """A namespace name (RFC 1123 label, as kube-apiserver's ValidateNamespaceName)."""
    if not _is_label(value):
        raise PolicyError(f"{what} {value!r} is not a valid name: lower-case letters, digits and '-', at most 63")
    return value


def check_dns_subdomain(value: str, *, what: str) -> str:
    """A service account, pod or secret name (RFC 1123 subdomain)."""
    if not _is_subdomain(value):
        raise PolicyError(f"{what} {value!r} is not a valid name: lower-case letters, digits, '-' and '.'")
    return value


def service_account_username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    return (ALL_SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNT_GROUP_PREFIX}{namespace}")


def time_claims(now: dt.datetime, ttl: dt.timedelta) -> dict[str, int]:
    """`iat` = `nbf` = now, `exp` = now + ttl, in whole seconds (JWT NumericDate)."""
    if ttl <= dt.timedelta(0):
        raise PolicyError(f"token lifetime {ttl} must be positive")
    issued = int(now.timestamp())
    return {"iat": issued, "nbf": issued, "exp": issued + int(ttl.total_seconds())}


def _ref(name: str, uid: str) -> dict[str, str]:
    """A `{name, uid}` reference with empty fields left out (Go's omitempty)."""
    return {"name": name, "uid": uid} if uid else {"name": name}


@dataclass(frozen=True, slots=True)
class PodBinding:
    name: str
    uid: str


def bound_sa_claims(
    *,
    issuer: str,
    namespace: str,
    name: str,
    uid: str,
    audiences: Sequence[str],
    now: dt.datetime,
    ttl: dt.timedelta,
    jti: str,
    pod: PodBinding | None = None,
) -> dict[str, Any]:
    """Claims of a bound service-account token (what TokenRequest returns)."""
    check_dns_label(namespace, what="namespace")
    check_dns_subdomain(name, what="service account name")
    if not audiences:
        raise PolicyError("a service-account token needs at least one audience")
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": _ref(name, uid)}
    if pod is not None:
        check_dns_subdomain(pod.name, what="pod name")
        if not pod.uid:
            raise PolicyError(f"binding to pod {pod.name!r} needs its UID (kube-apiserver checks it)")
        private["pod"] = _ref(pod.name, pod.uid)
    return {
        "iss": issuer,
        "sub": service_account_username(namespace, name),
        "aud": list(audiences),
        **time_claims(now, ttl),
        "jti": jti,
        KUBERNETES_CLAIM: private,
    }


def legacy_sa_claims(
    *, namespace: str, name: str, uid: str, secret_name: str, now: dt.datetime, ttl: dt.timedelta, jti: str
) -> dict[str, Any]:
    """Claims of a secret-based service-account token (kube-apiserver's LegacyClaims shape)."""
    check_dns_label(namespace, what="namespace")
    check_dns_subdomain(name, what="service account name")
    check_dns_subdomain(secret_name, what="secret name")
    if not uid:
        raise PolicyError("a legacy token needs the service account's UID (kube-apiserver refuses one without it)")
    return {
        "iss": LEGACY_ISSUER,
        "sub": service_account_username(namespace, name),
        LEGACY_NAMESPACE_CLAIM: namespace,
        LEGACY_SECRET_NAME_CLAIM: secret_name,
        LEGACY_SA_NAME_CLAIM: name,
        LEGACY_SA_UID_CLAIM: uid,
        **time_claims(now, ttl),
        "jti": jti,
    }


def user_claims(
    *,
    issuer: str,
    username: str,
    groups: Sequence[str],
    audience: str,
    now: dt.datetime,
    ttl: dt.timedelta,
    jti: str,
    source: str,
    uid: str = "",
    extra: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Claims of a user token; a user name in the service-account namespace is refused."""
    _check_user_name(username)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": username,
        "aud": [audience],
        **time_claims(now, ttl),
        "jti": jti,
        "groups": [_checked_name(g, what="group") for g in groups],
        SOURCE_CLAIM: _checked_name(source, what="token source"),
    }
    if uid:
        claims["uid"] = uid
    if extra:
        claims["extra"] = {_checked_name(k, what="extra key"): [str(v) for v in vals] for k, vals in extra.items()}
    return claims


@dataclass(frozen=True, slots=True)
class IDTokenRequest:
    """What an ID token says beyond the user: for which client, and the flow's values."""

    client_id: str
    auth_time: dt.datetime
    nonce: str = ""
    # Left half of the access token's hash (OIDC Core 3.1.3.6), when one is issued with it.
    at_hash: str = ""


def id_token_claims(
    *,
    issuer: str,
    username: str,
    groups: Sequence[str],
    request: IDTokenRequest,
    now: dt.datetime,
    ttl: dt.timedelta,
    jti: str,
    source: str,
    uid: str = "",
) -> dict[str, Any]:
    """Claims of an ID token: `sub` is the user name and `groups` the groups (what kube-apiserver's
    --oidc-username-claim=sub and --oidc-groups-claim=groups read), `aud` the client id."""
    _check_user_name(username)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": username,
        "aud": request.client_id,
        **time_claims(now, ttl),
        "auth_time": int(request.auth_time.timestamp()),
        "jti": jti,
        "preferred_username": username,
        "groups": [_checked_name(g, what="group") for g in groups],
        SOURCE_CLAIM: _checked_name(source, what="token source"),
    }
    if uid:
        claims["uid"] = uid
    if request.nonce:
        claims["nonce"] = request.nonce
    if request.at_hash:
        claims["at_hash"] = request.at_hash
    return claims


def _checked_name(value: str, *, what: str) -> str:
    try:
        return check_name(value, what=what)
    except ValueError as e:
        raise PolicyError(str(e)) from None


def _check_user_name(username: str) -> None:
    _checked_name(username, what="user name")
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        raise PolicyError(f"user name {username!r} is a service-account name: use `token create` for those")


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a verified token names, as kube-apiserver would report it."""

    kind: str
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The login backend that vouched for a user token ("" for service accounts).
    source: str = ""


def identity_from_claims(claims: Mapping[str, Any]) -> TokenIdentity:
    """The identity in verified claims; TokenRejected when their shape is not one authsvc signs."""
    if KUBERNETES_CLAIM in claims:
        return _bound_identity(claims)
    if LEGACY_NAMESPACE_CLAIM in claims:
        return _legacy_identity(claims)
    return _user_identity(claims)


def _text(claims: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = claims.get(key, "")
    if not isinstance(value, str) or (required and not value):
        raise MalformedToken(f"token claim {key!r} is missing or not a string")
    return value


def _bound_identity(claims: Mapping[str, Any]) -> TokenIdentity:
    private = claims[KUBERNETES_CLAIM]
    account = private.get("serviceaccount") if isinstance(private, dict) else None
    if not isinstance(account, dict):
        raise MalformedToken(f"token claim {KUBERNETES_CLAIM!r} has no serviceaccount")
    namespace = _text(private, "namespace")
    name, uid = _text(account, "name"), _text(account, "uid", required=False)
    _check_subject(claims, namespace, name)
    extra: dict[str, tuple[str, ...]] = {}
    pod = private.get("pod")
    if isinstance(pod, dict) and pod.get("name") and pod.get("uid"):
        extra = {POD_NAME_EXTRA: (_text(pod, "name"),), POD_UID_EXTRA: (_text(pod, "uid"),)}
    return TokenIdentity(
        KIND_SERVICE_ACCOUNT, service_account_username(namespace, name), uid, service_account_groups(namespace), extra
    )


def _legacy_identity(claims: Mapping[str, Any]) -> TokenIdentity:
    namespace, name = _text(claims, LEGACY_NAMESPACE_CLAIM), _text(claims, LEGACY_SA_NAME_CLAIM)
    _text(claims, LEGACY_SECRET_NAME_CLAIM)
    uid = _text(claims, LEGACY_SA_UID_CLAIM)
    _check_subject(claims, namespace, name)
    return TokenIdentity(KIND_LEGACY, service_account_username(namespace, name), uid, service_account_groups(namespace))


def _check_subject(claims: Mapping[str, Any], namespace: str, name: str) -> None:
    if claims.get("sub") != service_account_username(namespace, name):
        raise MalformedToken("token subject does not match its service-account claims")


def _user_identity(claims: Mapping[str, Any]) -> TokenIdentity:
    username = _text(claims, "sub")
    if username.startswith(SERVICE_ACCOUNT_PREFIX):
        raise MalformedToken("a service-account subject without service-account claims")
    groups = claims.get("groups", [])
    extra = claims.get("extra", {})
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise MalformedToken("token claim 'groups' must be a list of strings")
    if not isinstance(extra, dict) or not all(isinstance(v, list) for v in extra.values()):
        raise MalformedToken("token claim 'extra' must map names to lists of strings")
    return TokenIdentity(
        KIND_USER,
        username,
        _text(claims, "uid", required=False),
        tuple(groups),
        {str(k): tuple(str(x) for x in v) for k, v in extra.items()},
        _text(claims, SOURCE_CLAIM, required=False),
    )
