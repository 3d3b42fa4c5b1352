"""`authsvc login` and `authsvc logout`: the kubectl exec credential plugin (see authsvc.login.client).

kubectl runs `authsvc login` before every command, so `main()` in authsvc/cli/__init__.py
hands it to `authsvc.login.client.run` before click is even imported; these click commands
serve `--help`, global options (`authsvc --now ... login`) and whatever the fast path declines.
"""

from __future__ import annotations

import json

import click

from authsvc.cli import CliState
from authsvc.errors import AuthsvcError
from authsvc.login.client import LoginError, LoginOptions, check_issuer
from authsvc.login.client import login as exec_login
from authsvc.login.client import logout as forget_tokens


@click.command()
@click.option(
    "--server",
    default=None,
    metavar="URL",
    help="authsvc's login URL: server.public_url + /login, e.g. https://authsvc:8444/login.",
)
@click.option("--username", default=None, help="Directory user name. [default: $AUTHSVC_USERNAME, or asked]")
@click.option("--ca-file", default=None, metavar="FILE", help="CA bundle that verifies the login URL.")
@click.option("--ca-data", default=None, metavar="B64", help="The same as base64 PEM (what kubeconfigs carry).")
@click.option("--browser", is_flag=True, help="Sign in with the browser (OpenID Connect code flow with PKCE).")
@click.option("--issuer", default=None, metavar="URL", help="With --browser: the provider (tokens.user_issuer).")
@click.option("--client-id", default=None, help="With --browser: the OIDC client id (--oidc-client-id).")
@click.option(
    "--credential",
    type=click.Choice(["token", "certificate"]),
    default="token",
    show_default=True,
    help="What to hand kubectl: a token, or a client certificate of minutes for a key made here.",
)
@click.pass_obj
def login(
    state: CliState,
    server: str | None,
    username: str | None,
    ca_file: str | None,
    ca_data: str | None,
    browser: bool,
    issuer: str | None,
    client_id: str | None,
    credential: str,
) -> None:
    """Print an ExecCredential with a token: cached, refreshed, or from a new login.

    \b
    kubectl runs this as a client-go exec plugin (kubeconfigs made by
    `authsvc issue --mode exec [--browser]`, or `--mode exec-cert`).
    Password mode (--server): the password is asked on the terminal, or taken
    from AUTHSVC_PASSWORD for automation; --credential certificate asks for a
    client certificate of minutes (login.certificate_ttl) on a key made here.
    Browser mode (--browser --issuer URL --client-id ID): opens the system
    browser on authsvc's sign-in page (the URL is also printed on stderr),
    receives the code on a loopback port and prints the ID token; later runs
    use the cached token, then its refresh token.
    The CA comes from --ca-file, --ca-data, or the cluster information kubectl
    passes (provideClusterInfo).
    """
    from authsvc.errors import UsageError

    clock = state.clock()
    if browser and (issuer is None or client_id is None):
        raise UsageError("--browser needs --issuer and --client-id")
    if browser and credential != "token":
        raise UsageError("--browser gets an ID token; --credential certificate needs --server")
    if not browser and server is None:
        raise UsageError("--server is required (or --browser with --issuer and --client-id)")
    try:
        target = check_issuer(issuer) if browser and issuer else server or ""
        options = LoginOptions(
            target,
            username=username,
            ca_file=ca_file,
            ca_data=ca_data,
            environ=state.environ,
            now=lambda: clock().timestamp(),
            credential=credential,
        )
        if browser and issuer and client_id:
            from authsvc.login.browser import browser_login

            document = browser_login(options, issuer, client_id)
        else:
            document = exec_login(options)
    except LoginError as e:
        raise AuthsvcError(str(e)) from None
    click.echo(json.dumps(document))


@click.command()
@click.option("--server", default=None, metavar="URL", help="Forget only this login URL's tokens. [default: all]")
@click.pass_obj
def logout(state: CliState, server: str | None) -> None:
    """Forget the tokens `authsvc login` cached (the next kubectl command logs in again)."""
    try:
        dropped = forget_tokens(state.environ, server)
    except LoginError as e:
        raise AuthsvcError(str(e)) from None
    click.echo(f"removed {dropped} cached token{'' if dropped == 1 else 's'}", err=True)
