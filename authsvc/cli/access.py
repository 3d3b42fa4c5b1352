"""`authsvc access ...`: who may do what in the cluster, through bindings authsvc manages.

A group of subcommands: `grant` lives here; the access-lifecycle commands (list, revoke,
restore) live in authsvc/cli/access_lifecycle.py.
"""

from __future__ import annotations

import click

from authsvc.cli import CliState, LazyGroup
from authsvc.cli.options import NameType, cluster_options
from authsvc.cli.output import output_option

# Subcommands that live in other modules: name -> "module:attribute".
ACCESS_COMMANDS: dict[str, str] = {
    "list": "authsvc.cli.access_lifecycle:list_access",
    "revoke": "authsvc.cli.access_lifecycle:revoke",
    "restore": "authsvc.cli.access_lifecycle:restore",
}


@click.group(cls=LazyGroup, lazy=ACCESS_COMMANDS)
def access() -> None:
    """Who has access, and what they may do: list, grant, revoke everywhere, restore.

    \b
    Examples:
      authsvc access list alice
      authsvc access grant --user alice --clusterrole view
      authsvc access revoke alice --reason "left the company"
      authsvc access restore alice
    """


@access.command("grant")
@click.option("--user", type=NameType("user name"), default=None, help="Bind this user.")
@click.option("--group", type=NameType("group"), default=None, help="Bind this group.")
@click.option("--serviceaccount", metavar="NS:NAME", default=None, help="Bind this service account.")
@click.option("--clusterrole", "cluster_role", metavar="ROLE", default=None, help="A ClusterRole to bind.")
@click.option("--role", metavar="ROLE", default=None, help="A Role (in --namespace) to bind.")
@click.option(
    "-n", "--namespace", default=None, help="Bind in this namespace only (a RoleBinding). [default: cluster-wide]"
)
@click.option("--dry-run", is_flag=True, help="Check and print the binding; change nothing.")
@output_option("text", "yaml", "json", default="text")
@cluster_options
@click.pass_obj
def grant(
    state: CliState,
    user: str | None,
    group: str | None,
    serviceaccount: str | None,
    cluster_role: str | None,
    role: str | None,
    namespace: str | None,
    dry_run: bool,
    output_format: str,
) -> None:
    """Bind a role to a user, group or service account (create-or-update; granting twice changes nothing).

    The binding is named authsvc:<kind>:<subject>:<role kind>:<role> and labelled
    app.kubernetes.io/managed-by=authsvc, app.kubernetes.io/component=grant. Privileged users
    and groups (system:*, kubeadm:*) are refused unless pki.policy allows them by name.

    \b
    Examples:
      authsvc access grant --group dev --clusterrole view
      authsvc access grant --user alice --clusterrole edit -n team-a
      authsvc access grant --serviceaccount ci:deployer --role deployer -n ci --dry-run -o yaml
    """
    from authsvc.cli.cluster import print_objects, report_changes
    from authsvc.cluster import apply
    from authsvc.cluster.grants import Grant, RoleKind, SubjectKind, binding, check_subject_policy
    from authsvc.errors import UsageError

    subjects = [(k, v) for k, v in ((SubjectKind.USER, user), (SubjectKind.GROUP, group)) if v is not None]
    subjects += [(SubjectKind.SERVICE_ACCOUNT, serviceaccount)] if serviceaccount is not None else []
    roles = [(k, v) for k, v in ((RoleKind.CLUSTER_ROLE, cluster_role), (RoleKind.ROLE, role)) if v is not None]
    if len(subjects) != 1:
        raise UsageError("give exactly one of --user, --group, --serviceaccount")
    if len(roles) != 1:
        raise UsageError("give exactly one of --clusterrole, --role")
    (subject_kind, subject), (role_kind, role_name) = subjects[0], roles[0]
    wanted = Grant(subject_kind, subject, role_kind, role_name, namespace)
    home = state.home()
    check_subject_policy(wanted, home.settings.pki.policy.to_policy())
    if subject_kind is not SubjectKind.GROUP:  # nothing new for someone whose access is revoked
        home.stores.ban_gate(subject if subject_kind is SubjectKind.USER else f"system:serviceaccount:{subject}")
    client = state.cluster(required=not dry_run)
    body = binding(wanted)
    if output_format != "text":
        print_objects([body], output_format)
    if client is None:
        if output_format == "text":
            click.echo(f"{wanted.binding_kind} {wanted.binding_name}: {wanted.describe()} (dry run, not connected)")
        return
    changes = apply.plan(client, [body])
    apply.execute(client, changes, dry_run=dry_run)
    if not dry_run:
        from authsvc.access.trail import record_grant_changes

        record_grant_changes(home.stores.audit, home.clock, changes, wanted.subject, actor=state.actor)
    report_changes(changes, dry_run=dry_run, err=output_format != "text")
