"""Option types shared by several commands (durations, names, the cluster connection)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

import click

from pki.durations import parse_duration
from pki.names import check_name

F = TypeVar("F", bound=Callable[..., Any])


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


def _remember(attribute: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    def store(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        if value is not None:
            setattr(ctx.obj, attribute, value)

    return store


def cluster_options(command: F) -> F:
    """--kubeconfig and --context for a command that talks to the cluster (CliState.cluster())."""
    command = click.option(
        "--context",
        metavar="NAME",
        expose_value=False,
        callback=_remember("kube_context"),
        help="Kubeconfig context to use. [default: cluster.api.context, else the current context]",
    )(command)
    return click.option(
        "--kubeconfig",
        metavar="FILE",
        expose_value=False,
        callback=_remember("kubeconfig"),
        help="Kubeconfig for the cluster's API server. [default: cluster.api.kubeconfig, else $KUBECONFIG, "
        "else the pod's service account]",
    )(command)
