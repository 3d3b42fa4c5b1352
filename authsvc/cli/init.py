"""`authsvc init`: create a home with its configuration and kubeadm's cluster PKI.

The kubeadm options are kubeadm's own flags; they are stored in the `cluster:` section of
authsvc.yaml on the first run. Later runs complete a partial home and never overwrite a file:
an option must agree with a value the file writes down, and may set one it leaves out (for the
files that run makes, with a note that the file does not record it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from authsvc.cli import CliState

if TYPE_CHECKING:
    from authsvc.settings import Settings
    from authsvc.settings.cluster import ClusterSettings

# option name -> cluster settings field
KUBEADM_OPTIONS = {
    "cluster_name": "name",
    "server": "server",
    "control_plane_endpoint": "control_plane_endpoint",
    "apiserver_advertise_address": "advertise_address",
    "apiserver_cert_extra_sans": "apiserver_cert_extra_sans",
    "service_cidr": "service_cidr",
    "dns_domain": "dns_domain",
    "node_name": "node_name",
}


@click.command()
@click.option("--cluster-name", default=None, help="Cluster name in the kubeconfigs. [default: kubernetes]")
@click.option("--control-plane-endpoint", default=None, metavar="HOST[:PORT]", help="Stable IP or DNS name of the API.")
@click.option(
    "--apiserver-advertise-address",
    default=None,
    metavar="IP",
    help="This node's API server address. [default: 127.0.0.1]",
)
@click.option(
    "--apiserver-cert-extra-sans",
    multiple=True,
    metavar="SANS",
    help="Extra SANs (IPs or DNS names, comma-separated) for the API server certificate; repeatable.",
)
@click.option("--service-cidr", default=None, metavar="CIDR", help="Service network. [default: 10.96.0.0/12]")
@click.option("--dns-domain", default=None, help="Cluster DNS domain. [default: cluster.local]")
@click.option("--node-name", default=None, help="This node's name (etcd CN, kubelet user). [default: control-plane]")
@click.option("--server", default=None, metavar="URL", help="API URL for kubeconfigs. [default: from the endpoint]")
@click.option("--phase", type=click.Choice(["certs", "kubeconfig"]), default=None, help="Run one phase only.")
@click.option("--dry-run", is_flag=True, help="Print what would be created; write nothing.")
@click.pass_obj
def init(state: CliState, /, phase: str | None, dry_run: bool, **options: Any) -> None:
    """Create the home: authsvc.yaml and kubeadm's PKI (pki/, *.conf), in kubeadm's layout.

    \b
    Examples:
      authsvc init --control-plane-endpoint k8s.example.com --apiserver-advertise-address 10.0.0.10
      authsvc init --phase certs --dry-run
    Running it again completes a partial home and never overwrites an existing file.
    """
    from authsvc.home.layout import CONFIG_NAME
    from authsvc.init.kubeadm_tree import steps_for_phase
    from authsvc.init.steps import INIT_STEPS, cluster_ca_step, initialize_home
    from authsvc.settings import load_settings

    # --config is honoured like every other command's: a config kept outside the home (a
    # ConfigMap, /etc/authsvc) is read, never shadowed by a copy written into the home.
    config_path = Path(state.config_path) if state.config_path else state.home_path / CONFIG_NAME
    stored = load_settings(config_path) if config_path.exists() else None
    overrides = {KUBEADM_OPTIONS[k]: v for k, v in options.items() if v not in (None, ())}
    settings = _settings_for(config_path, stored, overrides)
    _note_unrecorded(config_path, _unrecorded(stored, settings))
    steps = steps_for_phase(phase, INIT_STEPS, first_pki_step=cluster_ca_step)
    ctx = initialize_home(
        state.home_path,
        settings,
        clock=state.clock(),
        environ=state.environ,
        dry_run=dry_run,
        steps=steps,
        config_path=config_path,
    )
    if dry_run:
        for line in ctx.planned:
            click.echo(f"would {line}")
        return
    for path in ctx.written:
        click.echo(f"created {path}")
    if not ctx.written:
        click.echo(f"{state.home_path} is already initialised; nothing to do")


def _settings_for(config_path: Path, stored: Settings | None, overrides: dict[str, Any]) -> Settings:
    """The stored settings (or new ones) with the options applied.

    Only what the file writes down binds an option (UsageError when they differ); a value the
    file leaves out is a default, which an option may change.
    """
    from authsvc.errors import Conflict
    from authsvc.settings import Settings
    from pki.kubeadm.certlist import control_plane_url

    base = stored or Settings()
    written = base.cluster.model_fields_set  # the keys of the file's cluster section, not the defaults
    cluster = _cluster_with(base.cluster, overrides)
    changed = [f"cluster.{k}" for k in overrides if k in written and getattr(cluster, k) != getattr(base.cluster, k)]
    if changed:
        raise Conflict(f"{config_path} already sets {', '.join(changed)} differently: edit the file to change it")
    endpoint_given = {"control_plane_endpoint", "advertise_address"} & overrides.keys()
    if endpoint_given and "server" not in overrides.keys() | written:
        # kubeadm's kubeconfigs reach the API at the control-plane endpoint; so do authsvc's.
        cluster = cluster.model_copy(update={"server": control_plane_url(cluster.params())})
    return base.model_copy(update={"cluster": cluster})


def _unrecorded(stored: Settings | None, settings: Settings) -> list[str]:
    """The `cluster.*` values this run takes from options that the stored file does not record."""
    if stored is None:
        return []  # the first run writes authsvc.yaml from these settings
    fields = type(settings.cluster).model_fields
    return [f"cluster.{k}" for k in fields if getattr(settings.cluster, k) != getattr(stored.cluster, k)]


def _note_unrecorded(config_path: Path, unrecorded: list[str]) -> None:
    # The file is never rewritten (it may be a read-only ConfigMap): later commands read it, not these options.
    if unrecorded:
        click.echo(
            f"note: {config_path} does not set {', '.join(unrecorded)}: the files made now use the options; "
            "add them to its cluster section so that later commands (issue, pki check) do too",
            err=True,
        )


def _cluster_with(cluster: ClusterSettings, overrides: dict[str, Any]) -> ClusterSettings:
    """`cluster` with the options' values, each checked the way kubeadm checks it (UsageError naming the option)."""
    from pydantic import ValidationError

    from authsvc.errors import UsageError
    from authsvc.settings.cluster import ClusterSettings

    try:
        return ClusterSettings.model_validate({**cluster.model_dump(), **overrides})
    except ValidationError as e:
        raise UsageError(_option_errors(e)) from None


def _option_errors(error: Any) -> str:
    """pydantic's errors, named by the option that carried the value (`--node-name: ...`)."""
    flags = {field: "--" + option.replace("_", "-") for option, field in KUBEADM_OPTIONS.items()}
    problems = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        problems.append(f"{flags.get(field, field)}: {str(item['msg']).removeprefix('Value error, ')}")
    return "; ".join(problems)
