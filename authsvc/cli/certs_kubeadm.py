"""`authsvc certs check-expiration` and `authsvc certs renew`: kubeadm's commands, on the home's tree."""

from __future__ import annotations

import datetime as dt

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION
from authsvc.cli.output import emit, output_option, render_table

CERT_COLUMNS = [
    ("CERTIFICATE", "name"),
    ("EXPIRES", "expires"),
    ("RESIDUAL TIME", "residual"),
    ("CERTIFICATE AUTHORITY", "ca"),
    ("EXTERNALLY MANAGED", "external"),
]
CA_COLUMNS = [
    ("CERTIFICATE AUTHORITY", "name"),
    ("EXPIRES", "expires"),
    ("RESIDUAL TIME", "residual"),
    ("EXTERNALLY MANAGED", "external"),
]


@click.command("check-expiration")
@output_option("table", "json")
@click.option(
    "--warn-within", type=DURATION, default="30d", show_default=True, help="Flag what expires sooner than this."
)
@click.pass_obj
def check_expiration(state: CliState, output_format: str, warn_within: dt.timedelta) -> None:
    """Show when each certificate and CA expires, kubeadm's way (kubeconfig certificates included).

    Certificates that expire within --warn-within are flagged on stderr with the command
    that renews them.
    """
    from authsvc.certs.renewal import expiration_report

    report = expiration_report(state.home())
    if output_format == "json":
        emit(report.as_dict(warn_within), "json")
    else:
        click.echo(render_table([e.as_row(report.now) for e in report.certificates], CERT_COLUMNS))
        click.echo()
        click.echo(render_table([e.as_row(report.now) for e in report.authorities], CA_COLUMNS))
    for entry in report.expiring(warn_within):
        what = "CA " if not entry.ca else ""
        hint = "rotate the CA" if not entry.ca else f"run `authsvc certs renew {entry.name}`"
        click.echo(f"warning: {what}{entry.name} expires in {entry.as_row(report.now)['residual']}: {hint}", err=True)


@click.command("renew")
@click.argument("names", nargs=-1, required=True, metavar="all|NAME...")
@click.pass_obj
def renew(state: CliState, names: tuple[str, ...]) -> None:
    """Renew certificates with their own keys and every attribute kept (kubeadm's `certs renew`).

    NAME is kubeadm's name (apiserver, etcd-server, admin.conf, ...), the file's base name
    (etcd/server) or the name of another auto-renewed certificate; `all` renews every one and
    says which it leaves out (a kubeconfig that is missing, or whose client certificate is a file
    its user rotates). A certificate that differs from the settings that shape it (SANs, node
    name, lifetime, key type: see `authsvc pki check`) is reissued to match them. The replaced
    files are kept under <home>/backups/<time>/. Refused, with nothing written, when a CA would
    expire before the renewed certificate.
    """
    from authsvc.certs.renewal import RESTART_HINT
    from authsvc.certs.renewal import renew as renew_certs
    from authsvc.errors import UsageError

    if "all" in names and len(names) > 1:
        raise UsageError("give either all or certificate names, not both")
    result = renew_certs(state.home(), names)
    for renewal in result.renewals:
        expires = f"{renewal.new.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        done = f"serial {renewal.new.serial_number:x}, expires {expires}"
        if renewal.reissue is not None:
            click.echo(f"reissued {renewal.target.name} to match the configuration ({renewal.reissue.changed}; {done})")
        else:
            click.echo(f"renewed {renewal.target.name} ({done})")
    for name, why in result.skipped:
        click.echo(f"not renewed: {name}: {why}")
    if result.renewals:
        click.echo(f"Done renewing certificates: {RESTART_HINT}.")
    elif not result.skipped:
        click.echo("nothing to renew")
