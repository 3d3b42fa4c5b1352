"""`authsvc audit`: read the audit trail (audit.path), filtered, as it streams by."""

from __future__ import annotations

import json
from typing import Any

import click

from authsvc.cli import CliState
from authsvc.cli.output import output_option

# Fixed widths: rows are printed as they are read, never held to size the columns.
ROW = "{time:<24} {actor:<20} {action:<22} {subject:<20} {outcome:<8} {rest}"


@click.command("audit")
@click.option("--user", default=None, help="Lines about this user (subject) or by them (actor).")
@click.option(
    "--since", default=None, metavar="TIME|DURATION", help="From this time (ISO 8601) or this long ago (24h)."
)
@click.option("--action", default=None, help="An action (cert.revoke) or its start (cert: issue, renew, revoke).")
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="PATH|-",
    help="Trail(s) to read, in order; '-' is stdin, *.gz is read as gzip. [default: audit.path]",
)
@output_option("table", "json", default="table")
@click.pass_obj
def audit(
    state: CliState, user: str | None, since: str | None, action: str | None, files: tuple[str, ...], output_format: str
) -> None:
    """Every issuance, renewal, revocation, ban, grant, login, CSR decision and TokenReview
    decision, one line each: time, actor, action, subject, outcome, reason, ids.

    \b
    -o json prints the lines themselves (JSON lines), for jq and log pipelines.

    \b
    Examples:
      authsvc audit --user alice --since 24h
      authsvc audit --action access -o json
      authsvc audit --file /var/log/authsvc/audit.log.1.gz --action login
      kubectl logs -n authsvc deploy/authsvc | authsvc audit --file - --user alice
    """
    from authsvc.audit.reader import AuditFilter, ReadReport, parse_since, read
    from authsvc.errors import ConfigError

    home = state.home() if not files or since else None
    sources = list(files)
    if not sources:
        assert home is not None
        if home.settings.audit.path == "-":
            raise ConfigError("audit.path is '-' (standard error): give the file your logs went to with --file")
        sources = [str(home.root / home.settings.audit.path)]
    when = parse_since(since, state.clock()()) if since else None
    report = ReadReport()
    if output_format == "table":
        click.echo(ROW.format(time="TIME", actor="ACTOR", action="ACTION", subject="SUBJECT", outcome="OUTCOME",
                              rest="REASON / IDS"))  # fmt: skip
    for record in read(sources, AuditFilter(user, when, action), report):
        click.echo(json.dumps(record, separators=(",", ":")) if output_format == "json" else _row(record))
    if report.skipped:
        click.echo(f"note: {report.skipped} of {report.lines} lines are not audit lines (skipped)", err=True)


def _row(record: dict[str, Any]) -> str:
    ids = " ".join(f"{k}={v}" for k, v in (record.get("ids") or {}).items())
    rest = "; ".join(part for part in (str(record.get("reason") or ""), ids) if part)
    return ROW.format(
        time=str(record.get("time", ""))[:23],
        actor=str(record.get("actor") or "-"),
        action=str(record.get("action", "")),
        subject=str(record.get("subject") or "-"),
        outcome=str(record.get("outcome", "")),
        rest=rest,
    ).rstrip()
