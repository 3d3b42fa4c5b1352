"""`authsvc ldap test USER`: what the directory says about a user, to check the `ldap:` config.

Shows the flavor in force (generic or active-directory: the preset behind the defaults), the DN
the user search found, the user name and uid authsvc would put in tokens, the groups (prefix
applied, nesting followed), whether the account may be used now (ldap.account_checks) and which
server answered. No password is asked: this runs the service-account search and group search
that /login runs.
"""

from __future__ import annotations

import click

from authsvc.cli import CliState
from authsvc.cli.output import emit, output_option
from authsvc.errors import ConfigError, NotFound
from authsvc.settings.ldap import LDAPSettings


@click.group()
def ldap() -> None:
    """Check the directory configuration (the `ldap:` section)."""


@ldap.command("test")
@click.argument("username")
@output_option()
@click.pass_obj
def test(state: CliState, username: str, output_format: str) -> None:
    """Look USERNAME up as /login would (no password): flavor, DN, uid, groups, account, server."""
    from authsvc.ldap.service import LDAPService

    home = state.home()
    settings = home.settings.ldap
    if not settings.enabled:
        raise ConfigError(f"ldap.enabled is false in {home.layout.config_path}: configure the ldap section first")
    service = LDAPService.from_settings(settings, home_root=home.root, environ=home.secrets.environ, clock=home.clock)
    try:
        user = service.find_user(username)
        if user is None:
            raise NotFound(
                f"no single entry under {settings.user_base} matches {settings.user_filter} for {username!r}"
            )
        if not user.exact:
            raise NotFound(
                f"the directory matched {user.dn} for {username!r} only by folding the spelling "
                f"(stored: {user.username!r}): /login refuses this spelling"
            )
        identity = service.identity_of(user)
    finally:
        service.close()
    report = {
        "flavor": _flavor(settings),
        "dn": user.dn,
        "user": identity.username,
        "uid": identity.uid,
        "groups": list(identity.groups),
        "account": _account(settings, identity.inactive),
        "server": user.server,
    }
    if output_format == "table":
        for key, value in report.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"{key + ':':8} {shown or '<none>'}")
        return
    emit(report, output_format)


def _flavor(settings: LDAPSettings) -> str:
    if settings.flavor == "active-directory":
        return "active-directory (AD's defaults under the fields authsvc.yaml sets)"
    return "generic"


def _account(settings: LDAPSettings, inactive: str) -> str:
    if settings.account_checks == "none":
        return "not checked (ldap.account_checks: none; the user filter alone decides)"
    return f"refused: {inactive}" if inactive else "active"
