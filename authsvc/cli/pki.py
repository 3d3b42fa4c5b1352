"""`authsvc pki import DIR` and `authsvc pki check [DIR]`: adopt and audit kubeadm PKI directories."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION
from authsvc.cli.output import emit, output_option

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.settings.cluster import ClusterSettings

FINDING_COLUMNS = [("SEVERITY", "severity"), ("CHECK", "check"), ("FILE", "path"), ("FINDING", "message")]


@click.group()
def pki() -> None:
    """Adopt an existing kubeadm PKI directory, or audit one."""


@pki.command("import")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace differing files in the home (kept under backups/).")
@click.pass_obj
def import_pki(state: CliState, source: Path, force: bool) -> None:
    """Validate the kubeadm tree in SOURCE (e.g. /etc/kubernetes/pki) and copy it into the home.

    Every certificate/key pair, every chain and sa.key/sa.pub are checked before anything is
    copied; SOURCE is only read. A new home is created when there is none.
    """
    from authsvc.init.kubeadm_tree import import_tree
    from pki.kubeadm.import_tree import read_kubeadm_tree

    tree = read_kubeadm_tree(source.resolve())
    home = _open_or_create_home(state)
    written = import_tree(home, tree, force=force)
    click.echo(
        f"imported {len(tree.certificates)} certificates and {len(written)} files from {source} into {home.root}"
    )


def _open_or_create_home(state: CliState) -> Home:
    if not (state.home_path / "authsvc.yaml").exists() and state.config_path is None:
        from authsvc.init.steps import INIT_STEPS, cluster_ca_step, initialize_home
        from authsvc.settings import Settings

        # Only the set-up steps: the PKI comes from the import, not from new CAs.
        steps = INIT_STEPS[: INIT_STEPS.index(cluster_ca_step)]
        initialize_home(state.home_path, Settings(), clock=state.clock(), environ=state.environ, steps=steps)
    home: Home = state.home()
    return home


@pki.command("check")
@click.argument("directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@output_option("table", "json")
@click.option("--warn-within", type=DURATION, default="30d", show_default=True, help="Flag expiry sooner than this.")
@click.option(
    "--service-cidr", default=None, help="Service CIDR the API server SANs must cover. [default: from config]"
)
@click.option("--dns-domain", default=None, help="Cluster DNS domain. [default: from config]")
@click.pass_obj
def check(
    state: CliState,
    directory: Path | None,
    output_format: str,
    warn_within: dt.timedelta,
    service_cidr: str | None,
    dns_domain: str | None,
) -> None:
    """Audit a PKI directory (default: the home's pki/) kube-bench style; exit 1 when anything is found.

    Checks: key files 0600, certificates 0644 or stricter, key strength, CA constraints, the
    API server's SANs (first service IP, kubernetes, kubernetes.default, ...svc, ...svc.<domain>),
    expiry within --warn-within, keys that do not match their certificates, broken chains.
    """
    from pki.check import AuditOptions, audit_pki_dir

    cluster = _cluster_settings(state, directory)
    options = AuditOptions(
        now=state.clock()(),
        warn_within=warn_within,
        service_cidr=service_cidr or cluster.service_cidr,
        dns_domain=dns_domain or cluster.dns_domain,
    )
    root = directory or state.home().layout.path("pki")
    findings = audit_pki_dir(root, options)
    if output_format == "json":
        emit({"directory": str(root), "findings": [f.as_dict() for f in findings]}, "json")
    elif findings:
        emit([f.as_dict() for f in findings], "table", columns=FINDING_COLUMNS)
    else:
        click.echo(f"{root}: no findings")
    if findings:
        from authsvc.errors import AuthsvcError

        raise AuthsvcError(f"{len(findings)} finding(s) in {root}")


def _cluster_settings(state: CliState, directory: Path | None) -> ClusterSettings:
    """The home's cluster settings when there is a home (required without DIR), else the defaults."""
    from authsvc.settings.cluster import ClusterSettings

    if directory is not None and not (state.home_path / "authsvc.yaml").exists() and state.config_path is None:
        return ClusterSettings()
    cluster: ClusterSettings = state.home().settings.cluster
    return cluster
