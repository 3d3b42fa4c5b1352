"""`authsvc cluster ...`: the objects authsvc keeps in the cluster it gives access to."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from authsvc.cli import CliState
from authsvc.cli.options import cluster_options
from authsvc.cli.output import output_option

if TYPE_CHECKING:
    from authsvc.cluster.apply import Change


@click.group()
def cluster() -> None:
    """The objects authsvc keeps in the cluster (needs a cluster connection: --kubeconfig)."""


@cluster.command("bootstrap")
@cluster_options
@click.option("--dry-run", is_flag=True, help="Check and print; change nothing (works without a connection).")
@click.option(
    "--adopt",
    is_flag=True,
    help="Replace objects of the same names that authsvc did not create and that differ (refused otherwise).",
)
@output_option("text", "yaml", "json", default="text")
@click.pass_obj
def bootstrap(state: CliState, dry_run: bool, adopt: bool, output_format: str) -> None:
    """Create or update what `kubeadm init` creates so that its PKI works.

    \b
    - ClusterRoleBinding kubeadm:cluster-admins -> cluster-admin (admin.conf's group)
    - bootstrap tokens: kubeadm:kubelet-bootstrap, kubeadm:node-autoapprove-bootstrap,
      kubeadm:node-autoapprove-certificate-rotation, kubeadm:get-nodes
    - ConfigMap kube-public/cluster-info (server, CA, a jws-kubeconfig-<id> signature per
      signing bootstrap token) and the Role/RoleBinding that let anyone read it

    Every object is labelled app.kubernetes.io/managed-by=authsvc. Running it again changes
    nothing unless something differs; every write is first checked by the API server (dry run),
    so a kubeconfig without the rights changes nothing.

    \b
    Examples:
      authsvc cluster bootstrap --kubeconfig authsvc-data/super-admin.conf
      authsvc cluster bootstrap --dry-run -o yaml          # the objects, for kubectl apply -f -
    """
    from authsvc.cluster.bootstrap import bootstrap_cluster

    client = state.cluster(required=not dry_run)
    result = bootstrap_cluster(state.home(), client, dry_run=dry_run, adopt=adopt)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if output_format != "text":
        print_objects(result.objects, output_format)
        report_changes(result.changes, dry_run=dry_run, err=True)
        return
    if client is None:
        for obj in result.objects:
            click.echo(f"{object_name(obj)} (dry run, not compared with a cluster)")
        return
    report_changes(result.changes, dry_run=dry_run)


def object_name(obj: Any) -> str:
    from authsvc.cluster.objects import ObjectRef

    ref = ObjectRef.of(obj)
    return ref.kubectl_name + (f" -n {ref.namespace}" if ref.namespace else "")


def report_changes(changes: Sequence[Change], *, dry_run: bool, err: bool = False) -> None:
    for change in changes:
        click.echo(change.describe(dry_run=dry_run), err=err)


def print_objects(objects: Sequence[Any], output_format: str) -> None:
    """YAML documents or a v1 List, as `kubectl apply -f` reads them (the client's serialization)."""
    from authsvc.cluster.objects import serialize

    serialized = [serialize(obj) for obj in objects]
    if output_format == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": serialized}, indent=2))
        return
    import yaml

    click.echo(yaml.safe_dump_all(serialized, sort_keys=False).rstrip())
