"""`authsvc certs ...` and `authsvc crl`: issue, sign, list and revoke certificates."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from authsvc.cli import CliState, LazyGroup
from authsvc.cli.options import DURATION, NameType
from authsvc.cli.output import emit, output_option

# Commands of this group that live in other modules (kubeadm parity: check-expiration, renew).
CERTS_COMMANDS: dict[str, str] = {}

LIST_COLUMNS = [
    ("SERIAL", "serial"),
    ("NAME", "commonName"),
    ("GROUPS", "groups"),
    ("PROFILE", "profile"),
    ("CA", "ca"),
    ("NOT AFTER", "notAfter"),
    ("STATUS", "status"),
]


@click.group(cls=LazyGroup, lazy=CERTS_COMMANDS)
def certs() -> None:
    """Issue, sign, list and revoke certificates."""


@certs.command("create")
@click.argument("name", type=NameType("certificate name"))
@click.option(
    "--profile", type=click.Choice(["client", "server", "peer", "kubelet-client"]), default="client", show_default=True
)
@click.option(
    "-g",
    "--group",
    "groups",
    multiple=True,
    type=NameType("group"),
    help="Group (O=) of a client certificate; repeatable.",
)
@click.option("--san", "sans", multiple=True, metavar="DNS:x|IP:y", help="Subject alternative name; repeatable.")
@click.option("--ttl", type=DURATION, default=None, help="Lifetime, e.g. 24h, 90d. [default: from config]")
@click.option(
    "--key-type",
    type=click.Choice(["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519"]),
    default=None,
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where NAME.crt and NAME.key go. [default: <home>/issued]",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def create(
    state: CliState,
    name: str,
    profile: str,
    groups: tuple[str, ...],
    sans: tuple[str, ...],
    ttl: dt.timedelta | None,
    key_type: str | None,
    out_dir: Path | None,
    force: bool,
) -> None:
    """Generate a key and a certificate for NAME, signed by the cluster CA under the policy.

    \b
    Examples:
      authsvc certs create alice --group dev --ttl 24h
      authsvc certs create webhook --profile server --san DNS:authsvc.example --san IP:10.0.0.5
    """
    from authsvc.errors import UsageError
    from pki.names import SubjectAltNames
    from pki.profiles import profile_named
    from pki.store import atomic_write

    home = state.home()
    target = out_dir or home.issued_dir
    cert_file, key_file = target / f"{name}.crt", target / f"{name}.key"
    if not force and (cert_file.exists() or key_file.exists()):
        raise UsageError(f"{cert_file} already exists: use --force to replace it")
    chosen = profile_named(profile)
    if chosen.needs_sans and not sans:
        raise UsageError(f"a {profile} certificate needs at least one --san")
    default_ttl = home.settings.pki.client_ttl if profile == "client" else home.settings.pki.server_ttl
    issued = home.issuer().create(
        name,
        profile=chosen,
        groups=groups,
        sans=SubjectAltNames.parse(sans),
        ttl=ttl or default_ttl,
        key_type=key_type or home.settings.pki.key_type,
        requester="cli",
        name=name,
    )
    atomic_write(key_file, issued.key_pem(home.key_passphrase), 0o600)
    atomic_write(cert_file, issued.cert_pem, 0o644)
    expires = f"{issued.record.not_after:%Y-%m-%dT%H:%M:%SZ}"
    click.echo(f"issued {issued.record.serial} → {cert_file} (key {key_file}), expires {expires}")


@certs.command("sign")
@click.argument("csr_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--profile", type=click.Choice(["client", "server", "peer"]), default="client", show_default=True)
@click.option("--ttl", type=DURATION, default=None, help="Lifetime, capped by the policy's max_ttl.")
@click.option(
    "-o",
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the certificate here instead of stdout.",
)
@click.pass_obj
def sign(state: CliState, csr_file: Path, profile: str, ttl: dt.timedelta | None, out: Path | None) -> None:
    """Sign the PKCS#10 request in CSR_FILE; only its subject, key and SANs are used.

    The private key never leaves the requester. Privileged groups (system:masters and
    other system: groups), weak keys, CA:TRUE and lifetimes over the cap are refused.
    """
    from pki.profiles import profile_named
    from pki.store import atomic_write

    home = state.home()
    default_ttl = home.settings.pki.client_ttl if profile == "client" else home.settings.pki.server_ttl
    issued = home.issuer().sign_csr(
        csr_file.read_bytes(), profile=profile_named(profile), ttl=ttl or default_ttl, requester="cli"
    )
    if out is None:
        click.echo(issued.cert_pem.decode(), nl=False)
    else:
        atomic_write(out, issued.cert_pem, 0o644)
        click.echo(f"signed {issued.record.serial} for {issued.record.common_name} → {out}", err=True)


@certs.command("list")
@click.option("--status", type=click.Choice(["valid", "revoked", "superseded"]), default=None)
@output_option()
@click.pass_obj
def list_certs(state: CliState, status: str | None, output_format: str) -> None:
    """List the certificates in the inventory."""
    from pki.inventory import CertStatus

    records = state.home().inventory.certificates(status=CertStatus(status) if status else None)
    emit([r.as_dict() for r in records], output_format, columns=LIST_COLUMNS)


@certs.command("revoke")
@click.argument("serial")
@click.option(
    "--reason", default="unspecified", show_default=True, help="keyCompromise, superseded, cessationOfOperation, ..."
)
@click.pass_obj
def revoke(state: CliState, serial: str, reason: str) -> None:
    """Revoke the certificate with hex SERIAL; the next CRL lists it."""
    home = state.home()
    record = home.inventory.revoke(serial, reason=reason, now=home.clock())
    click.echo(f"revoked {record.serial} ({record.common_name}), reason {reason}")


@click.command("crl")
@click.option("--ca", "ca_name", default="ca", show_default=True, help="Which CA's CRL (ca, front-proxy-ca, etcd/ca).")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write; default stdout (PEM) or <home>/pki/<ca>.crl.",
)
@click.pass_obj
def crl(state: CliState, ca_name: str, der: bool, out: Path | None) -> None:
    """Generate the CRL of a CA from the inventory's revocations."""
    from authsvc.revocation import write_crl

    home = state.home()
    data = write_crl(home, ca_name, der=der, path=out)
    if out is None:
        if der:
            sys.stdout.buffer.write(data)
        else:
            click.echo(data.decode(), nl=False)
