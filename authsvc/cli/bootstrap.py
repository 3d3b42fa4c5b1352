"""`authsvc token bootstrap create|list|delete`: kubeadm-style bootstrap tokens for joining nodes."""

from __future__ import annotations

import datetime as dt

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION, cluster_options
from authsvc.cli.output import emit, output_option

LIST_COLUMNS = [
    ("ID", "id"),
    ("GROUPS", "groups"),
    ("USAGES", "usages"),
    ("EXPIRES", "expires"),
    ("STATUS", "status"),
    ("LOCATION", "location"),
    ("DRIFT", "drift_text"),
    ("DESCRIPTION", "description"),
]
DEFAULT_TTL = dt.timedelta(hours=24)  # kubeadm's default
# kubeadm's defaults for `kubeadm token create`: the group kubeadm's RBAC (and `authsvc cluster
# bootstrap`'s) lets post node CSRs, and both usages.
DEFAULT_GROUPS = "system:bootstrappers:kubeadm:default-node-token"
DEFAULT_USAGES = "signing,authentication"


@click.group()
def bootstrap() -> None:
    """Bootstrap tokens (`<id>.<secret>`): system:bootstrap:<id> in system:bootstrappers.

    authsvc keeps them in its database (the webhook answers from it); connected to a cluster
    (--kubeconfig, cluster.api.kubeconfig, KUBECONFIG), it also keeps them as kubeadm's
    bootstrap-token-<id> Secrets in kube-system and signs kube-public/cluster-info with them.
    """


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


@bootstrap.command("create")
@click.option("--ttl", type=DURATION, default=DEFAULT_TTL, show_default="24h", help="Lifetime, e.g. 1h, 2d.")
@click.option(
    "--groups",
    default=DEFAULT_GROUPS,
    show_default=True,
    metavar="G1,G2",
    help="Extra groups, comma-separated, each system:bootstrappers:<name> ('' for none).",
)
@click.option(
    "--usages",
    default=DEFAULT_USAGES,
    show_default=True,
    metavar="U1,U2",
    help="What the token may do: authentication (log in), signing (sign cluster-info for kubeadm join).",
)
@click.option("--description", default="", help="What the token is for (shown by list).")
@output_option("token", "json", "yaml", default="token")
@cluster_options
@click.pass_obj
def create(state: CliState, ttl: dt.timedelta, groups: str, usages: str, description: str, output_format: str) -> None:
    """Create a token and print it (it is shown once: authsvc keeps only its hash; the cluster's
    Secret holds it, as kubeadm's does).

    \b
    Examples:
      authsvc token bootstrap create --ttl 1h
      authsvc token bootstrap create --kubeconfig admin.conf --description node-7
      kubeadm join 10.0.0.1:6443 --token "$(authsvc token bootstrap create)" \\
          --discovery-token-ca-cert-hash sha256:...
    """
    from authsvc.authn.bootstrap import BootstrapTokenStore
    from authsvc.cli.cluster import report_changes
    from authsvc.cluster.bootstrap_tokens import BootstrapTokens

    home = state.home()
    now = home.clock()
    tokens = BootstrapTokens(BootstrapTokenStore(home.stores.engine), state.cluster())
    created = tokens.create(now=now, ttl=ttl, groups=_split(groups), usages=_split(usages), description=description)
    report_changes(created.changes, dry_run=False, err=True)
    for note in created.notes:
        click.echo(f"note: {note}", err=True)
    if output_format == "token":
        click.echo(created.token)
    else:
        emit({"token": created.token, **created.record.as_dict(now)}, output_format)


@bootstrap.command("list")
@output_option()
@cluster_options
@click.pass_obj
def list_tokens(state: CliState, output_format: str) -> None:
    """List bootstrap tokens (ids, groups, usages, expiry; never the secrets).

    Connected to a cluster, the list also has the tokens only the cluster holds (made by
    kubeadm, say), says where each one lives (authsvc, cluster, or both) and what differs
    between the two (DRIFT): a missing Secret, other groups or expiry, another secret, a
    missing cluster-info signature.
    """
    from authsvc.authn.bootstrap import BootstrapTokenStore
    from authsvc.cluster.bootstrap_tokens import BootstrapTokens

    home = state.home()
    client = state.cluster()
    rows = BootstrapTokens(BootstrapTokenStore(home.stores.engine), client).rows(now=home.clock())
    if client is None:
        click.echo("note: no cluster connection: authsvc's own tokens only", err=True)
    if output_format == "table":
        rows = [{**row, "drift_text": "; ".join(row["drift"]) or None} for row in rows]
    emit(rows, output_format, columns=LIST_COLUMNS)


@bootstrap.command("delete")
@click.argument("token_id", metavar="ID")
@cluster_options
@click.pass_obj
def delete(state: CliState, token_id: str) -> None:
    """Delete the token with ID (the part before the dot): from authsvc and, when connected, its
    Secret and its cluster-info signature.

    Servers that answered for it recently may keep their cached answer for up to authn.cache_ttl.
    """
    from authsvc.authn.bootstrap import BootstrapTokenStore
    from authsvc.cli.cluster import report_changes
    from authsvc.cluster.bootstrap_tokens import BootstrapTokens

    home = state.home()
    tokens = BootstrapTokens(BootstrapTokenStore(home.stores.engine), state.cluster())
    changes = tokens.delete(token_id, now=home.clock())
    report_changes(changes, dry_run=False)
    click.echo(f"deleted bootstrap token {token_id}")
