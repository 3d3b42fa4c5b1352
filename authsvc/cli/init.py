"""`authsvc init`: create a home with its configuration and the cluster PKI."""

from __future__ import annotations

import click

from authsvc.cli import CliState


@click.command()
@click.option("--cluster-name", default=None, help="Cluster name written into kubeconfigs. [default: kubernetes]")
@click.option("--server", default=None, metavar="URL", help="API server URL for kubeconfigs.")
@click.option("--dry-run", is_flag=True, help="Print what would be created; write nothing.")
@click.pass_obj
def init(state: CliState, cluster_name: str | None, server: str | None, dry_run: bool) -> None:
    """Create the home: authsvc.yaml, the cluster CA and the files in kubeadm's layout.

    Running it again completes a partial home and never overwrites an existing file.
    """
    from authsvc.settings import Settings, load_settings
    from authsvc.setup import initialize_home

    config_path = state.home_path / "authsvc.yaml"
    settings = load_settings(config_path) if config_path.exists() else Settings()
    overrides = {k: v for k, v in {"name": cluster_name, "server": server}.items() if v}
    if overrides:
        settings = settings.model_copy(update={"cluster": settings.cluster.model_copy(update=overrides)})
    ctx = initialize_home(state.home_path, settings, clock=state.clock(), environ=state.environ, dry_run=dry_run)
    if dry_run:
        for line in ctx.planned:
            click.echo(f"would {line}")
        return
    for path in ctx.written:
        click.echo(f"created {path}")
    if not ctx.written:
        click.echo(f"{state.home_path} is already initialised; nothing to do")
