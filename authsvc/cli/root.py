"""The click side of the `authsvc` command line: the root group, its global options, and the one
place where errors become a line on stderr. `authsvc.cli.main` imports this module only when
the exec-plugin fast path (`authsvc login`) did not answer; see authsvc/cli/__init__.py.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from authsvc.cli import COMMANDS
from authsvc.home.layout import resolve_home

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient, ClusterSource
    from authsvc.home.opened import Home
    from pki.clock import Clock


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy pattern)."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *sorted(super().list_commands(ctx))]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


class CliState:
    """What the global options resolved to; the home is opened on first use."""

    def __init__(self, home: str | None, config: str | None, debug: bool, now: str | None = None) -> None:
        self.environ: dict[str, str] = dict(os.environ)
        # Resolved with the layout alone: opening the home (settings, SQLAlchemy) is paid only
        # by the commands that use it.
        self.home_path = resolve_home(home, self.environ)
        self.config_path = config
        self.debug = debug
        self.now = now
        self._home: Home | None = None
        # --kubeconfig / --context of the commands that talk to the cluster (options.cluster_options).
        self.kubeconfig: str | None = None
        self.kube_context: str | None = None
        self._cluster: ClusterClient | None = None

    @property
    def actor(self) -> str:
        """Who runs this command, as the audit trail and the inventory's `requester` name them."""
        return "cli:" + (self.environ.get("USER") or self.environ.get("LOGNAME") or "unknown")

    def clock(self) -> Clock:
        """The system clock, or a fixed one when `--now` was given (simulations and tests)."""
        from pki.clock import FixedClock, system_clock

        if self.now is None:
            return system_clock
        import datetime as dt

        try:
            when = dt.datetime.fromisoformat(self.now.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter(f"--now {self.now!r} is not an ISO 8601 time") from None
        return FixedClock(when if when.tzinfo else when.replace(tzinfo=dt.UTC))

    def home(self) -> Home:
        """The opened home (imported lazily: heavy)."""
        if self._home is None:
            from pathlib import Path

            from authsvc.home.opened import open_home

            config = Path(self.config_path) if self.config_path else None
            self._home = open_home(self.home_path, config, clock=self.clock(), environ=self.environ)
        return self._home

    def cluster_source(self) -> ClusterSource | None:
        """Where the cluster connection comes from (authsvc/cluster/connection.py), or None.

        Without a home (`rbac suggest --apply --kubeconfig F` needs none), from the command line
        and the environment alone, with cluster.api's defaults."""
        from authsvc.cluster.connection import home_source, resolve_source

        if self._home is None and self.config_path is None and not self.home_path.is_dir():
            from pathlib import Path

            from authsvc.settings.cluster import ClusterAPISettings

            return resolve_source(
                option=self.kubeconfig,
                context=self.kube_context,
                settings=ClusterAPISettings(),
                home_root=Path.cwd(),
                environ=self.environ,
            )
        return home_source(self.home(), self.environ, option=self.kubeconfig, context=self.kube_context)

    def cluster(self, *, required: bool = False) -> ClusterClient | None:
        """The cluster connection, or None when nothing configures one (NoClusterConnection if `required`)."""
        if self._cluster is None:
            from authsvc.cluster.connection import connect, require_source

            source = self.cluster_source()
            if source is None and not required:
                return None
            self._cluster = connect(require_source(source))
        return self._cluster

    def require_cluster(self) -> ClusterClient:
        client = self.cluster(required=True)
        assert client is not None
        return client

    def close(self) -> None:
        """Close what the command opened (the database's connections, the cluster client's), when
        it ends: not left to the garbage collector, which a command's process skips at exit
        (authsvc/cli/__init__.py). A SQLite database is checkpointed as its last connection closes."""
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None
        if self._home is not None:
            self._home.stores.close()


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--home",
    metavar="DIR",
    help="State directory (config, PKI, inventory). Default: $AUTHSVC_HOME or ./authsvc-data.",
)
@click.option("--config", metavar="FILE", help="Configuration file. Default: <home>/authsvc.yaml.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("--now", hidden=True, metavar="TIME", help="Pretend the time is TIME (ISO 8601): simulations and tests.")
@click.version_option(package_name="authsvc")
@click.pass_context
def cli(ctx: click.Context, home: str | None, config: str | None, debug: bool, now: str | None) -> None:
    """authsvc: the PKI and authentication service for Kubernetes clusters.

    \b
    Typical first steps:
      authsvc init                          create a home with the cluster PKI
      authsvc cluster bootstrap --kubeconfig authsvc-data/super-admin.conf
                                            kubeadm's RBAC and discovery objects
      authsvc issue alice -g dev -o a.conf  hand a person a kubeconfig
      authsvc serve                         run the TokenReview webhook
    """
    ctx.obj = CliState(home, config, debug, now)
    ctx.call_on_close(ctx.obj.close)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text


def run_cli(argv: list[str] | None = None) -> None:
    """The click command line (authsvc.cli.main calls it): 0 success, 1 explained failure, 2 bad usage."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        # Without standalone mode click returns ctx.exit(n)'s code instead of raising.
        code = cli.main(args=argv, prog_name="authsvc", standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as e:
        if debug:
            raise
        sys.exit(_report(e))
    sys.exit(0)


def _report(error: Exception) -> int:
    from authsvc.errors import AuthsvcError, UsageError
    from pki.errors import PKIError

    if isinstance(error, UsageError):
        click.echo(f"error: {_one_line(error)}", err=True)
        return 2
    if isinstance(error, AuthsvcError | PKIError):
        click.echo(f"error: {_one_line(error)}", err=True)
        return 1
    if isinstance(error, OSError):
        click.echo(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), err=True)
        return 1
    # A bug, not a user error: its message may mean nothing to the operator (or quote a secret).
    click.echo("error: internal error (run with --debug)", err=True)
    return 1
