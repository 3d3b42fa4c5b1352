"""The WSGI entry point: granian calls `authsvc.wsgi:create_wsgi_app` once in each worker process.

`authsvc serve` hands the home over through the environment (AUTHSVC_HOME, AUTHSVC_CONFIG,
AUTHSVC_LISTENER, AUTHSVC_METRICS_DIR); it is read here, once per process, and nowhere deeper.
`authsvc.wsgi:app` is the same app for other WSGI servers (built on first access).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask

from authsvc.errors import ConfigError
from authsvc.home.layout import resolve_home
from authsvc.home.opened import open_home
from authsvc.runtime import build_runtime
from authsvc.web.app import create_app

CONFIG_ENV = "AUTHSVC_CONFIG"
# Which routes this process serves (authsvc.web.app.Listener); `authsvc serve` sets it per listener.
LISTENER_ENV = "AUTHSVC_LISTENER"
# The run's directory of metrics snapshots (authsvc/metrics/share.py), made by `authsvc serve`
# for its workers and its public listener, so that every /metrics answer sums all of them.
METRICS_DIR_ENV = "AUTHSVC_METRICS_DIR"
LOG_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"


def create_wsgi_app(environ: Mapping[str, str] | None = None) -> Flask:
    env = dict(os.environ if environ is None else environ)
    config = env.get(CONFIG_ENV)
    home = open_home(resolve_home(None, env), Path(config) if config else None, environ=env)
    configure_logging()
    listener = env.get(LISTENER_ENV, "all")
    if listener not in ("webhook", "public", "all"):
        raise ConfigError(f"{LISTENER_ENV}={listener!r}: expected webhook, public or all")
    share = env.get(METRICS_DIR_ENV)
    runtime = build_runtime(home, metrics_share=Path(share) if share else None)
    return create_app(runtime, listener)  # type: ignore[arg-type]


def configure_logging() -> None:
    """authsvc's loggers to stderr (granian configures only its own); never a token in a message."""
    logger = logging.getLogger("authsvc")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@cache
def _default_app() -> Flask:
    return create_wsgi_app()


def __getattr__(name: str) -> Any:
    if name == "app":
        return _default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
