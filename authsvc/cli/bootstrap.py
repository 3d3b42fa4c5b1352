"""`authsvc token bootstrap create|list|delete`: kubeadm-style bootstrap tokens for joining nodes."""

from __future__ import annotations

import datetime as dt

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION
from authsvc.cli.output import emit, output_option

LIST_COLUMNS = [
    ("ID", "id"),
    ("GROUPS", "groups"),
    ("EXPIRES", "expires"),
    ("STATUS", "status"),
    ("DESCRIPTION", "description"),
]
DEFAULT_TTL = dt.timedelta(hours=24)  # kubeadm's default


@click.group()
def bootstrap() -> None:
    """Bootstrap tokens (`<id>.<secret>`): system:bootstrap:<id> in system:bootstrappers."""


@bootstrap.command("create")
@click.option("--ttl", type=DURATION, default=DEFAULT_TTL, show_default="24h", help="Lifetime, e.g. 1h, 2d.")
@click.option(
    "--groups",
    default="",
    metavar="G1,G2",
    help="Extra groups, comma-separated, each system:bootstrappers:<name>.",
)
@click.option("--description", default="", help="What the token is for (shown by list).")
@output_option("token", "json", "yaml", default="token")
@click.pass_obj
def create(state: CliState, ttl: dt.timedelta, groups: str, description: str, output_format: str) -> None:
    """Create a token and print it (it is shown once: only its hash is kept).

    \b
    Example:
      authsvc token bootstrap create --ttl 1h --groups system:bootstrappers:kubeadm:default-node-token
    """
    from authsvc.authn.bootstrap import BootstrapTokenStore

    home = state.home()
    now = home.clock()
    extra = [g.strip() for g in groups.split(",") if g.strip()]
    token, record = BootstrapTokenStore(home.stores.engine).create(
        now=now, ttl=ttl, groups=extra, description=description
    )
    if output_format == "token":
        click.echo(token)
    else:
        emit({"token": token, **record.as_dict(now)}, output_format)


@bootstrap.command("list")
@output_option()
@click.pass_obj
def list_tokens(state: CliState, output_format: str) -> None:
    """List bootstrap tokens (ids, groups, expiry; never the secrets)."""
    from authsvc.authn.bootstrap import BootstrapTokenStore

    home = state.home()
    now = home.clock()
    tokens = BootstrapTokenStore(home.stores.engine).tokens()
    emit([t.as_dict(now) for t in tokens], output_format, columns=LIST_COLUMNS)


@bootstrap.command("delete")
@click.argument("token_id", metavar="ID")
@click.pass_obj
def delete(state: CliState, token_id: str) -> None:
    """Delete the token with ID (the part before the dot).

    Servers that answered for it recently may keep their cached answer for up to authn.cache_ttl.
    """
    from authsvc.authn.bootstrap import BootstrapTokenStore

    BootstrapTokenStore(state.home().stores.engine).delete(token_id)
    click.echo(f"deleted bootstrap token {token_id}")
