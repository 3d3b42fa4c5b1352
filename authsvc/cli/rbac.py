"""`authsvc rbac suggest`: least-privilege Roles and bindings from the API server's audit log.

The command reads the log (docs/rbac.md has the workflow and the audit policy), prints the
objects for `kubectl apply`, or applies them itself with --apply / --dry-run. Summary and
warnings go to stderr; stdout holds only the objects, and only when the command succeeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from authsvc.cli.options import cluster_options
from authsvc.errors import UsageError

if TYPE_CHECKING:
    from authsvc.cli import CliState
    from authsvc.cluster.connection import ClusterClient
    from authsvc.rbac.subjects import Subject
    from authsvc.rbac.suggest import Suggestion


@click.group()
def rbac() -> None:
    """Least-privilege RBAC from audit logs."""


@rbac.command()
@click.option(
    "--audit-log",
    "audit_logs",
    metavar="FILE",
    multiple=True,
    required=True,
    help="The API server's JSON audit log (--audit-log-path), plain or gzip; '-' reads standard input. "
    "Repeat for rotated files.",
)
@click.option("--user", metavar="NAME", help="Suggest for this user (as the API server names it).")
@click.option("--serviceaccount", metavar="NS:NAME", help="Suggest for this service account.")
@click.option("--group", metavar="GROUP", help="Suggest for this group (requests of any member).")
@click.option("--namespace", "-n", metavar="NS", help="Only requests in this namespace.")
@click.option(
    "--name-prefix",
    metavar="PREFIX",
    default="authsvc:suggested",
    show_default=True,
    help="Objects are named PREFIX:KIND:NAME (e.g. authsvc:suggested:user:alice).",
)
@click.option(
    "--expand-verbs",
    is_flag=True,
    help="Add the verbs clients usually need with the ones seen, as audit2rbac does: "
    "watch/list -> get, list, watch; update/patch -> get, update, patch.",
)
@click.option(
    "--include-denied",
    is_flag=True,
    help="Cover requests the API server refused (403) while the log was recorded too (audit2rbac does).",
)
@click.option(
    "--max-bad-lines",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Unreadable lines to accept (they are always listed); more is an error.",
)
@click.option("-o", "--output", "output_format", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
@click.option("--apply", "apply_", is_flag=True, help="Create or update the objects in the cluster.")
@click.option("--dry-run", is_flag=True, help="Send them to the API server as a dry run: checked, not stored.")
@cluster_options
@click.pass_obj
def suggest(
    state: CliState,
    audit_logs: tuple[str, ...],
    user: str | None,
    serviceaccount: str | None,
    group: str | None,
    namespace: str | None,
    name_prefix: str,
    expand_verbs: bool,
    include_denied: bool,
    max_bad_lines: int,
    output_format: str,
    apply_: bool,
    dry_run: bool,
) -> None:
    """Suggest the narrowest Roles, ClusterRoles and bindings that allow what the subject did.

    Run the subject with broad rights in a test cluster whose API server records an audit log
    (config/apiserver/audit-policy.yaml), then:

    \b
      authsvc rbac suggest --audit-log audit.log --user alice > alice-rbac.yaml
      authsvc rbac suggest --audit-log audit.log --audit-log audit-1.log.gz --serviceaccount ci:deployer
      authsvc rbac suggest --audit-log audit.log --group dev -n team-a -o json
      authsvc rbac suggest --audit-log audit.log --user alice --apply --kubeconfig admin.conf

    Exit 1 when the subject made no requests in the log, or when lines of the log could not be
    read (each is listed with its line number; --max-bad-lines accepts some).
    """
    from authsvc.rbac.objects import render
    from authsvc.rbac.subjects import check_name_prefix
    from authsvc.rbac.suggest import SuggestOptions
    from authsvc.rbac.suggest import suggest as build

    subject = _subject(user, serviceaccount, group)
    if apply_ and dry_run:
        raise UsageError("--apply and --dry-run cannot be combined: --dry-run alone checks what --apply would do")
    options = SuggestOptions(subject, namespace, check_name_prefix(name_prefix), expand_verbs, include_denied)
    suggestion = build(audit_logs, options)
    _report(suggestion)
    suggestion.check(max_bad_lines)
    if apply_ or dry_run:
        _apply(suggestion, state.require_cluster(), dry_run=dry_run)
    elif suggestion.objects:
        click.echo(render(suggestion.objects, output_format))


def _subject(user: str | None, serviceaccount: str | None, group: str | None) -> Subject:
    from authsvc.rbac.subjects import Subject

    given = [(option, value) for option, value in (("user", user), ("sa", serviceaccount), ("group", group)) if value]
    if len(given) != 1:
        raise UsageError("name exactly one subject: --user NAME, --serviceaccount NS:NAME or --group GROUP")
    option, value = given[0]
    if option == "user":
        return Subject.user(value)
    return Subject.service_account(value) if option == "sa" else Subject.group(value)


def _report(suggestion: Suggestion) -> None:
    for problem in suggestion.read.problems:
        click.echo(f"warning: {problem}", err=True)
    hidden = suggestion.read.problem_count - len(suggestion.read.problems)
    if hidden > 0:
        click.echo(f"warning: ... and {hidden} more unreadable lines", err=True)
    for note in suggestion.notes():
        click.echo(note, err=True)


def _apply(suggestion: Suggestion, client: ClusterClient, *, dry_run: bool) -> None:
    """--apply / --dry-run through the cluster connection: every write checked by the API server
    first (a server-side dry run), then made unless --dry-run; an object of the same name that
    authsvc did not write is refused before anything is written."""
    from authsvc.cluster.apply import execute, plan

    changes = plan(client, suggestion.objects)
    execute(client, changes, dry_run=dry_run)
    for change in changes:
        click.echo(change.describe(dry_run=dry_run))
