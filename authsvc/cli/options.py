"""Option types shared by several commands (durations, names)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from pki.durations import parse_duration
from pki.names import check_name


class DurationType(click.ParamType):  # type: ignore[type-arg]
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class NameType(click.ParamType):  # type: ignore[type-arg]
    """A user, group or cluster name: no control characters, no path separators."""

    name = "NAME"

    def __init__(self, what: str = "name") -> None:
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return check_name(str(value), what=self.what)
        except ValueError as e:
            self.fail(str(e), param, ctx)


DURATION = DurationType()
