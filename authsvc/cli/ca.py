"""`authsvc ca list` and `authsvc ca rotate --phase prepare|switch|finish [--ca NAME]`."""

from __future__ import annotations

import click

from authsvc.cli import CliState
from authsvc.cli.output import emit, output_option

LIST_COLUMNS = [
    ("CA", "name"),
    ("SUBJECT", "subject"),
    ("EXPIRES", "notAfter"),
    ("DAYS LEFT", "daysLeft"),
    ("KEY", "key"),
    ("BUNDLE", "bundle"),
    ("ROLLOVER", "rollover"),
    ("NEXT", "next"),
]


@click.group()
def ca() -> None:
    """The home's certificate authorities: list them, roll one over."""


@ca.command("list")
@output_option()
@click.pass_obj
def list_cas(state: CliState, output_format: str) -> None:
    """Every CA with its expiry, whether its key is here, its trust bundle and rollover phase."""
    from authsvc.rotation.ca_rollover import ca_list

    emit(ca_list(state.home()), output_format, columns=LIST_COLUMNS)


@ca.command("rotate")
@click.option("--phase", type=click.Choice(["prepare", "switch", "finish"]), required=True, help="Rollover phase.")
@click.option("--ca", "ca_name", default="ca", show_default=True, help="The CA: ca, front-proxy-ca, etcd/ca, ...")
@click.option("--force", is_flag=True, help="switch: do not wait out rotation.ca_publish_before_switch.")
@click.pass_obj
def rotate(state: CliState, phase: str, ca_name: str, force: bool) -> None:
    """Roll a CA over without breaking anything that trusts it: prepare → switch → finish.

    \b
    prepare  make the new CA; pki/<ca>.crt becomes the bundle [old, new], and the kubeconfigs
             authsvc keeps trust both. Copy the bundle wherever the CA is trusted, reload.
    switch   the new CA signs; every automatic certificate of the CA is re-issued from it.
             Restart the servers that use them. Old and new certificates both verify.
    finish   once nothing valid was signed by the old CA: the bundle is [new] again and
             the old key goes to backups/.

    A phase asked for out of order is refused with the reason; an interrupted phase is
    finished by running it again.
    """
    from authsvc.errors import UsageError
    from authsvc.rotation.ca_rollover import ca_rotate
    from pki.rotation.rollover import Phase

    if force and phase != "switch":
        raise UsageError("--force only applies to --phase switch")
    result = ca_rotate(state.home(), Phase(phase), ca_name, force=force)
    for message in result.messages:
        click.echo(message)
    resumed = " (resumed an interrupted run)" if result.resumed else ""
    click.echo(f"CA {result.ca}: {result.state.state.value}{resumed}. Next: {result.next_step}")
