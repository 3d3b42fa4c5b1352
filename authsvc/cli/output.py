"""Rendering of reports: `-o table|json|yaml`, one implementation for every command."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_option(*choices: str, default: str = "table") -> Callable[[F], F]:
    options = choices or ("table", "json", "yaml")
    return click.option(
        "-o",
        "--output",
        "output_format",
        type=click.Choice(options),
        default=default,
        show_default=True,
        help="Output format.",
    )


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Columns are (header, key); widths fit the content, like kubectl's and kubeadm's tables."""
    cells = [[h for h, _ in columns]] + [[_cell(row.get(key)) for _, key in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "<none>"
    return str(value)


def emit(data: Any, fmt: str, *, columns: Sequence[tuple[str, str]] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif fmt == "yaml":
        import yaml

        click.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip())
    else:
        rows = data if isinstance(data, list) else [data]
        click.echo(render_table(rows, columns or [(k.upper(), k) for k in (rows[0] if rows else {})]))
