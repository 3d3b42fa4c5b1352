"""`authsvc token ...`: create service-account and user tokens, verify, revoke and list them."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from authsvc.cli import CliState, LazyGroup
from authsvc.cli.options import DURATION, NameType, cluster_options
from authsvc.cli.output import emit, output_option

if TYPE_CHECKING:
    from pki.tokens import IssuedToken, VerifiedToken

# Subcommands that live in other modules (e.g. `token bootstrap ...`): name -> "module:attr".
TOKEN_COMMANDS: dict[str, str] = {"bootstrap": "authsvc.cli.bootstrap:bootstrap"}

LIST_COLUMNS = [
    ("JTI", "jti"),
    ("KIND", "kind"),
    ("SUBJECT", "subject"),
    ("SOURCE", "source"),
    ("EXPIRES", "expiresAt"),
    ("REVOKED", "revokedAt"),
]


@click.group(cls=LazyGroup, lazy=TOKEN_COMMANDS)
def token() -> None:
    """Issue, verify, revoke and list the tokens authsvc signs (pki/sa.key)."""


def _emit_issued(issued: IssuedToken, output_format: str) -> None:
    if output_format == "token":
        click.echo(issued.token)
        return
    data = {
        "token": issued.token,
        "jti": issued.jti,
        "subject": issued.subject,
        "expiresAt": issued.expires_at.isoformat(),
        "claims": issued.claims,
    }
    emit(data, output_format)


@token.command("create")
@click.option("-n", "--namespace", required=True, help="Namespace of the service account.")
@click.option("--serviceaccount", "name", required=True, help="Name of the service account.")
@click.option(
    "--uid",
    default=None,
    help="UID of the service account (kube-apiserver checks it). [default: looked up in the cluster]",
)
@click.option("--audience", "audiences", multiple=True, help="Audience; repeatable. [default: tokens.api_audiences]")
@click.option("--ttl", type=DURATION, default=None, help="Lifetime, e.g. 10m, 1h. [default: tokens.sa_ttl]")
@click.option("--bound-pod", default=None, metavar="NAME", help="Bind the token to this pod (of the same account).")
@click.option(
    "--bound-pod-uid", default=None, metavar="UID", help="UID of that pod. [default: looked up in the cluster]"
)
@click.option("--legacy", is_flag=True, help="The older secret-based shape (iss kubernetes/serviceaccount).")
@click.option(
    "--secret-name", default=None, help="With --legacy: the secret named in the token. [default: NAME-token-xxxxx]"
)
@output_option("token", "json", "yaml", default="token")
@cluster_options
@click.pass_obj
def create(
    state: CliState,
    namespace: str,
    name: str,
    uid: str | None,
    audiences: tuple[str, ...],
    ttl: dt.timedelta | None,
    bound_pod: str | None,
    bound_pod_uid: str | None,
    legacy: bool,
    secret_name: str | None,
    output_format: str,
) -> None:
    """Sign a service-account token with the claims kube-apiserver puts in its own.

    kube-apiserver accepts it only if it names the account's UID (and the bound pod's): connected
    to the cluster (--kubeconfig, cluster.api.kubeconfig, KUBECONFIG), authsvc looks them up
    and refuses an account or pod that does not exist; otherwise give --uid (and --bound-pod-uid).

    \b
    Examples:
      authsvc token create -n ci --serviceaccount deployer --kubeconfig admin.conf
      uid=$(kubectl get sa deployer -n ci -o jsonpath={.metadata.uid})
      authsvc token create -n ci --serviceaccount deployer --uid "$uid"
      authsvc token create -n default --serviceaccount vault --audience vault --ttl 10m -o json
    """
    from authsvc.errors import UsageError

    if bound_pod_uid is not None and bound_pod is None:
        raise UsageError("--bound-pod-uid needs --bound-pod")
    if secret_name is not None and not legacy:
        raise UsageError("--secret-name only applies to --legacy tokens")
    uid, bound_pod_uid = _account_uids(state, namespace, name, uid, bound_pod, bound_pod_uid)
    service = state.home().stores.token_service
    issued = service.issue_service_account_token(
        namespace,
        name,
        uid=uid,
        audiences=audiences,
        ttl=ttl,
        pod=(bound_pod, bound_pod_uid) if bound_pod and bound_pod_uid else None,
        legacy=legacy,
        secret_name=secret_name,
    )
    service.flush()
    _emit_issued(issued, output_format)


def _account_uids(
    state: CliState, namespace: str, name: str, uid: str | None, pod: str | None, pod_uid: str | None
) -> tuple[str, str | None]:
    """The UIDs the token must carry: the cluster's when connected, else the ones given."""
    from authsvc.errors import UsageError

    client = state.cluster()
    if client is not None:
        from authsvc.cluster.service_accounts import look_up

        found = look_up(client, namespace, name, uid=uid, pod=pod, pod_uid=pod_uid)
        return found.account, found.pod
    if not uid:
        raise UsageError(
            "the API server refuses a service-account token without the account's UID: connect authsvc to the "
            f"cluster to look it up (--kubeconfig or cluster.api.kubeconfig), or give --uid (kubectl get "
            f"serviceaccount {name} -n {namespace} -o jsonpath={{.metadata.uid}})"
        )
    if pod is not None and not pod_uid:
        raise UsageError(
            "the API server refuses a pod-bound token without the pod's UID: connect authsvc to the cluster "
            f"(--kubeconfig), or give --bound-pod-uid "
            f"(kubectl get pod {pod} -n {namespace} -o jsonpath={{.metadata.uid}})"
        )
    return uid, pod_uid


@token.command("create-user")
@click.argument("user", type=NameType("user name"))
@click.option("-g", "--group", "groups", multiple=True, type=NameType("group"), help="Group; repeatable.")
@click.option("--ttl", type=DURATION, default=None, help="Lifetime, e.g. 8h. [default: tokens.user_ttl]")
@click.option("--uid", default="", help="UID to report for the user.")
@click.option("--audience", default=None, help="Audience. [default: tokens.user_audience]")
@output_option("token", "json", "yaml", default="token")
@click.pass_obj
def create_user(
    state: CliState,
    user: str,
    groups: tuple[str, ...],
    ttl: dt.timedelta | None,
    uid: str,
    audience: str | None,
    output_format: str,
) -> None:
    """Sign a token for USER, checked by authsvc's TokenReview webhook (privileged groups refused)."""
    service = state.home().stores.token_service
    issued = service.issue_user_token(user, groups, ttl=ttl, uid=uid, audience=audience, source="cli")
    service.flush()
    _emit_issued(issued, output_format)


def unchecked_uid_warnings(kind: str, claims: dict[str, Any]) -> list[str]:
    """What makes kube-apiserver refuse a service-account token that verifies here: a missing UID."""
    from pki.tokens.claims import KIND_SERVICE_ACCOUNT, KUBERNETES_CLAIM

    if kind != KIND_SERVICE_ACCOUNT:
        return []
    private = claims.get(KUBERNETES_CLAIM)
    private = private if isinstance(private, dict) else {}
    warnings = []
    # claim -> (words, kube-apiserver's kind in its refusal)
    for ref, (words, kind) in {"serviceaccount": ("service account", "ServiceAccount"), "pod": ("pod", "Pod")}.items():
        value = private.get(ref)
        if isinstance(value, dict) and not value.get("uid"):
            warnings.append(
                f"the token names no {words} UID: kube-apiserver refuses it ({kind} UID (...) does not match claim ())"
            )
    return warnings


def verification_report(verified: VerifiedToken, now: dt.datetime) -> dict[str, Any]:
    from pki.durations import format_duration

    identity = verified.identity()
    claims = verified.claims

    def when(name: str) -> str | None:
        value = claims.get(name)
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat() if isinstance(value, int | float) else None

    return {
        "valid": True,
        "warnings": unchecked_uid_warnings(identity.kind, claims),
        "kind": identity.kind,
        "username": identity.username,
        "uid": identity.uid,
        "groups": list(identity.groups),
        "extra": {k: list(v) for k, v in identity.extra.items()},
        "source": identity.source,
        "audiences": list(verified.audiences),
        "kid": verified.kid,
        "jti": verified.jti,
        "issuedAt": when("iat"),
        "notBefore": when("nbf"),
        "expiresAt": verified.expires_at.isoformat(),
        "expiresIn": format_duration(verified.expires_at - now),
        "claims": claims,
    }


@token.command("verify")
@click.argument("token_text", metavar="TOKEN")
@click.option("--audience", "audiences", multiple=True, help="Require one of these audiences; repeatable.")
@output_option()
@click.pass_obj
def verify(state: CliState, token_text: str, audiences: tuple[str, ...], output_format: str) -> None:
    """Verify TOKEN ('-' reads it from stdin): print its identity, claims and validity.

    Exits 1 with the reason when the token is rejected (signature, algorithm, key, issuer,
    audience, expiry, not-before, revocation).
    """
    from pki.errors import TokenRejected

    text = sys.stdin.read() if token_text == "-" else token_text
    home = state.home()
    try:
        verified = home.stores.token_service.verify(text.strip(), audiences=audiences or None)
    except TokenRejected as e:
        raise TokenRejected(f"token rejected: {e}") from None
    report = verification_report(verified, home.clock())
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if output_format != "table":
        emit(report, output_format)
        return
    rows = [{"field": k, "value": json.dumps(v) if isinstance(v, dict) else v} for k, v in report.items()]
    emit(rows, "table", columns=[("FIELD", "field"), ("VALUE", "value")])


@token.command("revoke")
@click.argument("jti")
@click.option("--reason", default="", help="Why (kept in the inventory).")
@click.pass_obj
def revoke(state: CliState, jti: str, reason: str) -> None:
    """Put the token with id JTI on the denylist (the webhook refuses it within tokens.cache_refresh,
    its cached answers included; kube-apiserver verifies service-account tokens itself and does
    not ask)."""
    from authsvc.access.revoke import revoke_token

    if not revoke_token(state.home(), jti, actor=state.actor, reason=reason):
        click.echo(f"token {jti} was revoked already")
        return
    click.echo(f"revoked token {jti}")


@token.command("list")
@click.option("--all", "include_expired", is_flag=True, help="Include expired tokens.")
@output_option()
@click.pass_obj
def list_tokens(state: CliState, include_expired: bool, output_format: str) -> None:
    """List the tokens authsvc issued (unexpired ones unless --all)."""
    records = state.home().stores.token_service.tokens(include_expired=include_expired)
    emit([r.as_dict() for r in records], output_format, columns=LIST_COLUMNS)
