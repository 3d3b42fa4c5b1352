"""`authsvc keys ...`: the token signing keys (list, phased rotation, public bundle export), and
the home's private keys at rest (encrypt, decrypt)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState
from authsvc.cli.output import emit, output_option

if TYPE_CHECKING:
    from authsvc.certs.key_encryption import KeyConversion

LIST_COLUMNS = [
    ("KID", "kid"),
    ("ALG", "algorithm"),
    ("STATE", "state"),
    ("ORIGIN", "origin"),
    ("CREATED", "createdAt"),
    ("NEXT PHASE AFTER", "nextPhaseAfter"),
]


@click.group()
def keys() -> None:
    """Token signing keys, and private keys at rest.

    \b
    list, rotate, export-public   the token signing keys (pki/sa.key, pki/sa.pub)
    encrypt, decrypt              every private key of the home at rest (pki.key_passphrase_*)
    """


@keys.command("list")
@output_option()
@click.pass_obj
def list_keys(state: CliState, output_format: str) -> None:
    """List every signing key with its state (next, active, retiring, retired)."""
    from pki.tokens.rotation import key_schedule

    emit(key_schedule(state.home().stores.token_service), output_format, columns=LIST_COLUMNS)


@keys.command("rotate")
@click.option("--phase", type=click.Choice(["prepare", "activate", "retire"]), required=True, help="Rotation phase.")
@click.option("--force", is_flag=True, help="activate: do not wait out tokens.publish_before_activate.")
@click.pass_obj
def rotate(state: CliState, phase: str, force: bool) -> None:
    """Run one phase of a key rotation: prepare → activate → retire, in that order.

    \b
    prepare   publish a new key (JWKS, sa.pub) without signing with it
    activate  sign with it (it becomes pki/sa.key); the old key is retiring
    retire    drop the old key, once the last token it signed has expired

    A phase asked for out of order is refused with the reason.
    """
    from authsvc.errors import UsageError

    if force and phase != "activate":
        raise UsageError("--force only applies to --phase activate")
    result = state.home().stores.token_service.rotate(phase, force=force)
    click.echo(result.message)


@keys.command("export-public")
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (for --service-account-key-file). [default: stdout]",
)
@click.pass_obj
def export_public(state: CliState, out: Path | None) -> None:
    """The PEM bundle of every published public key (what pki/sa.pub holds)."""
    from authsvc.errors import HomeError
    from pki.store import CERT_MODE, atomic_write
    from pki.tokens.jwks import public_keys_pem

    published = state.home().stores.token_service.published_keys()
    if not published:
        # An empty bundle as --service-account-key-file leaves kube-apiserver with no key to
        # verify service-account tokens: refuse rather than write (or print) nothing.
        raise HomeError("no token signing keys to export: run `authsvc init` to create pki/sa.key")
    pem = public_keys_pem(published)
    if out is None:
        click.echo(pem.decode(), nl=False)
        return
    atomic_write(out, pem, CERT_MODE)
    click.echo(f"wrote {len(published)} public keys to {out}", err=True)


names_argument = click.argument("names", nargs=-1, metavar="[NAME]...")
dry_run_option = click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")


@keys.command("encrypt")
@names_argument
@dry_run_option
@click.pass_obj
def encrypt(state: CliState, names: tuple[str, ...], dry_run: bool) -> None:
    """Encrypt the home's private keys at rest with the configured passphrase.

    Not about token signing: this is the files under <home>/pki/. Which keys: the CA keys
    (ca, front-proxy-ca, etcd/ca, authsvc/webhook-client-ca, ...), or the NAMEs given. Keys that
    another program reads stay in clear, 0600, and are listed with the reason: sa.key
    (kube-apiserver's --service-account-signing-key-file), the leaf keys, and in an in-place
    home ca.key (kube-controller-manager's --cluster-signing-key-file).

    \b
    Set the passphrase first (authsvc.yaml): pki.key_passphrase_file, _env or _command.
    Each key is converted and read back before any file is written; the old files are kept
    under <home>/backups/<time>/ (in clear: delete them once the passphrase is safe).
    """
    from authsvc.certs.key_encryption import encrypt_keys

    _report(encrypt_keys(state.home(), names, dry_run=dry_run), "encrypted", dry_run)


@keys.command("decrypt")
@names_argument
@dry_run_option
@click.pass_obj
def decrypt(state: CliState, names: tuple[str, ...], dry_run: bool) -> None:
    """Write the home's encrypted private keys in clear (0600), with the configured passphrase.

    Not about token signing: this is the files under <home>/pki/. Every encrypted key, or the
    NAMEs given (e.g. `sa` for an sa.key an older release encrypted). To stop encrypting at
    rest: run this, then remove pki.key_passphrase_* from authsvc.yaml (while it is set, CA keys
    in clear are refused). The old files are kept under <home>/backups/<time>/.
    """
    from authsvc.certs.key_encryption import decrypt_keys

    _report(decrypt_keys(state.home(), names, dry_run=dry_run), "decrypted", dry_run)


def _report(result: KeyConversion, done: str, dry_run: bool) -> None:
    verb = f"would be {done}" if dry_run else done
    for key in result.changed:
        click.echo(f"{verb}: pki/{key.name}.key")
    for key in result.kept_clear:
        click.echo(f"left in clear: pki/{key.name}.key ({key.why_clear})")
    if not result.changed:
        click.echo(f"nothing to do: no key to be {done}")
    if result.backup is not None:
        click.echo(f"the old files are in {result.backup}/ (remove them once you no longer need them)")
