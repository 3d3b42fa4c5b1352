"""The kubeconfig a signed-in person downloads, through the one KubeconfigIssuer (`authsvc issue`
uses the same), and the kubectl commands the page shows beside it.

- exec / exec-cert: nothing is minted now: the file runs `authsvc login` against this server's
  /login, so later logins refresh by themselves (tokens, or certificates of
  login.certificate_ttl), and a revoked person's next login is refused;
- token: an authsvc user token in the file (tokens.user_ttl), under the login backend's name as
  its source, so the webhook re-checks the person in the directory as for /login's tokens.

Each download is recorded in the inventory (`access list` shows it) with the requester
`self-service:<user>`, and audited like `authsvc issue`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsvc.errors import UsageError
from authsvc.kubeconfig.documents import dump_kubeconfig
from authsvc.kubeconfig.issuer import IssuedKubeconfig, IssueMode, IssueRequest, KubeconfigIssuer
from authsvc.settings.self_service import SelfServiceCluster
from pki.store import certs_to_pem, load_certificates

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.self_service.sessions import Session

REQUESTER_PREFIX = "self-service:"
MODE_WORDS = {
    "exec": "kubectl runs authsvc login when it needs a credential (recommended: renews itself)",
    "exec-cert": "kubectl runs authsvc login, which fetches a client certificate of minutes each time",
    "token": "a token in the file (no authsvc needed; keep the file secret, it expires)",
}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Download:
    """One issued kubeconfig, ready to send."""

    filename: str
    body: bytes
    issued: IssuedKubeconfig


def offered_clusters(home: Home) -> tuple[SelfServiceCluster, ...]:
    """The clusters the page offers: self_service.clusters, or this home's one cluster."""
    configured = home.settings.self_service.clusters
    if configured:
        return configured
    cluster = home.settings.cluster
    return (SelfServiceCluster(name=cluster.name, server=cluster.server),)


def issue_for(home: Home, session: Session, mode: str, cluster_name: str) -> Download:
    """The kubeconfig `session`'s person asked for. Raises UsageError (a mode or cluster not
    offered), PolicyError (the signing policy or a ban refuses the person), KeyUnavailable."""
    if mode not in home.settings.self_service.modes:
        raise UsageError(f"the mode {mode!r} is not offered here")
    cluster = next((c for c in offered_clusters(home) if c.name == cluster_name), None)
    if cluster is None:
        raise UsageError(f"the cluster {cluster_name!r} is not offered here")
    issue_mode = IssueMode(mode)
    ca_pem = None
    if cluster.ca_file is not None:
        ca_file = home.layout.path(cluster.ca_file)
        ca_pem = certs_to_pem(load_certificates(ca_file, what=f"CA of cluster {cluster.name}"))
    request = IssueRequest(
        user=session.username,
        # Exec modes carry no groups: the directory names them at each login.
        groups=() if issue_mode.exec_plugin else session.groups,
        mode=issue_mode,
        cluster=cluster.name,
        server=cluster.server,
        ca_pem=ca_pem,
        requester=REQUESTER_PREFIX + session.username,
        source=session.source,
        uid=session.uid,
    )
    issued = KubeconfigIssuer(home).issue(request)
    return Download(download_name(cluster.name, session.username), dump_kubeconfig(issued.config), issued)


def download_name(cluster: str, user: str) -> str:
    """`<cluster>-<user>.kubeconfig`, with only characters every file system and shell take."""
    safe_user = _UNSAFE_FILENAME.sub("_", user).strip("._") or "user"
    return f"{cluster}-{safe_user[:64]}.kubeconfig"


@dataclass(frozen=True, slots=True)
class Command:
    """One command the page shows, with what it does."""

    purpose: str
    text: str


def kubectl_commands(filename: str, context: str) -> list[Command]:
    """How to use a downloaded kubeconfig: on its own, then merged into ~/.kube/config."""
    path = f"~/Downloads/{filename}"
    quoted_context = shlex.quote(context)
    return [
        Command("Use it as it is:", f"kubectl --kubeconfig {path} get pods"),
        Command(
            "Or merge it into ~/.kube/config and switch to it:",
            f"mkdir -p ~/.kube && KUBECONFIG=~/.kube/config:{path} kubectl config view --flatten > ~/.kube/config.new "
            f"&& mv ~/.kube/config.new ~/.kube/config && chmod 600 ~/.kube/config "
            f"&& kubectl config use-context {quoted_context}",
        ),
        Command("See what you may do there:", f"kubectl --context {quoted_context} auth can-i --list"),
    ]
