"""`authsvc certs ...` and `authsvc crl`: issue, sign, list and revoke certificates."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState, LazyGroup
from authsvc.cli.options import DURATION, NameType
from authsvc.cli.output import emit, output_option
from pki.keys import KEY_TYPES, PASSPHRASE_SETTINGS

if TYPE_CHECKING:
    from authsvc.home.opened import Home

# Commands of this group that live in other modules (kubeadm parity: check-expiration, renew).
CERTS_COMMANDS: dict[str, str] = {
    "check-expiration": "authsvc.cli.certs_kubeadm:check_expiration",
    "renew": "authsvc.cli.certs_kubeadm:renew",
}

LIST_COLUMNS = [
    ("SERIAL", "serial"),
    ("NAME", "commonName"),
    ("GROUPS", "groups"),
    ("PROFILE", "profile"),
    ("CA", "ca"),
    ("NOT AFTER", "notAfter"),
    ("STATUS", "status"),
]

# RFC 5280 reason names (pki.revocation.REVOCATION_REASONS; a test keeps the two equal). Spelled
# out here so that `--help` does not import the inventory.
REVOCATION_REASON_NAMES = (
    "unspecified",
    "keyCompromise",
    "cACompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "certificateHold",
    "privilegeWithdrawn",
    "aACompromise",
)

ca_option = click.option(
    "--ca",
    "ca_name",
    default="ca",
    show_default=True,
    metavar="NAME",
    help="Signing CA: <home>/pki/NAME.crt and .key (plus NAME.chain.crt for an intermediate).",
)


@click.group(cls=LazyGroup, lazy=CERTS_COMMANDS)
def certs() -> None:
    """Issue, sign, list and revoke certificates.

    \b
    Examples:
      authsvc certs create alice --group dev --ttl 24h
      authsvc certs sign bob.csr -o bob.crt
      authsvc certs list -o json
      authsvc certs revoke 5f3a... --reason keyCompromise && authsvc crl -o ca.crl
    """


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
@click.option("--key-type", type=click.Choice(KEY_TYPES), default=None, help="[default: pki.key_type, ecdsa-p256]")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where NAME.crt and NAME.key go. [default: <home>/issued]",
)
@ca_option
@click.option(
    "--encrypt-key",
    is_flag=True,
    help="Encrypt NAME.key with the configured pki.key_passphrase_* (kubectl cannot read such a key).",
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
    ca_name: str,
    encrypt_key: bool,
    force: bool,
) -> None:
    """Generate a key and a certificate for NAME, signed by the cluster CA under the policy.

    For a client certificate NAME is the user (CN) and each --group an O; for kubelet-client
    NAME is the node and the subject becomes CN=system:node:NAME, O=system:nodes. The key
    (0600) and the certificate (followed by any intermediate CA) are written atomically. Like
    kubeadm's leaf keys, the key is in clear even when pki.key_passphrase_* encrypts the CA
    keys (kubectl, kube-apiserver and Go programs cannot decrypt), unless --encrypt-key.

    \b
    Examples:
      authsvc certs create alice --group dev --ttl 24h
      authsvc certs create webhook --profile server --san DNS:authsvc.authsvc.svc --san IP:127.0.0.1
      authsvc certs create worker-1 --profile kubelet-client --key-type ecdsa-p384
    """
    from authsvc.errors import ConfigError, Conflict, UsageError
    from pki.names import SubjectAltNames
    from pki.profiles import profile_named
    from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many

    home = state.home()
    if encrypt_key and home.secrets.key_passphrase is None:
        raise ConfigError(f"--encrypt-key needs {PASSPHRASE_SETTINGS} in the config")
    target = out_dir or home.layout.issued_dir
    cert_file, key_file = target / f"{name}.crt", target / f"{name}.key"
    if not force and (cert_file.exists() or key_file.exists()):
        raise Conflict(f"{cert_file} already exists: use --force to replace it")
    chosen = profile_named(profile)
    if chosen.needs_sans and not sans:
        raise UsageError(f"a {profile} certificate needs at least one --san")
    issued = home.stores.issuer(ca_name).create(
        name,
        profile=chosen,
        groups=groups,
        sans=SubjectAltNames.parse(sans),
        ttl=ttl or _default_ttl(home, profile),
        key_type=key_type or home.settings.pki.key_type,
        requester="cli",
        name=name,
    )
    # The key first: a crash between the two renames must not leave a certificate without its key.
    atomic_write_many(
        [
            PendingFile(key_file, issued.key_pem(home.secrets.key_passphrase if encrypt_key else None), KEY_MODE),
            PendingFile(cert_file, issued.chain_pem, CERT_MODE),
        ]
    )
    expires = f"{issued.record.not_after:%Y-%m-%dT%H:%M:%SZ}"
    click.echo(f"issued {issued.record.serial} -> {cert_file} (key {key_file}), expires {expires}")


def _default_ttl(home: Home, profile: str) -> dt.timedelta:
    pki = home.settings.pki
    return pki.client_ttl if profile == "client" else pki.server_ttl


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
    help="Write the certificate (and any intermediate) here instead of stdout.",
)
@ca_option
@click.pass_obj
def sign(
    state: CliState, csr_file: Path, profile: str, ttl: dt.timedelta | None, out: Path | None, ca_name: str
) -> None:
    """Sign the PKCS#10 request in CSR_FILE; only its subject, key and SANs are used.

    The private key never leaves the requester. The request's signature is checked;
    privileged groups (system:masters and other system: groups), weak keys (RSA < 2048,
    curves other than P-256/P-384), CA:TRUE, SANs outside pki.policy and lifetimes over
    pki.policy.max_ttl are refused with the reason, and nothing is recorded.

    \b
    Examples:
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -noenc \\
          -keyout bob.key -subj "/O=dev/CN=bob" -out bob.csr
      authsvc certs sign bob.csr --ttl 12h -o bob.crt
      authsvc certs sign web.csr --profile server > web.crt
    """
    from pki.profiles import profile_named
    from pki.store import CERT_MODE, atomic_write, read_bytes

    home = state.home()
    issued = home.stores.issuer(ca_name).sign_csr(
        read_bytes(csr_file, what="CSR file"),
        profile=profile_named(profile),
        ttl=ttl or _default_ttl(home, profile),
        requester="cli",
    )
    if out is None:
        click.echo(issued.chain_pem.decode(), nl=False)
    else:
        atomic_write(out, issued.chain_pem, CERT_MODE)
        click.echo(f"signed {issued.record.serial} for {issued.record.common_name} -> {out}", err=True)


@certs.command("list")
@click.option("--status", type=click.Choice(["valid", "revoked", "superseded"]), default=None)
@click.option("--ca", "ca_name", default=None, metavar="NAME", help="Only certificates signed by this CA.")
@output_option()
@click.pass_obj
def list_certs(state: CliState, status: str | None, ca_name: str | None, output_format: str) -> None:
    """List the certificates in the inventory (CAs included), oldest first.

    \b
    Examples:
      authsvc certs list
      authsvc certs list --status revoked -o json
      authsvc certs list -o yaml | grep -A3 alice
    """
    from pki.inventory import CertStatus

    records = state.home().stores.inventory.certificates(status=CertStatus(status) if status else None, ca_name=ca_name)
    emit([r.as_dict() for r in records], output_format, columns=LIST_COLUMNS)


@certs.command("revoke")
@click.argument("serial")
@click.option("--reason", type=click.Choice(REVOCATION_REASON_NAMES), default="unspecified", show_default=True)
@click.option("--comment", default="", help="Why, in your words (kept in the inventory and the audit trail).")
@click.pass_obj
def revoke(state: CliState, serial: str, reason: str, comment: str) -> None:
    """Revoke the certificate with hex SERIAL (as `certs list` or `openssl x509 -serial` shows it).

    The next `authsvc crl` lists it, and servers that load that CRL (granian's --ssl-crl for the
    webhook's clients, an ingress) refuse it. kube-apiserver does NOT: it never checks revocation
    (kubernetes#18982), so a revoked client certificate keeps authenticating until it expires.
    What ends its rights is RBAC: `authsvc access revoke USER` removes the bindings authsvc
    manages, lists the others, and bans the user.

    \b
    Examples:
      authsvc certs revoke 5f3a9c... --reason keyCompromise
      authsvc certs revoke 5F:3A:9C:... && authsvc crl -o /etc/authsvc/ca.crl
    """
    from authsvc.access.revoke import revoke_certificate

    record = revoke_certificate(state.home(), serial, actor=state.actor, reason=reason, comment=comment)
    click.echo(f"revoked {record.serial} ({record.common_name}), reason {reason}")
    if record.profile in ("client", "kubelet-client"):
        click.echo(
            f"note: kube-apiserver does not check revocation: this certificate authenticates as "
            f"{record.common_name} until {record.not_after:%Y-%m-%dT%H:%MZ}; remove its bindings "
            f"(authsvc access revoke {record.common_name} does, and bans the name)",
            err=True,
        )


@click.command("crl")
@click.option("--ca", "ca_name", default="ca", show_default=True, help="Which CA's CRL (ca, front-proxy-ca, etcd/ca).")
@click.option("--der", is_flag=True, help="DER instead of PEM.")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write; default stdout. A PEM copy always goes to <home>/pki/<ca>.crl.",
)
@click.pass_obj
def crl(state: CliState, ca_name: str, der: bool, out: Path | None) -> None:
    """Generate the CRL of a CA from the inventory's revocations, signed by that CA.

    nextUpdate is now + pki.crl_next_update (default 7d): regenerate before then (cron).

    \b
    Examples:
      authsvc crl -o ca.crl
      authsvc crl --der -o ca.crl.der
      openssl verify -crl_check -CRLfile ca.crl -CAfile <home>/pki/ca.crt alice.crt
    """
    from authsvc.certs.crl import write_crl

    home = state.home()
    data = write_crl(home, ca_name, der=der, path=out)
    if out is None:
        if der:
            sys.stdout.buffer.write(data)
        else:
            click.echo(data.decode(), nl=False)
