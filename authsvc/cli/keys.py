"""`authsvc keys ...`: the token signing keys: list, phased rotation, public bundle export."""

from __future__ import annotations

from pathlib import Path

import click

from authsvc.cli import CliState
from authsvc.cli.output import emit, output_option

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
    """Token signing keys (pki/sa.key, pki/sa.pub): list, rotate, export the public keys."""


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
