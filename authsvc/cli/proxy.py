"""`authsvc proxy`: the authentication proxy in front of kube-apiserver (docs/proxy.md)."""

from __future__ import annotations

from pathlib import Path

import click

from authsvc.cli import CliState, long_lived_process


@click.command("proxy")
@click.option("--bind", default=None, metavar="HOST:PORT", help="TLS listener. [default: proxy.bind]")
@click.option(
    "--mode",
    type=click.Choice(["request-header", "impersonation"]),
    default=None,
    help="How the person is named to the API server. [default: proxy.mode]",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="impersonation mode: the service account token. [default: proxy.impersonation.token_file]",
)
@click.option(
    "--metrics-bind",
    default=None,
    metavar="HOST:PORT",
    help="Plain-HTTP /metrics, /healthz, /readyz; '' for none. [default: proxy.metrics_bind]",
)
@click.pass_obj
def proxy(
    state: CliState, bind: str | None, mode: str | None, token_file: Path | None, metrics_bind: str | None
) -> None:
    """Serve the authentication proxy: people's kubectl talks to it, it talks to the API server.

    \b
    Every request is authenticated as the webhook does it (bearer tokens of every kind,
    LDAP logins through `authsvc login`) or by a client certificate from proxy.client_ca
    (the cluster CA), refused with 401 otherwise, and forwarded as the person:
      request-header  with the front-proxy client certificate and X-Remote-User/-Group/-Extra-*
                      (kube-apiserver's --requestheader-* flags, which kubeadm sets;
                      `authsvc apiserver-config --proxy` prints them)
      impersonation   with a service account token allowed to impersonate, and Impersonate-*
    Identity headers sent by clients are stripped. Each request is one audit line.

    \b
    Examples:
      authsvc proxy
      authsvc proxy --mode impersonation --token-file /var/run/authsvc/impersonator.token
      authsvc issue alice -g dev --via-proxy https://k8s-proxy.example:8445 -o alice.kubeconfig
    """
    import asyncio
    import logging

    from authsvc.cli.serve import parse_bind
    from authsvc.proxy.runtime import build_proxy
    from authsvc.proxy.server import Listener, serve, server_context
    from authsvc.proxy.upstream import build_upstream
    from authsvc.runtime import build_runtime

    long_lived_process()
    home = state.home()
    settings = home.settings.proxy
    host, port = parse_bind(bind or settings.bind)
    chosen_metrics = settings.metrics_bind if metrics_bind is None else metrics_bind
    metrics_listener = Listener(*parse_bind(chosen_metrics)) if chosen_metrics else None
    client_ca = home.layout.path(settings.client_ca) if settings.client_ca else None
    context = server_context(
        home.layout.path(settings.tls_cert), home.layout.path(settings.tls_key), client_ca, settings.tls_min_version
    )
    # Everything that can be refused is checked before anything is opened or started.
    upstream = build_upstream(home, mode=mode, token_file=token_file)
    logging.basicConfig(
        level=logging.DEBUG if state.debug else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    runtime = build_runtime(home)
    components = build_proxy(runtime, upstream=upstream)
    listener = Listener(host, port)

    def ready() -> None:
        certificates = f"client certificates from {client_ca}" if client_ca else "no client certificates"
        click.echo(f"authsvc proxy: https://{listener.url} -> {upstream.url} ({upstream.mode} mode, {certificates})")
        if metrics_listener is not None:
            click.echo(f"authsvc proxy: metrics, health on http://{metrics_listener.url}")

    try:
        asyncio.run(serve(components, listener, context, metrics_listener, ready=ready))
    finally:
        components.close()
