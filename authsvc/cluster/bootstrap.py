"""`authsvc cluster bootstrap`: apply bootstrap_objects' objects for this home's cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsvc.cluster import apply
from authsvc.cluster.apply import Change
from authsvc.cluster.bootstrap_objects import bootstrap_objects
from authsvc.cluster.bootstrap_tokens import cluster_tokens, signing_secrets
from pki.kubeadm.certlist import control_plane_url
from pki.store import certs_to_pem, load_certificates

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient
    from authsvc.home.opened import Home

NOT_SIGNED = (
    "no cluster connection: cluster-info is shown without jws-kubeconfig-* signatures "
    "(they are computed from the bootstrap-token Secrets in kube-system)"
)


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    objects: tuple[Any, ...]
    # Empty without a connection (nothing was compared with the cluster).
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()


def desired_objects(home: Home, client: ClusterClient | None) -> tuple[list[Any], tuple[str, ...]]:
    """The objects for this home: admin.conf's server (kubeadm's control-plane endpoint), the
    cluster CA, and a signature for each bootstrap token in the cluster that may sign."""
    server = control_plane_url(home.settings.cluster.params())
    ca_pem = certs_to_pem(load_certificates(home.layout.cert_path("ca"), what="cluster CA certificate"))
    if client is None:
        return bootstrap_objects(server, ca_pem, {}), (NOT_SIGNED,)
    signing = signing_secrets(cluster_tokens(client), home.clock())
    return bootstrap_objects(server, ca_pem, signing), ()


def bootstrap_cluster(home: Home, client: ClusterClient | None, *, dry_run: bool, adopt: bool) -> BootstrapResult:
    """Plan, check (server-side dry run) and, unless `dry_run`, write. Without a client only a
    dry run is possible: the objects, not compared with anything."""
    objects, notes = desired_objects(home, client)
    if client is None:
        return BootstrapResult(tuple(objects), (), notes)
    changes = apply.plan(client, objects, adopt=adopt)
    apply.execute(client, changes, dry_run=dry_run)
    return BootstrapResult(tuple(objects), tuple(changes), notes)
