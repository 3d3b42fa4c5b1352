"""`authsvc access list|revoke|restore`: who has access, taking a person's access away
everywhere, and giving it back (authsvc/access/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from authsvc.cli import CliState
from authsvc.cli.options import NameType, cluster_options
from authsvc.cli.output import emit, output_option, render_table

if TYPE_CHECKING:
    from authsvc.access.listing import UserAccess

DRY_RUN_HELP = "Say what would happen (bindings checked by the API server); change nothing."
SUMMARY_COLUMNS = [
    ("USER", "user"),
    ("REVOKED", "revoked"),
    ("CERTIFICATES", "certificates"),
    ("TOKENS", "tokens"),
    ("STATIC", "static"),
    ("USERS-FILE", "usersFile"),
    ("KUBECONFIGS", "kubeconfigs"),
    ("SIGN-INS", "signIns"),
    ("LAST LOGIN", "lastLogin"),
    ("BINDINGS", "bindings"),
]


@click.command("list")
@click.argument("user", required=False, type=NameType("user name"))
@click.option("--all", "include_expired", is_flag=True, help="Include expired certificates and tokens.")
@output_option()
@cluster_options
@click.pass_obj
def list_access(state: CliState, user: str | None, include_expired: bool, output_format: str) -> None:
    """Who has access: USER's credentials and bindings, or a line per person.

    \b
    For USER: every certificate (serial, expiry, status), token (user, service-account,
    bootstrap, static), users-file and directory entry, kubeconfig authsvc issued, the last
    login and its backend, whether the access is revoked (by whom, why), and, when connected
    to a cluster, every RoleBinding and ClusterRoleBinding that names USER or one of their
    groups (managed by authsvc or not). Unexpired credentials unless --all.

    \b
    Examples:
      authsvc access list
      authsvc access list alice -o json
      authsvc access list system:serviceaccount:ci:deployer --kubeconfig admin.conf
    """
    from authsvc.access.listing import collect, collect_everyone

    home = state.home()
    client = state.cluster()
    if user is None:
        everyone = collect_everyone(home, client=client, include_expired=include_expired)
        if output_format == "table":
            emit([_summary(a) for a in everyone], "table", columns=SUMMARY_COLUMNS)
        else:
            emit([a.as_dict() for a in everyone], output_format)
        return
    access = collect(home, user, client=client, include_expired=include_expired)
    if output_format != "table":
        emit(access.as_dict(), output_format)
        return
    click.echo(_details(access))


def _summary(access: UserAccess) -> dict[str, Any]:
    document = access.as_dict()
    login = document["lastLogin"]
    valid = [c for c in document["certificates"] if c["status"] == "valid"]
    tokens = [t for t in document["tokens"] if t["status"] == "valid"]
    return {
        "user": access.user,
        "revoked": "yes" if access.ban else "no",
        "certificates": len(valid),
        "tokens": len(tokens) + len(document["bootstrapTokens"]),
        "static": len(document["staticTokens"]),
        "usersFile": "yes" if access.users_file else "no",
        "kubeconfigs": len(access.kubeconfigs),
        "signIns": len([s for s in document["oidcSignIns"] if s["status"] == "valid"]),
        "lastLogin": f"{login['at']} ({login['backend']})" if login else None,
        "bindings": len(access.bindings) if access.bindings is not None else "?",
    }


def _details(access: UserAccess) -> str:
    document = access.as_dict()
    out = [f"user: {access.user}"]
    out.append(f"access: revoked ({access.ban.describe()})" if access.ban else "access: not revoked")
    out.append(f"groups: {', '.join(access.groups) or '(none)'}")
    login = document["lastLogin"]
    out.append(f"last login: {login['at']} ({login['backend']})" if login else "last login: none recorded")
    if access.users_file is not None:
        out.append(f"users file: uid {access.users_file.uid}, groups {','.join(access.users_file.groups) or '(none)'}")
    if access.directory_groups is not None:
        out.append(f"directory: groups {','.join(access.directory_groups) or '(none)'}")
    sections: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]]]] = [
        ("certificates", document["certificates"], [("SERIAL", "serial"), ("STATUS", "status"), ("EXPIRES", "notAfter"),
                                                    ("GROUPS", "groups"), ("REQUESTER", "requester"),
                                                    ("REVOKED BY", "revokedBy")]),
        ("tokens", document["tokens"], [("ID", "jti"), ("KIND", "kind"), ("SOURCE", "source"), ("STATUS", "status"),
                                        ("EXPIRES", "expiresAt"), ("REVOKED BY", "revokedBy")]),
        ("bootstrap tokens", document["bootstrapTokens"], [("ID", "id"), ("STATUS", "status"), ("EXPIRES", "expires")]),
        ("static tokens", document["staticTokens"], [("TOKEN", "token"), ("GROUPS", "groups"), ("STORED", "stored")]),
        ("kubeconfigs", document["kubeconfigs"], [("MODE", "mode"), ("ISSUED", "issuedAt"), ("EXPIRES", "expiresAt"),
                                                  ("SERIAL", "serial"), ("TOKEN ID", "tokenID")]),
        ("OIDC sign-ins", document["oidcSignIns"], [("ID", "id"), ("CLIENT", "client"), ("SOURCE", "source"),
                                                    ("STATUS", "status"), ("SIGNED IN", "signedInAt"),
                                                    ("EXPIRES", "expiresAt")]),
    ]  # fmt: skip
    for title, rows, columns in sections:
        if rows:
            out += ["", f"{title}:", render_table(rows, columns)]
    out.append("")
    if access.bindings is None:
        out.append("bindings: not checked (no cluster connection: --kubeconfig or cluster.api.kubeconfig)")
    elif not access.bindings:
        out.append(f"bindings in {access.cluster}: none name {access.user} or their groups")
    else:
        rows = [b.as_dict() for b in access.bindings]
        columns = [("KIND", "kind"), ("NAMESPACE", "namespace"), ("NAME", "name"), ("ROLE", "role"), ("VIA", "via"),
                   ("MANAGED", "managedByAuthsvc")]  # fmt: skip
        out += [f"bindings in {access.cluster}:", render_table(rows, columns)]
    out += [f"note: {note}" for note in access.notes]
    return "\n".join(out)


@click.command("revoke")
@click.argument("user", type=NameType("user name"))
@click.option("--reason", default="", help="Why, in your words (kept with the ban and each revocation).")
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@output_option("text", "json", "yaml", default="text")
@cluster_options
@click.pass_obj
def revoke(state: CliState, user: str, reason: str, dry_run: bool, output_format: str) -> None:
    """Take USER's access away everywhere authsvc can, and say when each credential stops working.

    \b
    1. A ban: no new certificate, token, kubeconfig or login for USER until `access restore`;
       the webhook refuses USER's tokens within tokens.cache_refresh.
    2. Every unexpired token authsvc signed for USER revoked, every valid client certificate
       revoked (privilegeWithdrawn), bootstrap tokens deleted, static tokens removed, sign-ins
       on the self-service page and at the OIDC provider (refresh tokens) ended.
    3. Connected to a cluster: the bindings authsvc manages that name USER alone deleted; the
       others that name USER are listed (remove them yourself).

    \b
    The API server never checks certificate revocation: a client certificate keeps working
    until it expires, with whatever rights RBAC still gives its user and groups. The report
    says this for each one. Nothing changes when anything is refused before the first change
    (an unknown user, an API server refusing the deletions).

    \b
    Examples:
      authsvc access revoke alice --reason "left the company" --kubeconfig admin.conf
      authsvc access revoke alice --dry-run -o json
    """
    from authsvc.access.revoke import plan_revocation
    from authsvc.access.revoke import revoke as do_revoke
    from authsvc.access.wording import report

    home = state.home()
    client = state.cluster()
    plan = plan_revocation(home, user, client)
    already = plan.access.ban
    if not dry_run:
        do_revoke(home, plan, client, actor=state.actor, reason=reason)
    lines = report(plan, home.settings, connected=client is not None)
    if output_format != "text":
        document = {"user": user, "dryRun": dry_run, "reason": reason, "alreadyRevoked": already is not None,
                    "credentials": [line.as_dict() for line in lines]}  # fmt: skip
        emit(document, output_format)
        return
    if dry_run:
        click.echo(f"dry run, nothing changed: `authsvc access revoke {user}` would leave:")
    elif already is not None:
        click.echo(f"the access of {user} was revoked already ({already.describe()}); revoked what was left:")
    else:
        click.echo(f"revoked the access of {user}" + (f" ({reason})" if reason else "") + ":")
    for line in lines:
        click.echo(f"  {line.render()}")


@click.command("restore")
@click.argument("user", type=NameType("user name"))
@click.option("--dry-run", is_flag=True, help=DRY_RUN_HELP)
@cluster_options
@click.pass_obj
def restore(state: CliState, user: str, dry_run: bool) -> None:
    """Lift `access revoke`'s ban on USER and write back the bindings it removed.

    Revoked certificates and tokens stay revoked and ended sign-ins ended: issue new ones
    (`authsvc issue USER ...`) or sign in again.

    \b
    Examples:
      authsvc access restore alice --kubeconfig admin.conf
    """
    from authsvc.access.revoke import grant_command, plan_restore
    from authsvc.access.revoke import restore as do_restore
    from authsvc.cli.cluster import report_changes

    home = state.home()
    client = state.cluster()
    plan = plan_restore(home, user, client)
    if dry_run:
        click.echo(f"dry run, nothing changed: would lift the ban on {user} ({plan.ban.describe()})")
        report_changes(plan.changes, dry_run=True)
        return
    do_restore(home, plan, client, actor=state.actor)
    click.echo(f"restored the access of {user} (it was {plan.ban.describe()})")
    report_changes(plan.changes, dry_run=False)
    if client is None and plan.grants:
        click.echo("not connected to a cluster: these bindings, removed at the revocation, were not written back:")
        for grant in plan.grants:
            click.echo(f"  {grant_command(grant)}")
    click.echo(
        f"revoked certificates and tokens stay revoked, ended sign-ins ended: issue new ones (authsvc issue {user} ...)"
    )
