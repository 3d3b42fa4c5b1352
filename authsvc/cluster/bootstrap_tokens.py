"""Bootstrap tokens in the cluster: `bootstrap-token-<id>` Secrets, and the signatures of cluster-info.

authsvc's database (authsvc/authn/bootstrap.py) is what the webhook answers from, for API
servers that do not read bootstrap tokens themselves. When authsvc is connected to a cluster,
each token is also written as the Secret that kubeadm writes (kube-system, type
`bootstrap.kubernetes.io/token`, kubeadm's fields), which an API server with
`--enable-bootstrap-token-auth` authenticates natively and `kubeadm token list` shows; and the
`cluster-info` ConfigMap gets a `jws-kubeconfig-<id>` signature per token that may sign, as
kube-controller-manager's bootstrap signer would write it (nobody else does on a control plane
without one). `BootstrapTokens` keeps the two places in step and reports where they differ.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from authsvc.authn.bootstrap import (
    BOOTSTRAPPERS,
    TOKEN_ID,
    TOKEN_SECRET,
    USAGE_SIGNING,
    USER_PREFIX,
    BootstrapToken,
    BootstrapTokenStore,
    check_extra_groups,
    check_token_id,
    check_usages,
    new_token,
)
from authsvc.cluster import apply, cluster_info, objects
from authsvc.cluster.apply import Action, Change
from authsvc.cluster.errors import ClusterError
from authsvc.cluster.objects import COMPONENT_BOOTSTRAP_TOKEN, KINDS, ObjectRef, managed_labels
from pki.errors import NotFoundError

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient

SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
SYSTEM_NAMESPACE = "kube-system"
USAGE_PREFIX = "usage-bootstrap-"
CLUSTER_INFO_REF = ObjectRef(KINDS["ConfigMap"], cluster_info.CLUSTER_INFO, cluster_info.PUBLIC_NAMESPACE)

# Where a token lives (`token bootstrap list`'s LOCATION column).
IN_BOTH = "authsvc+cluster"
IN_AUTHSVC = "authsvc"
IN_CLUSTER = "cluster"


def rfc3339(when: dt.datetime) -> str:
    """kubeadm's `expiration`: UTC, whole seconds, `Z` (Go's time.RFC3339)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def secret_ref(token_id: str) -> ObjectRef:
    return ObjectRef(KINDS["Secret"], SECRET_PREFIX + token_id, SYSTEM_NAMESPACE)


def token_secret(record: BootstrapToken, secret: str) -> Any:
    """The Secret kubeadm writes for a token (kubeadm's encodeTokenSecretData), labelled as authsvc's."""
    from kubernetes import client

    data = {"token-id": record.token_id, "token-secret": secret}
    if record.description:
        data["description"] = record.description
    if record.expires_at is not None:
        data["expiration"] = rfc3339(record.expires_at)
    data |= {USAGE_PREFIX + usage: "true" for usage in record.usages}
    if record.groups:
        data["auth-extra-groups"] = ",".join(record.groups)
    return client.V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=client.V1ObjectMeta(
            name=SECRET_PREFIX + record.token_id,
            namespace=SYSTEM_NAMESPACE,
            labels=managed_labels(COMPONENT_BOOTSTRAP_TOKEN),
        ),
        type=SECRET_TYPE,
        data={key: base64.b64encode(value.encode()).decode() for key, value in sorted(data.items())},
    )


@dataclass(frozen=True, slots=True)
class ClusterToken:
    """A bootstrap-token Secret as read from the cluster. `secret` stays in memory (signatures need it)."""

    token_id: str
    secret: str = field(repr=False)
    expires_at: dt.datetime | None
    usages: tuple[str, ...]
    groups: tuple[str, ...]
    description: str
    managed: bool
    # What makes kube-apiserver or the bootstrap signer ignore it (bad fields, bad expiration), or "".
    problem: str = ""

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def can_sign(self, now: dt.datetime) -> bool:
        """What the bootstrap signer checks (pkg/controller/bootstrap: validateSecretForSigning)."""
        return not self.problem and USAGE_SIGNING in self.usages and not self.expired(now)

    @property
    def secret_sha256(self) -> str:
        return hashlib.sha256(self.secret.encode()).hexdigest()


def parse_token_secret(secret: Any) -> ClusterToken | None:
    """A bootstrap-token Secret, or None when the object is not one (other name or type)."""
    name = secret.metadata.name or ""
    if secret.type != SECRET_TYPE or not name.startswith(SECRET_PREFIX):
        return None
    data = {key: base64.b64decode(value).decode("utf-8", "replace") for key, value in (secret.data or {}).items()}
    token_id, token = data.get("token-id", ""), data.get("token-secret", "")
    problems = []
    if token_id != name.removeprefix(SECRET_PREFIX) or not TOKEN_ID.fullmatch(token_id):
        problems.append("token-id does not match the name")
    if not TOKEN_SECRET.fullmatch(token):
        problems.append("token-secret is not 16 of [a-z0-9]")
    expires_at = None
    if "expiration" in data:
        try:
            expires_at = dt.datetime.fromisoformat(data["expiration"])
        except ValueError:
            problems.append(f"expiration {data['expiration']!r} is not RFC 3339")
    groups = tuple(g for g in data.get("auth-extra-groups", "").split(",") if g)
    labels = secret.metadata.labels or {}
    return ClusterToken(
        token_id=name.removeprefix(SECRET_PREFIX),
        secret=token,
        expires_at=expires_at,
        usages=tuple(u for u in ("authentication", "signing") if data.get(USAGE_PREFIX + u) == "true"),
        groups=groups,
        description=data.get("description", ""),
        managed=labels.get(objects.MANAGED_BY_LABEL) == objects.MANAGED_BY,
        problem="; ".join(problems),
    )


def cluster_tokens(client: ClusterClient) -> dict[str, ClusterToken]:
    """Every bootstrap-token Secret in kube-system, by token id."""
    listed = client.call(
        f"list Secrets in {SYSTEM_NAMESPACE}",
        client.core.list_namespaced_secret,
        SYSTEM_NAMESPACE,
        field_selector=f"type={SECRET_TYPE}",
    )
    parsed = (parse_token_secret(item) for item in listed.items)
    return {token.token_id: token for token in parsed if token is not None}


def signing_secrets(tokens: Mapping[str, ClusterToken], now: dt.datetime) -> dict[str, str]:
    return {token_id: token.secret for token_id, token in tokens.items() if token.can_sign(now)}


def resign_cluster_info(client: ClusterClient, signing: Mapping[str, str]) -> Change | None:
    """The update that makes cluster-info's signatures exactly `signing`'s, as the bootstrap
    signer does (it signs the kubeconfig that is there; it never rewrites it). None when there is
    no cluster-info yet (`authsvc cluster bootstrap` creates it)."""
    existing = objects.read(client, CLUSTER_INFO_REF)
    if existing is None:
        return None
    data = dict(existing.data or {})
    content = data.get(cluster_info.KUBECONFIG_KEY)
    if content is None:
        return None
    wanted = {k: v for k, v in data.items() if not k.startswith(cluster_info.SIGNATURE_PREFIX)}
    wanted |= cluster_info.signatures(content, signing)
    if wanted == data:
        return Change(Action.UNCHANGED, CLUSTER_INFO_REF)
    body = existing.model_copy(deep=True)
    body.data = wanted
    return Change(Action.UPDATE, CLUSTER_INFO_REF, body, note="signatures")


@dataclass(frozen=True, slots=True)
class CreatedToken:
    token: str = field(repr=False)
    record: BootstrapToken
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()


class BootstrapTokens:
    """`token bootstrap create|list|delete`: authsvc's store, and the cluster when connected."""

    def __init__(self, store: BootstrapTokenStore, client: ClusterClient | None) -> None:
        self.store = store
        self.client = client

    def create(
        self,
        *,
        now: dt.datetime,
        ttl: dt.timedelta | None,
        groups: Sequence[str],
        usages: Sequence[str],
        description: str,
    ) -> CreatedToken:
        """A new token in the store and, when connected, in the cluster; all of it or nothing."""
        token_id, secret = new_token()
        # Whole seconds: the Secret's `expiration` is RFC 3339 without fractions, and both places
        # must say the same.
        expires_at = (now + ttl).replace(microsecond=0) if ttl else None
        record = BootstrapToken(
            token_id, check_extra_groups(groups), description, now, expires_at, check_usages(usages)
        )
        if self.client is None:
            self.store.add(record, secret)
            return CreatedToken(f"{token_id}.{secret}", record)
        client = self.client
        existing = cluster_tokens(client)
        signing = signing_secrets(existing, now) | ({token_id: secret} if USAGE_SIGNING in record.usages else {})
        changes = [Change(Action.CREATE, secret_ref(token_id), token_secret(record, secret))]
        resign = resign_cluster_info(client, signing)
        notes = () if resign is not None else (_NO_CLUSTER_INFO,)
        changes += [resign] if resign is not None and resign.action.writes else []
        apply.check(client, changes)
        self.store.add(record, secret)
        try:
            apply.write(client, changes)
        except BaseException:
            # Refused after the checks passed (cluster-info changed meanwhile, the API server
            # went away): no token is better than one that half exists.
            self.store.delete(token_id)
            with contextlib.suppress(ClusterError):
                objects.delete(client, secret_ref(token_id))
            raise
        return CreatedToken(f"{token_id}.{secret}", record, tuple(changes), notes)

    def delete(self, token_id: str, *, now: dt.datetime) -> tuple[Change, ...]:
        """Remove the token from the store and, when connected, its Secret and its signature."""
        check_token_id(token_id)
        in_store = self.store.lookup(token_id) is not None
        if self.client is None:
            self.store.delete(token_id)
            return ()
        client = self.client
        existing = cluster_tokens(client)
        if not in_store and token_id not in existing:
            raise NotFoundError(
                f"no bootstrap token with id {token_id!r} in authsvc or in the cluster "
                "(see `authsvc token bootstrap list`)"
            )
        remaining = {k: v for k, v in existing.items() if k != token_id}
        changes = [Change(Action.DELETE, secret_ref(token_id))] if token_id in existing else []
        resign = resign_cluster_info(client, signing_secrets(remaining, now))
        changes += [resign] if resign is not None and resign.action.writes else []
        apply.check(client, changes)
        apply.write(client, changes)
        if in_store:
            self.store.delete(token_id)
        return tuple(changes)

    def rows(self, *, now: dt.datetime) -> list[dict[str, Any]]:
        """Every token, from the store and (when connected) the cluster, with where it lives and any drift."""
        stored = {t.token_id: t for t in self.store.tokens()}
        if self.client is None:
            return [{**t.as_dict(now), "location": IN_AUTHSVC, "drift": []} for t in stored.values()]
        in_cluster = cluster_tokens(self.client)
        signatures = _current_signatures(self.client)
        rows = []
        for token_id, record in stored.items():
            token = in_cluster.get(token_id)
            drift = _drift(record, token, signatures, now)
            if token is not None and not self._same_secret(token):
                drift.insert(0, "the secrets differ: authsvc and the cluster hold two different tokens with this id")
            rows.append({**record.as_dict(now), "location": IN_BOTH if token else IN_AUTHSVC, "drift": drift})
        for token_id in sorted(set(in_cluster) - set(stored)):
            token = in_cluster[token_id]
            drift = _drift(None, token, signatures, now)
            rows.append({**_cluster_row(token, now), "location": IN_CLUSTER, "drift": drift})
        return rows

    def _same_secret(self, token: ClusterToken) -> bool:
        found = self.store.lookup(token.token_id)
        return found is not None and hmac.compare_digest(found[0], token.secret_sha256)


_NO_CLUSTER_INFO = "the cluster has no kube-public/cluster-info yet: `authsvc cluster bootstrap` creates and signs it"


def _current_signatures(client: ClusterClient) -> tuple[str, dict[str, str]] | None:
    existing = objects.read(client, CLUSTER_INFO_REF)
    if existing is None or cluster_info.KUBECONFIG_KEY not in (existing.data or {}):
        return None
    data = dict(existing.data)
    return data[cluster_info.KUBECONFIG_KEY], data


def _cluster_row(token: ClusterToken, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": token.token_id,
        "user": USER_PREFIX + token.token_id,
        "groups": [BOOTSTRAPPERS, *token.groups],
        "description": token.description,
        "created": None,
        "expires": token.expires_at.isoformat(timespec="seconds") if token.expires_at else None,
        "usages": list(token.usages),
        "status": "expired" if token.expired(now) else "valid",
    }


def _drift(
    record: BootstrapToken | None,
    token: ClusterToken | None,
    signatures: tuple[str, dict[str, str]] | None,
    now: dt.datetime,
) -> list[str]:
    """What differs between authsvc's record and the cluster's Secret, in words."""
    if token is None:
        return ["no Secret in the cluster: kubeadm and API servers with --enable-bootstrap-token-auth do not see it"]
    drift = [f"the Secret is not valid: {token.problem}"] if token.problem else []
    if record is None:
        made_by = "" if token.managed else " (not made by authsvc)"
        drift.append(f"not in authsvc{made_by}: the webhook does not accept it")
    else:
        drift += _field_drift(record, token)
    if signatures is not None and token.can_sign(now):
        content, data = signatures
        signature = data.get(cluster_info.SIGNATURE_PREFIX + token.token_id, "")
        if not cluster_info.signature_is_valid(signature, content, token.token_id, token.secret):
            drift.append("cluster-info has no valid signature for it: `authsvc cluster bootstrap` signs it")
    return drift


def _field_drift(record: BootstrapToken, token: ClusterToken) -> list[str]:
    drift = []
    stored_expiry = rfc3339(record.expires_at) if record.expires_at else None
    cluster_expiry = rfc3339(token.expires_at) if token.expires_at else None
    if stored_expiry != cluster_expiry:
        drift.append(f"expiration differs (authsvc {stored_expiry}, cluster {cluster_expiry})")
    if set(record.groups) != set(token.groups):
        drift.append(f"groups differ (authsvc {list(record.groups)}, cluster {list(token.groups)})")
    if set(record.usages) != set(token.usages):
        drift.append(f"usages differ (authsvc {list(record.usages)}, cluster {list(token.usages)})")
    if record.description != token.description:
        drift.append("description differs")
    return drift
