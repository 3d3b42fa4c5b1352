"""`authsvc webhook-config` and `authsvc apiserver-config`: the API server's side of authsvc.

- webhook-config: the kubeconfig-format file for `--authentication-token-webhook-config-file`
  (the webhook's URL, the CA that signed its serving certificate, and the API server's client
  certificate and key for it), plus the flags to add;
- apiserver-config: an AuthenticationConfiguration (structured authentication,
  apiserver.config.k8s.io) with a JWT authenticator for the user tokens authsvc signs (under
  `tokens.user_issuer`), so an API server that supports it verifies them itself; the webhook
  stays for the rest. With the OpenID Connect provider on (`oidc.clients`), also the `--oidc-*`
  flags that make an API server without structured authentication (before 1.30) verify the ID
  tokens of `authsvc login --browser`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION
from authsvc.errors import InvalidInput

if TYPE_CHECKING:
    from authsvc.home.opened import Home
    from authsvc.settings.server import ServerSettings
    from authsvc.settings.tokens import TokenSettings

WEBHOOK_CLUSTER = "authsvc"
WEBHOOK_USER = "kube-apiserver"
WEBHOOK_CONTEXT = "webhook"
# How long kube-apiserver keeps a webhook answer: what it caches, a revocation or a directory
# change reaches it only after this. kube-apiserver's own default is 2m; 30s matches
# authn.cache_ttl and config/apiserver/.
DEFAULT_WEBHOOK_CACHE_TTL = dt.timedelta(seconds=30)


def webhook_url(url: str) -> str:
    """An https URL; `/authenticate` when no path is given. ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidInput(f"--url {url!r} must be an https:// URL (the webhook serves TLS only)")
    path = parts.path if parts.path not in ("", "/") else "/authenticate"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def default_webhook_url(bind: str) -> str:
    """The webhook listener's URL from `server.bind` (what `serve` listens on without --bind).
    ValueError for a wildcard address: the API server needs one it can reach, and the serving
    certificate must name it."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - recognising a wildcard, not binding one
        raise InvalidInput(
            f"server.bind {bind!r} listens on every address: pass --url with the one the API server reaches"
        )
    return f"https://{f'[{host}]' if ':' in host else host}:{port}/authenticate"


def webhook_kubeconfig(url: str, ca_pem: bytes, client_cert_pem: bytes, client_key_pem: bytes) -> dict[str, Any]:
    from authsvc.kubeconfig.documents import ClusterEntry, UserEntry, build_kubeconfig

    return build_kubeconfig(
        ClusterEntry(WEBHOOK_CLUSTER, webhook_url(url), ca_pem),
        UserEntry(WEBHOOK_USER, client_cert_pem=client_cert_pem, client_key_pem=client_key_pem),
        context_name=WEBHOOK_CONTEXT,
    )


def webhook_flags(config_file: str, cache_ttl: dt.timedelta) -> list[str]:
    return [
        f"--authentication-token-webhook-config-file={config_file}",
        "--authentication-token-webhook-version=v1",
        f"--authentication-token-webhook-cache-ttl={int(cache_ttl.total_seconds())}s",
    ]


def authentication_configuration(
    *,
    api_version: str,
    issuer: str,
    audiences: Sequence[str],
    ca_pem: bytes | None,
    discovery_url: str | None,
    username_claim: str = "sub",
    username_prefix: str = "",
    groups_claim: str | None = "groups",
    groups_prefix: str = "",
    uid_claim: str | None = "uid",
) -> dict[str, Any]:
    """AuthenticationConfiguration with one JWT authenticator (field names as in apiserver.config.k8s.io)."""
    issuer_entry: dict[str, Any] = {"url": issuer, "audiences": list(audiences)}
    if len(audiences) > 1:
        issuer_entry["audienceMatchPolicy"] = "MatchAny"
    if discovery_url:
        issuer_entry["discoveryURL"] = discovery_url
    if ca_pem:
        issuer_entry["certificateAuthority"] = ca_pem.decode()
    mappings: dict[str, Any] = {"username": {"claim": username_claim, "prefix": username_prefix}}
    if groups_claim:
        mappings["groups"] = {"claim": groups_claim, "prefix": groups_prefix}
    if uid_claim:
        # Not {"claim": uid_claim}: kube-apiserver then refuses every token without that claim
        # ("oidc: parse uid claim: claim not present"), and a user token has a uid only when given one.
        mappings["uid"] = {"expression": f"has(claims.{uid_claim}) ? claims.{uid_claim} : ''"}
    return {
        "apiVersion": f"apiserver.config.k8s.io/{api_version}",
        "kind": "AuthenticationConfiguration",
        "jwt": [{"issuer": issuer_entry, "claimMappings": mappings}],
    }


def dump_yaml(document: dict[str, Any]) -> str:
    """YAML with multi-line strings (the CA's PEM) as literal blocks, as people write them."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False)


def _client_key_pem(home: Home, key_file: Path) -> bytes:
    """The client key in clear PKCS#8 (the API server cannot decrypt one), whatever the file holds."""
    from pki.keys import private_key_to_pem

    key = home.secrets.load_private_key(key_file, what="webhook client key", encrypt=False, trusted=False)
    return private_key_to_pem(key)


@click.command("webhook-config")
@click.option(
    "--url", default=None, help="The webhook URL the API server calls. [default: https://<server.bind>/authenticate]"
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write (0600).")
@click.option("--cache-ttl", type=DURATION, default=DEFAULT_WEBHOOK_CACHE_TTL, show_default="30s")
@click.pass_obj
def webhook_config(state: CliState, url: str | None, out: Path | None, cache_ttl: dt.timedelta) -> None:
    """Write the API server's webhook kubeconfig and print the flags to add.

    The file holds the API server's client key: it is written 0600, or printed to stdout
    (the flags then go to stderr).

    \b
    Example:
      authsvc webhook-config --url https://10.0.0.5:8443/authenticate -o /etc/kubernetes/authsvc-webhook.conf
    """
    from authsvc.errors import UsageError
    from authsvc.init.webhook_pki import APISERVER_WEBHOOK_CLIENT
    from authsvc.kubeconfig.documents import dump_kubeconfig, write_kubeconfig
    from pki.store import read_bytes

    home = state.home()
    try:
        config = webhook_kubeconfig(
            url or default_webhook_url(home.settings.server.bind),
            read_bytes(home.layout.cert_path("ca"), what="cluster CA certificate"),
            read_bytes(home.layout.cert_path(APISERVER_WEBHOOK_CLIENT), what="webhook client certificate"),
            _client_key_pem(home, home.layout.key_path(APISERVER_WEBHOOK_CLIENT)),
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if out is None:
        click.echo(dump_kubeconfig(config).decode(), nl=False)
    else:
        write_kubeconfig(out, config)
    target = str(out.resolve()) if out else "<this file>"
    click.echo("\n".join(["# add to kube-apiserver:", *webhook_flags(target, cache_ttl)]), err=out is None)


def user_token_issuer(tokens: TokenSettings, requested: str | None) -> str:
    """The issuer a JWT authenticator for authsvc's user tokens must name: the one they are signed
    with, `tokens.user_issuer`. The service-account issuer cannot be it (kube-apiserver refuses a
    JWT authenticator for its own --service-account-issuer), nor can any other URL (no token has it)."""
    from authsvc.errors import ConfigError, UsageError

    if tokens.user_issuer is None:
        raise ConfigError(
            f"user tokens carry the service-account issuer {tokens.issuer}, which kube-apiserver refuses for a "
            "JWT authenticator: set tokens.user_issuer in authsvc.yaml (e.g. https://authsvc.example:8444/users)"
        )
    if requested is not None and requested != tokens.user_issuer:
        raise UsageError(
            f"--issuer {requested} is not tokens.user_issuer {tokens.user_issuer}, the issuer of the user tokens "
            "authsvc signs: that configuration would accept none of them"
        )
    return tokens.user_issuer


def default_discovery_url(server: ServerSettings, issuer: str) -> str:
    """The user issuer's discovery document on the public listener (which needs no client certificate)."""
    from pki.tokens.jwks import discovery_path

    public_url = server.published_url(
        "the API server fetches the user issuer's discovery there (or pass --discovery-url)"
    )
    return public_url.rstrip("/") + discovery_path(issuer)


@click.command("apiserver-config")
@click.option("--api-version", type=click.Choice(["v1beta1", "v1"]), default="v1beta1", show_default=True)
@click.option(
    "--issuer", default=None, help="Issuer (iss) of the user tokens; must be tokens.user_issuer. [default: that]"
)
@click.option(
    "--audience", "audiences", multiple=True, help="Accepted aud; repeatable. [default: tokens.user_audience]"
)
@click.option(
    "--discovery-url",
    default=None,
    help="Where the API server fetches discovery. "
    "[default: <server.public_url><path of tokens.user_issuer>/.well-known/openid-configuration]",
)
@click.option("--username-prefix", default="", help="Prefix of user names from these tokens.")
@click.option("--groups-prefix", default="", help="Prefix of group names from these tokens.")
@click.option(
    "--client-id",
    default=None,
    help="OIDC client whose ID tokens the API server accepts (--oidc-client-id). [default: the only public one]",
)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="File to write.")
@click.pass_obj
def apiserver_config(
    state: CliState,
    api_version: str,
    issuer: str | None,
    audiences: tuple[str, ...],
    discovery_url: str | None,
    username_prefix: str,
    groups_prefix: str,
    client_id: str | None,
    out: Path | None,
) -> None:
    """Write an AuthenticationConfiguration that verifies authsvc's user tokens natively.

    For kube-apiserver 1.30+ (v1beta1) or 1.34+ (v1), flag --authentication-config (it
    cannot be combined with --oidc-* flags). Claims: sub → user name, groups, uid.
    Needs tokens.user_issuer: kube-apiserver refuses a JWT authenticator for its own
    --service-account-issuer, which user tokens carry otherwise.

    With oidc.clients set, the file also accepts the ID tokens of the OIDC client
    (`authsvc login --browser`), and the --oidc-* flags that do the same on API
    servers without structured authentication are printed too (use one or the
    other: kube-apiserver refuses both together).

    \b
    Example:
      authsvc apiserver-config -o /etc/kubernetes/authsvc-authn.yaml
    """
    from pki.store import atomic_write, read_bytes

    home = state.home()
    tokens = home.settings.tokens
    chosen_issuer = user_token_issuer(tokens, issuer)
    oidc_client = _oidc_client(home, client_id)
    default_audiences = (tokens.user_audience, *([oidc_client] if oidc_client else []))
    document = authentication_configuration(
        api_version=api_version,
        issuer=chosen_issuer,
        audiences=audiences or default_audiences,
        ca_pem=read_bytes(home.layout.cert_path("ca"), what="cluster CA certificate"),
        discovery_url=discovery_url or default_discovery_url(home.settings.server, chosen_issuer),
        username_prefix=username_prefix,
        groups_prefix=groups_prefix,
    )
    text = dump_yaml(document)
    if out is None:
        click.echo(text, nl=False)
    else:
        atomic_write(out, text.encode(), 0o600)
        click.echo(f"# add to kube-apiserver:\n--authentication-config={out.resolve()}")
    if oidc_client is not None:
        flags = oidc_flags(
            issuer=chosen_issuer,
            client_id=oidc_client,
            ca_file=home.layout.cert_path("ca").resolve(),
            algorithms=sorted({key.algorithm for key in home.stores.token_service.published_keys()}),
            username_prefix=username_prefix,
            groups_prefix=groups_prefix,
        )
        heading = "# or, for API servers without structured authentication (before 1.30), instead of that file:"
        click.echo("\n".join([heading, *flags]), err=out is None)


def _oidc_client(home: Home, requested: str | None) -> str | None:
    """The OIDC client whose ID tokens the API server takes: --client-id, or the only public one."""
    from authsvc.errors import UsageError

    oidc = home.settings.oidc
    if requested is not None:
        if oidc.client(requested) is None:
            known = ", ".join(c.id for c in oidc.clients) or "none"
            raise UsageError(f"--client-id {requested!r} is not in oidc.clients (configured: {known})")
        return requested
    public = oidc.public_clients()
    if len(public) > 1:
        names = ", ".join(c.id for c in public)
        raise UsageError(f"several public OIDC clients ({names}): choose the API server's with --client-id")
    return public[0].id if public else None


def oidc_flags(
    *,
    issuer: str,
    client_id: str,
    ca_file: Path,
    algorithms: Sequence[str],
    username_prefix: str = "",
    groups_prefix: str = "",
) -> list[str]:
    """kube-apiserver's --oidc-* flags for the ID tokens of authsvc's provider (1.20 to 1.32).

    `--oidc-username-prefix=-` when no prefix is wanted: for a claim other than `email`,
    kube-apiserver otherwise prefixes user names with `<issuer>#`."""
    flags = [
        f"--oidc-issuer-url={issuer}",
        f"--oidc-client-id={client_id}",
        "--oidc-username-claim=sub",
        f"--oidc-username-prefix={username_prefix or '-'}",
        "--oidc-groups-claim=groups",
    ]
    if groups_prefix:
        flags.append(f"--oidc-groups-prefix={groups_prefix}")
    flags.append(f"--oidc-ca-file={ca_file}")
    if algorithms and list(algorithms) != ["RS256"]:  # kube-apiserver's default is RS256 alone
        flags.append(f"--oidc-signing-algs={','.join(algorithms)}")
    return flags
