"""Who a service-account token names, as the API server will check it.

kube-apiserver accepts a service-account token only when the account it names exists with
the UID in the token (and, for a token bound to a pod, when that pod exists with its UID and
runs as that account): `ServiceAccount UID (...) does not match claim ()` is what a token
minted without a UID gets. These look-ups fill the UIDs in, or say clearly why they cannot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsvc.cluster.errors import ClusterNotFound
from authsvc.errors import InvalidInput

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient


class ServiceAccountMissing(InvalidInput):
    """The service account (or the pod a token is bound to) does not exist, or does not match."""


@dataclass(frozen=True, slots=True)
class AccountUIDs:
    """The UIDs to put in a token: the account's, and the bound pod's (or None)."""

    account: str
    pod: str | None = None


def service_account_uid(client: ClusterClient, namespace: str, name: str) -> str:
    try:
        account = client.call(
            f"get ServiceAccount {namespace}/{name}", client.core.read_namespaced_service_account, name, namespace
        )
    except ClusterNotFound:
        raise ServiceAccountMissing(
            f"service account {namespace}/{name} does not exist in the cluster at {client.server}: "
            f"create it first (kubectl create serviceaccount {name} -n {namespace})"
        ) from None
    return str(account.metadata.uid)


def bound_pod_uid(client: ClusterClient, namespace: str, pod: str, account: str) -> str:
    try:
        found = client.call(f"get Pod {namespace}/{pod}", client.core.read_namespaced_pod, pod, namespace)
    except ClusterNotFound:
        raise ServiceAccountMissing(
            f"pod {namespace}/{pod} does not exist in the cluster at {client.server}: a token bound to it "
            "would be refused"
        ) from None
    runs_as = found.spec.service_account_name or "default"
    if runs_as != account:
        raise ServiceAccountMissing(
            f"pod {namespace}/{pod} runs as service account {runs_as!r}, not {account!r}: "
            "the API server refuses a token bound to a pod of another account"
        )
    return str(found.metadata.uid)


def look_up(
    client: ClusterClient,
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    pod: str | None = None,
    pod_uid: str | None = None,
) -> AccountUIDs:
    """The UIDs in the cluster; a UID given on the command line must be the cluster's one."""
    account = service_account_uid(client, namespace, name)
    if uid is not None and uid != account:
        raise ServiceAccountMissing(
            f"service account {namespace}/{name} has UID {account}, not {uid}: the API server would refuse the "
            "token (leave --uid out to use the current one)"
        )
    if pod is None:
        return AccountUIDs(account)
    current_pod = bound_pod_uid(client, namespace, pod, name)
    if pod_uid is not None and pod_uid != current_pod:
        raise ServiceAccountMissing(
            f"pod {namespace}/{pod} has UID {current_pod}, not {pod_uid}: the API server would refuse the token"
        )
    return AccountUIDs(account, current_pod)
