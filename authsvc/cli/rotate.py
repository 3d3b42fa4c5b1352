"""`authsvc rotate`: what cron runs. Renews, advances key phases, refreshes CRLs, reports."""

from __future__ import annotations

import datetime as dt

import click

from authsvc.cli import CliState
from authsvc.cli.options import DURATION
from authsvc.cli.output import emit, output_option

COLUMNS = [("KIND", "kind"), ("TARGET", "target"), ("STATUS", "status"), ("REASON", "reason"), ("DETAIL", "detail")]


@click.command("rotate")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing (no lock, no file, no database write).")
@click.option(
    "--renew-before",
    type=DURATION,
    default=None,
    help="Renew automatic certificates with less than this left. [default: rotation.renew_before, 30d]",
)
@output_option("table", "json")
@click.pass_context
def rotate(ctx: click.Context, dry_run: bool, renew_before: dt.timedelta | None, output_format: str) -> None:
    """Keep everything valid: run it daily (systemd timer, Kubernetes CronJob).

    \b
    - renews automatic certificates inside their window (kubeadm's tree, the kubeconfigs
      that embed them, the webhook's serving and client certificates), with their own keys;
    - reports people's certificates near expiry (never renews them);
    - moves the token signing key through prepare → activate → retire on schedule;
    - re-signs CRLs before their nextUpdate; forgets records expired past rotation.retention;
    - reports CAs that expire within rotation.ca_warn_within (`authsvc ca rotate`).

    \b
    Exit status: 0 all well; 1 something failed (the others still ran); 3 done, but a human
    must act. A second run waits for the first (rotation.lock_timeout), then exits 1.
    """
    from authsvc.rotation.executor import rotate as run

    state: CliState = ctx.obj
    home = state.home()
    try:
        report = run(home, dry_run=dry_run, renew_before=renew_before)
    finally:
        home.stores.engine.dispose()  # closes SQLite: nothing of a dry run is left open or written
    if output_format == "json":
        emit(report.as_dict(), "json")
    else:
        rows = [r.as_dict() for r in report.results]
        if rows:
            emit(rows, "table", columns=COLUMNS)
        summary = report.summary()
        not_listed = report.as_dict()["actionsNotListed"]
        more = f" ({not_listed} more not listed)" if not_listed else ""
        prefix = "dry run: " if dry_run else ""
        click.echo(
            f"{prefix}planned {summary['planned']}, done {summary['done']}, failed {summary['failed']}, "
            f"needs a human {summary['needs_human']}{more}"
        )
    if any(r.status == "done" and r.action.kind == "renew" for r in report.results):
        from authsvc.certs.renewal import RESTART_HINT

        click.echo(f"certificates were renewed: {RESTART_HINT} (and authsvc serve)", err=True)
    ctx.exit(report.exit_code)
