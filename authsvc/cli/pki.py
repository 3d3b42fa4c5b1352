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
    from authsvc.adopt.adoption import AdoptionReport
    from authsvc.home.opened import Home
    from authsvc.settings.cluster import ClusterSettings
    from pki.check import Finding

FINDING_COLUMNS = [("SEVERITY", "severity"), ("CHECK", "check"), ("FILE", "path"), ("FINDING", "message")]


@click.group()
def pki() -> None:
    """Adopt an existing kubeadm PKI directory, or audit one."""


@pki.command("import")
@click.argument("source", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--kubeconfig-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Where kubeadm's admin.conf, kubelet.conf, ... are. [default: the directory above SOURCE]",
)
@click.option(
    "--cluster-config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="kubeadm's configuration file (ClusterConfiguration, InitConfiguration): the settings it gives "
    "win over what the files suggest.",
)
@click.option(
    "--in-place",
    is_flag=True,
    help="Adopt the home's own pki/ (the home is /etc/kubernetes on a control-plane node): nothing is "
    "copied; renewals and rotations write the files kube-apiserver reads, with backups.",
)
@click.option("--force", is_flag=True, help="Replace differing files in the home (kept under backups/).")
@click.pass_obj
def import_pki(
    state: CliState,
    source: Path | None,
    kubeconfig_dir: Path | None,
    cluster_config: Path | None,
    in_place: bool,
    force: bool,
) -> None:
    """Adopt a kubeadm cluster: validate the tree in SOURCE (e.g. /etc/kubernetes/pki) and its
    kubeconfigs, infer the cluster's settings, and make the home from which every command works.

    \b
    Examples:
      authsvc --home /srv/authsvc pki import /etc/kubernetes/pki
      authsvc --home /etc/kubernetes pki import --in-place          # on a control-plane node
      authsvc pki import /etc/kubernetes/pki --cluster-config kubeadm-config.yaml

    Every certificate/key pair, every chain, sa.key/sa.pub and every kubeconfig's embedded
    certificate are checked before anything is written; SOURCE is only read. A new home's
    authsvc.yaml gets the cluster's settings (API server SANs, node name, endpoint, cluster
    name, ...), each printed with where it was read; an existing authsvc.yaml is never changed
    (a note says where it differs). authsvc's own webhook certificates are created if missing.
    """
    from authsvc.adopt.adoption import AdoptRequest, adopt
    from authsvc.errors import UsageError
    from authsvc.home.layout import CONFIG_NAME

    if source is None and not in_place:
        raise UsageError("give the kubeadm PKI directory (e.g. /etc/kubernetes/pki), or --in-place")
    config_path = Path(state.config_path) if state.config_path else state.home_path / CONFIG_NAME
    request = AdoptRequest(
        source or state.home_path / "pki", state.home_path, config_path, kubeconfig_dir, cluster_config, in_place, force
    )
    _print_adoption(adopt(request, clock=state.clock(), environ=state.environ))


def _print_adoption(report: AdoptionReport) -> None:
    where = "into authsvc.yaml" if report.config_written else "(authsvc.yaml kept as it is)"
    for item in report.inferred:
        click.echo(f"inferred cluster.{item.field}: {_shown(item.value)} ({item.source}) {where}")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if report.in_place:
        click.echo(
            f"adopted {report.source} in place: {report.certificates} certificates recorded, no file copied; "
            f"renewals write these files, keeping the old ones under {report.home / 'backups'}/"
        )
    else:
        click.echo(
            f"imported {report.certificates} certificates and {len(report.copied)} files from {report.source} "
            f"into {report.home}"
        )
    if report.kubeconfigs:
        click.echo(f"managed kubeconfigs (renewed by `certs renew` and `rotate`): {', '.join(report.kubeconfigs)}")
    for name, why in report.not_managed:
        click.echo(f"not managed: {name}: {why} (`certs check-expiration` and `certs renew all` leave it out)")
    for path in report.created:
        if path.suffix == ".key" and path.with_suffix(".crt") in report.created:
            continue  # said with its certificate
        pair = f"{path} and {path.with_suffix('.key').name}" if path.suffix == ".crt" else str(path)
        click.echo(f"created {pair} ({_purpose(path)})")


def _shown(value: object) -> str:
    from pki.durations import format_duration

    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, dt.timedelta):
        return format_duration(value)
    return str(value)


def _purpose(path: Path) -> str:
    purposes = {
        "serving": "authsvc serve's TLS certificate, signed by the cluster CA",
        "webhook-client-ca": "the CA of the webhook's callers",
        "apiserver-webhook-client": "kube-apiserver's client certificate for the webhook (`authsvc webhook-config`)",
        "sa": "the token signing key",
    }
    return purposes.get(path.stem, "authsvc's own")


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
    For the home's own pki/ also: `drift` (a certificate that differs from the settings that
    shape it: SANs, node name, lifetime, key type; `certs renew` reissues it to match) and
    `key-at-rest` (keys encrypted or in clear against pki.key_passphrase_* and the rule of
    docs/pki.md; `keys encrypt|decrypt` fixes them).
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
    if _is_home_pki(state, root):
        findings += home_findings(state.home(), root)
    if output_format == "json":
        emit({"directory": str(root), "findings": [f.as_dict() for f in findings]}, "json")
    elif findings:
        emit([f.as_dict() for f in findings], "table", columns=FINDING_COLUMNS)
    else:
        click.echo(f"{root}: no findings")
    if findings:
        from authsvc.errors import AuthsvcError

        raise AuthsvcError(f"{len(findings)} finding(s) in {root}")


def _is_home_pki(state: CliState, root: Path) -> bool:
    has_home = (state.home_path / "authsvc.yaml").exists() or state.config_path is not None
    return has_home and root.resolve() == (state.home_path / "pki").resolve()


def home_findings(home: Home, root: Path) -> list[Finding]:
    """What only a home can say: drift from its settings, keys at rest against its passphrase setting."""
    import os

    from authsvc.certs.key_encryption import key_findings
    from authsvc.drift.detect import detect_drift
    from pki.check import Finding, Severity

    findings = key_findings(home)
    for drift in detect_drift(home):
        where = os.path.relpath(drift.expected.path, root)
        findings.append(Finding("drift", where, Severity.WARNING, f"{drift.describe()}: {drift.fix}"))
    return findings


def _cluster_settings(state: CliState, directory: Path | None) -> ClusterSettings:
    """The home's cluster settings when there is a home (required without DIR), else the defaults."""
    from authsvc.settings.cluster import ClusterSettings

    if directory is not None and not (state.home_path / "authsvc.yaml").exists() and state.config_path is None:
        return ClusterSettings()
    cluster: ClusterSettings = state.home().settings.cluster
    return cluster
