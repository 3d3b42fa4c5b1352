"""`authsvc users add|passwd|remove|list`: the static users file (login backend "users").

The file (login.users_file, default <home>/users.csv) holds argon2 hashes only; passwords
are asked twice on the terminal or read from standard input (--password-stdin).
Concurrent runs take turns on a lock file beside it; the server picks up changes by itself.
`add` refuses what /login would refuse (the signing policy's user and group rules, privileged
groups included) and a group the file cannot hold as one name, before anything is written;
`list` and `passwd` warn about entries whose logins the policy refuses.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState
from authsvc.cli.options import NameType
from authsvc.cli.output import emit, output_option
from authsvc.errors import Conflict, InvalidInput, NotFound
from pki.store import exclusive_lock

if TYPE_CHECKING:
    from authsvc.login.users_file import StaticUser
    from pki.policy import SigningPolicy


@click.group()
def users() -> None:
    """Manage the static users file (logins without a directory)."""


def _users_path(state: CliState) -> Path:
    home = state.home()
    return Path(home.layout.path(home.settings.login.users_file))


def _policy(state: CliState) -> SigningPolicy:
    policy: SigningPolicy = state.home().settings.pki.policy.to_policy()
    return policy


def _warn_refused(policy: SigningPolicy, users: Iterable[StaticUser]) -> None:
    """One warning line per user whose logins the signing policy refuses (a privileged group
    written by hand or by an older authsvc): /login answers 403 for them."""
    from pki.errors import PolicyError
    from pki.policy import check_groups, check_user

    for user in users:
        try:
            check_user(policy, user.username)
            check_groups(policy, user.groups)
        except PolicyError as e:
            click.echo(f"warning: user {user.username!r} cannot log in: {e}", err=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        raise InvalidInput("the password must not be empty")
    return password


PASSWORD_STDIN = click.option("--password-stdin", is_flag=True, help="Read the password from the first stdin line.")


@users.command("add")
@click.argument("username", type=NameType("user name"))
@click.option("-g", "--group", "groups", multiple=True, type=NameType("group"), help="Group; repeatable.")
@click.option("--uid", default=None, help="Stable user id for TokenReview. [default: a new UUID]")
@PASSWORD_STDIN
@click.pass_obj
def add(state: CliState, username: str, groups: tuple[str, ...], uid: str | None, password_stdin: bool) -> None:
    """Add USERNAME with a password (asked twice unless --password-stdin).

    USERNAME and each --group must pass the signing policy (pki.policy: no system: or kubeadm:
    names unless allowed_users / allowed_groups list them), as at /login; a group may not
    contain ',' (the file's separator between groups).
    """
    from authsvc.login.users_file import StaticUser, check_groups_field, hash_password, read_users, write_users
    from pki.policy import check_groups, check_user

    check_groups_field(username, groups)
    policy = _policy(state)
    check_user(policy, username)
    check_groups(policy, groups)
    path = _users_path(state)
    with exclusive_lock(path):
        current = read_users(path)
        if any(u.username == username for u in current):
            raise Conflict(f"user {username!r} already exists in {path}: use `authsvc users passwd`")
        user = StaticUser(username, uid or str(uuid.uuid4()), groups, hash_password(_read_password(password_stdin)))
        write_users(path, [*current, user])
    click.echo(f"added {username} to {path}", err=True)


@users.command("passwd")
@click.argument("username")
@PASSWORD_STDIN
@click.pass_obj
def passwd(state: CliState, username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME."""
    from dataclasses import replace

    from authsvc.login.users_file import hash_password, read_users, write_users

    path = _users_path(state)
    with exclusive_lock(path):
        current = read_users(path)
        if not any(u.username == username for u in current):
            raise NotFound(f"no user {username!r} in {path}")
        password_hash = hash_password(_read_password(password_stdin))
        updated = [replace(u, password_hash=password_hash) if u.username == username else u for u in current]
        write_users(path, updated)
    click.echo(f"password of {username} changed", err=True)
    _warn_refused(_policy(state), [u for u in current if u.username == username])


@users.command("remove")
@click.argument("username")
@click.pass_obj
def remove(state: CliState, username: str) -> None:
    """Remove USERNAME (its tokens stop working at the next review)."""
    from authsvc.login.users_file import read_users, write_users

    path = _users_path(state)
    with exclusive_lock(path):
        current = read_users(path)
        remaining = [u for u in current if u.username != username]
        if len(remaining) == len(current):
            raise NotFound(f"no user {username!r} in {path}")
        write_users(path, remaining)
    click.echo(f"removed {username} from {path}", err=True)


@users.command("list")
@output_option()
@click.pass_obj
def list_users(state: CliState, output_format: str) -> None:
    """List the users (never the hashes)."""
    from authsvc.login.users_file import read_users

    current = read_users(_users_path(state))
    emit([u.public() for u in current], output_format, columns=[("USER", "user"), ("UID", "uid"), ("GROUPS", "groups")])
    _warn_refused(_policy(state), current)
