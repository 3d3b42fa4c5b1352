"""`authsvc issue USER`: hand a person a kubeconfig (cert, own CSR, token or exec login)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION, NameType, cluster_options

if TYPE_CHECKING:
    from authsvc.cluster.apply import Change
    from authsvc.cluster.connection import ClusterClient
    from authsvc.cluster.grants import Grant
    from authsvc.kubeconfig.issuer import IssuedKubeconfig, IssueRequest, KubeconfigIssuer

MODES = ("cert", "token", "exec", "exec-cert")


@click.command("issue")
@click.argument("user", type=NameType("user name"))
@click.option(
    "-g", "--group", "groups", multiple=True, type=NameType("group"), help="Group (O= of the certificate); repeatable."
)
@click.option(
    "--ttl", type=DURATION, default=None, help="Lifetime, e.g. 24h, 30d. [default: pki.client_ttl or tokens.user_ttl]"
)
@click.option("--cluster", type=NameType("cluster name"), default=None, help="Cluster name. [default: cluster.name]")
@click.option("--server", metavar="URL", default=None, help="API server URL. [default: cluster.server]")
@click.option(
    "--via-proxy",
    metavar="URL",
    default=None,
    help="Point the kubeconfig at `authsvc proxy` at URL (with the proxy's CA) instead of the API server.",
)
@click.option(
    "-n",
    "--namespace",
    type=NameType("namespace"),
    default=None,
    help="Namespace of the context; with --clusterrole, the binding is a RoleBinding there.",
)
@click.option("--mode", type=click.Choice(MODES), default="cert", show_default=True, help="Kind of credential.")
@click.option(
    "--csr",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Sign the user's own CSR (CN=USER, O=groups); the key never leaves the user.",
)
@click.option(
    "--key-path", metavar="PATH", default=None, help="With --csr: the key file on the user's machine (client-key)."
)
@click.option(
    "-o", "--output", metavar="FILE|-", default=None, help="Write here; '-' for stdout. [default: ./USER.kubeconfig]"
)
@click.option(
    "--merge-into",
    metavar="KUBECONFIG",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Add the cluster, user and context to an existing kubeconfig instead.",
)
@click.option("--force", is_flag=True, help="Replace an existing file, or same-named entries when merging.")
@click.option(
    "--clusterrole",
    "cluster_role",
    metavar="ROLE",
    default=None,
    help="Also bind USER to this ClusterRole (cluster-wide, or in --namespace) in the cluster.",
)
@click.option("--dry-run", is_flag=True, help="Check everything and print the binding; issue and write nothing.")
@cluster_options
@click.option(
    "--browser", is_flag=True, help="With --mode exec: kubectl signs in with the browser (OIDC) instead of a password."
)
@click.option("--client-id", default=None, help="With --browser: the public OIDC client. [default: the only one]")
@click.pass_obj
def issue(
    state: CliState,
    user: str,
    groups: tuple[str, ...],
    ttl: dt.timedelta | None,
    cluster: str | None,
    server: str | None,
    via_proxy: str | None,
    namespace: str | None,
    mode: str,
    csr: Path | None,
    key_path: str | None,
    output: str | None,
    merge_into: Path | None,
    force: bool,
    cluster_role: str | None,
    dry_run: bool,
    browser: bool,
    client_id: str | None,
) -> None:
    """Issue a kubeconfig for USER, with the cluster's server URL and CA from authsvc.yaml.

    \b
    Modes:
      cert   a key made here and a client certificate (CN=USER, O=groups) [default]
             --csr FILE --key-path PATH: sign the user's CSR instead; the kubeconfig
             names the key file (client-key) and the key never leaves the user
      token  a bearer token signed by authsvc (revocable; its id is recorded)
      exec   kubectl runs `authsvc login` to get a token with the user's directory password;
             with --browser, the user signs in in the browser and kubectl gets an ID token
             that the API server verifies itself (its --oidc-* flags: `authsvc apiserver-config`)
      exec-cert  the same login, for a client certificate of minutes (login.certificate_ttl)
             on a key `authsvc login` makes: it ends on its own once the access is revoked

    \b
    The kubeconfig is written 0600 to ./USER.kubeconfig unless -o says otherwise
    (`-o -` prints it); an existing file is replaced only with --force.

    \b
    With --via-proxy URL, kubectl talks to `authsvc proxy` at URL instead (the same
    credential; the proxy authenticates it and forwards each request as USER).

    \b
    With --clusterrole ROLE, authsvc also creates the binding that gives USER that role
    (a ClusterRoleBinding, or a RoleBinding in --namespace; labelled managed-by=authsvc), so
    the kubeconfig works the moment it is handed out. The binding is checked by the API
    server before anything is issued. Needs a cluster connection (--kubeconfig).

    \b
    Examples:
      authsvc issue alice -g dev -o alice.kubeconfig
      authsvc issue bob -g ops --csr bob.csr --key-path /home/bob/.kube/bob.key -o bob.kubeconfig
      authsvc issue carol --mode exec --merge-into ~/.kube/config
      authsvc issue dave --clusterrole view -n team-a --kubeconfig admin.conf
      authsvc issue dave --mode exec --browser -o dave.kubeconfig
      authsvc issue erin --mode exec --via-proxy https://k8s-proxy.example:8445 -o erin.kubeconfig
    """
    from authsvc.errors import UsageError
    from authsvc.kubeconfig.issuer import IssueMode, IssueRequest, KubeconfigIssuer

    if output is not None and merge_into is not None:
        raise UsageError("-o and --merge-into cannot be used together: choose one destination")
    request = IssueRequest(
        user=user,
        groups=tuple(dict.fromkeys(groups)),
        mode=IssueMode(mode),
        ttl=ttl,
        cluster=cluster,
        server=server,
        namespace=namespace,
        csr_pem=csr.read_bytes() if csr is not None else None,
        key_path=key_path,
        requester=state.actor,
        browser=browser,
        client_id=client_id,
        via_proxy=via_proxy,
    )
    service = KubeconfigIssuer(state.home())
    service.check(request)
    grant = _grant(user, cluster_role, namespace)
    client = state.cluster(required=grant is not None and not dry_run)
    changes = _check_grant(client, grant)
    if dry_run:
        _dry_run(request, grant, client)
        return
    if merge_into is not None:
        _merge(service, request, merge_into, force=force)
    elif output == "-":
        _print(service, request)
    else:
        _write(service, request, Path(output or f"{user}.kubeconfig"), force=force)
    if client is not None and changes:
        from authsvc.cli.cluster import report_changes
        from authsvc.cluster import apply

        apply.write(client, changes)
        from authsvc.access.trail import record_grant_changes

        home = service.home
        record_grant_changes(home.stores.audit, home.clock, changes, user, actor=state.actor)
        report_changes(changes, dry_run=False, err=output == "-")


def _grant(user: str, cluster_role: str | None, namespace: str | None) -> Grant | None:
    if cluster_role is None:
        return None
    from authsvc.cluster.grants import Grant, RoleKind, SubjectKind

    return Grant(SubjectKind.USER, user, RoleKind.CLUSTER_ROLE, cluster_role, namespace)


def _check_grant(client: ClusterClient | None, grant: Grant | None) -> list[Change]:
    """The binding's changes, checked by the API server (dry run) before anything is issued."""
    if client is None or grant is None:
        return []
    from authsvc.cluster import apply
    from authsvc.cluster.grants import binding

    changes = apply.plan(client, [binding(grant)])
    apply.check(client, changes)
    return changes


def _dry_run(request: IssueRequest, grant: Grant | None, client: ClusterClient | None) -> None:
    groups = ",".join(request.groups) or "(none)"
    click.echo(f"dry run: would issue a {request.mode.value} kubeconfig for {request.user} (groups {groups})")
    if grant is not None:
        from authsvc.cli.cluster import print_objects
        from authsvc.cluster.grants import binding

        checked = "checked by the API server" if client is not None else "not checked: no cluster connection"
        click.echo(f"dry run: would bind {grant.describe()} ({checked}):")
        print_objects([binding(grant)], "yaml")


def _print(service: KubeconfigIssuer, request: IssueRequest) -> None:
    from authsvc.kubeconfig.documents import dump_kubeconfig

    issued = service.issue(request)
    click.echo(dump_kubeconfig(issued.config).decode(), nl=False)
    _report(issued, "issued", err=True)


def _write(service: KubeconfigIssuer, request: IssueRequest, path: Path, *, force: bool) -> None:
    from authsvc.errors import Conflict
    from authsvc.kubeconfig.documents import write_kubeconfig

    service.check(request)
    if path.exists() and not force:
        raise Conflict(f"{path} already exists: use --force to replace it")
    issued = service.issue(request)
    write_kubeconfig(path, issued.config)
    _report(issued, f"wrote {path}:")


def _merge(service: KubeconfigIssuer, request: IssueRequest, path: Path, *, force: bool) -> None:
    from authsvc.kubeconfig.documents import kubeconfig_lock, load_kubeconfig, merge_kubeconfig, write_kubeconfig
    from pki.store import ensure_dir

    # Follow a symlinked ~/.kube/config to the file itself, as kubectl does.
    target = path.expanduser().resolve()
    ensure_dir(target.parent)
    with kubeconfig_lock(target):
        existing = load_kubeconfig(target, missing_ok=True)
        merge_kubeconfig(existing, service.preview(request), force=force)  # refuse before anything is issued
        issued = service.issue(request)
        merged = merge_kubeconfig(existing, issued.config, force=force)
        write_kubeconfig(target, merged)
    _report(issued, f"merged into {target}:")
    if merged.get("current-context") != issued.context:
        click.echo(
            f"current context stays {merged.get('current-context')!r}; "
            f"switch with: kubectl config use-context {issued.context}"
        )


def _report(issued: IssuedKubeconfig, what: str, *, err: bool = False) -> None:
    credential = issued.credential
    groups = ",".join(credential.groups) or "(none)"
    expires = f"{credential.expires_at:%Y-%m-%dT%H:%M:%SZ}" if credential.expires_at else "at each login"
    detail = f"serial {credential.serial}" if credential.serial else f"token id {credential.token_jti}"
    if credential.mode.value.startswith("exec"):
        detail = "authsvc login" + (" (certificates)" if credential.mode.value == "exec-cert" else "")
    click.echo(
        f"{what} context {issued.context} for {credential.username} (groups {groups}), "
        f"{credential.mode.value} mode, {detail}, expires {expires}",
        err=err,
    )
    for note in issued.notes:
        click.echo(f"note: {note}", err=True)
