"""`authsvc tokens static add|list|remove`: static tokens without hand-editing a CSV.

The file is kube-apiserver's `--token-auth-file` format (`token,user,uid,"g1,g2"`), by default
`authn.tokenfile.path`, which authsvc's webhook reads (and re-reads when it changes: a new token
works at once, a removed one stops within the webhook's and the API server's caches). Entries are
stored as `sha256:<hex>` unless --plain: the file then never holds a usable token. kube-apiserver's
own --token-auth-file cannot read hashes, so a file for it takes --plain (and is itself a secret,
0600). The token is printed once, on stdout; nothing else ever shows it.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState
from authsvc.cli.options import NameType
from authsvc.cli.output import emit, output_option
from authsvc.errors import ConfigError, InvalidInput, NotFound

if TYPE_CHECKING:
    from authsvc.authn.tokenfile import TokenFileEntry

# 256 random bits, URL-safe: no dots, so never shaped like a JWT or a bootstrap token.
TOKEN_BYTES = 32

FILE_OPTION = click.option(
    "--file",
    "token_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The token file. [default: authn.tokenfile.path, relative to the home]",
)


@click.group()
def tokens() -> None:
    """Static credentials in files the webhook or kube-apiserver read."""


@tokens.group()
def static() -> None:
    """Static bearer tokens (kube-apiserver's --token-auth-file format).

    \b
    Examples:
      authsvc tokens static add ci-bot -g ci > ci-bot.token
      authsvc tokens static list
      authsvc tokens static remove ci-bot
    """


def _token_file(state: CliState, token_file: Path | None) -> Path:
    if token_file is not None:
        return token_file
    home = state.home()
    configured = home.settings.authn.tokenfile.path
    if not configured:
        raise ConfigError(
            f"authn.tokenfile.path is not set in {home.layout.config_path}: set it (e.g. tokens.csv, and keep "
            "tokenfile in authn.chain) or pass --file"
        )
    return home.layout.path(configured)


def _read(path: Path) -> list[TokenFileEntry]:
    from authsvc.authn.tokenfile import read_token_file

    return read_token_file(path)


def _write(path: Path, entries: list[TokenFileEntry]) -> None:
    from authsvc.authn.tokenfile import write_token_file

    write_token_file(path, entries)


@static.command("add")
@click.argument("username", type=NameType("user name"))
@click.option("-g", "--group", "groups", multiple=True, type=NameType("group"), help="Group; repeatable.")
@click.option("--uid", default=None, help="Stable user id for TokenReview. [default: a new UUID]")
@click.option(
    "--plain",
    is_flag=True,
    help="Store the token itself, not its SHA-256: for kube-apiserver's own --token-auth-file.",
)
@FILE_OPTION
@click.pass_obj
def add(
    state: CliState, username: str, groups: tuple[str, ...], uid: str | None, plain: bool, token_file: Path | None
) -> None:
    """Add a new token for USERNAME and print it (once) on stdout.

    USERNAME and each --group must pass the signing policy (no system: or kubeadm: names unless
    pki.policy allows them); a group may not contain ',' (the file's separator).
    """
    from authsvc.authn.tokenfile import TokenFileEntry, hash_token_column
    from pki.policy import check_groups, check_user
    from pki.store import exclusive_lock

    bad = [g for g in groups if "," in g]
    if bad:
        raise InvalidInput(f"group {bad[0]!r} contains ',', which separates groups in the token file")
    policy = state.home().settings.pki.policy.to_policy()
    check_user(policy, username)
    check_groups(policy, groups)
    path = _token_file(state, token_file)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    entry = TokenFileEntry(token if plain else hash_token_column(token), username, uid or str(uuid.uuid4()), groups)
    with exclusive_lock(path):
        _write(path, [*_read(path), entry])
    click.echo(token)
    stored = "the token itself (keep the file secret)" if plain else "its SHA-256"
    click.echo(f"added a static token for {username} to {path} ({stored}); it is shown only now", err=True)


@static.command("list")
@FILE_OPTION
@output_option()
@click.pass_obj
def list_tokens(state: CliState, token_file: Path | None, output_format: str) -> None:
    """The file's entries: user, uid, groups, how the token is stored, its SHA-256 prefix."""
    rows = [entry.public() for entry in _read(_token_file(state, token_file))]
    columns = [("USER", "user"), ("UID", "uid"), ("GROUPS", "groups"), ("STORED", "stored"), ("TOKEN", "token")]
    emit(rows, output_format, columns=columns)


@static.command("remove")
@click.argument("username")
@click.option("--token", "fingerprint", metavar="PREFIX", help="Only the token whose SHA-256 starts with PREFIX.")
@FILE_OPTION
@click.pass_obj
def remove(state: CliState, username: str, fingerprint: str | None, token_file: Path | None) -> None:
    """Remove USERNAME's tokens (every one, or the one --token names, as `list` shows it)."""
    from pki.store import exclusive_lock

    path = _token_file(state, token_file)
    with exclusive_lock(path):
        current = _read(path)
        kept = [
            e
            for e in current
            if e.user != username or (fingerprint is not None and not e.digest.hex().startswith(fingerprint.lower()))
        ]
        removed = len(current) - len(kept)
        if removed == 0:
            which = f" with a token starting {fingerprint}" if fingerprint else ""
            raise NotFound(f"no token of {username!r}{which} in {path}")
        _write(path, kept)
    click.echo(f"removed {removed} token(s) of {username} from {path}", err=True)
