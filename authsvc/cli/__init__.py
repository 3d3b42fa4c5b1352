"""The `authsvc` command line.

Commands live one group per module and are imported only when called: kubectl runs
`authsvc login` before every command, so the start-up path must stay light.
Errors are turned into one line on stderr in authsvc/cli/root.py, and only there.
"""

from __future__ import annotations

import gc
import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the fast path ~4 ms
if TYPE_CHECKING:
    from authsvc.cli.root import CliState, LazyGroup, cli

# name -> "module:attribute". Order is the order `--help` lists them in.
COMMANDS: dict[str, str] = {
    "init": "authsvc.cli.init:init",
    "certs": "authsvc.cli.certs:certs",
    "crl": "authsvc.cli.certs:crl",
    "pki": "authsvc.cli.pki:pki",
    "db": "authsvc.cli.db:db",
    "issue": "authsvc.cli.issue:issue",
    "access": "authsvc.cli.access:access",
    "audit": "authsvc.cli.audit:audit",
    "cluster": "authsvc.cli.cluster:cluster",
    "serve": "authsvc.cli.serve:serve",
    "proxy": "authsvc.cli.proxy:proxy",
    "webhook-config": "authsvc.cli.webhook_config:webhook_config",
    "apiserver-config": "authsvc.cli.webhook_config:apiserver_config",
    "token": "authsvc.cli.token:token",
    "tokens": "authsvc.cli.tokens:tokens",
    "keys": "authsvc.cli.keys:keys",
    "login": "authsvc.cli.login:login",
    "logout": "authsvc.cli.login:logout",
    "ldap": "authsvc.cli.ldap:ldap",
    "users": "authsvc.cli.users:users",
    "rotate": "authsvc.cli.rotate:rotate",
    "ca": "authsvc.cli.ca:ca",
    "rbac": "authsvc.cli.rbac:rbac",
    "csr": "authsvc.cli.csr:csr",
    "csr-signer": "authsvc.cli.csr:csr_signer",
}

# The exec-plugin fast path. kubectl runs `authsvc login` before every command, and
# importing click (~30 ms) plus the root group's stack (settings, pydantic, SQLAlchemy, ...)
# would multiply the plugin's start-up time. So `login`/`logout` given as the first argument
# go to authsvc.login.client (standard library only) before click is imported; anything it
# does not handle (--help, global options, usage errors) falls through to click as usual.
# The click code lives in authsvc/cli/root.py; `from authsvc.cli import CliState` still works.
FAST_COMMANDS = frozenset({"login", "logout"})

# The garbage collector of a command's process. Starting a command creates some 75,000
# objects that live as long as the process (modules, classes, pydantic's validators,
# SQLAlchemy's tables): the collections that the default thresholds (700, 10, 10) run while
# they are made find nothing to free and cost ~40 ms, and the interpreter's last collections at
# exit, over the same objects, ~80 ms more (the operating system frees them at once anyway).
# So a command's process collects young objects every 50,000 allocations instead of 700, and
# freezes what is left when the command returns (its database connections are closed by then:
# CliState.close). Commands that serve for hours put the defaults back (long_lived_process).
DEFAULT_GC_THRESHOLDS = gc.get_threshold()
COMMAND_GC_THRESHOLDS = (50_000, 20, 20)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: 0 success, 1 explained failure, 2 bad usage.

    `argv` None is the process itself (the console script, `python -m authsvc.cli`): only then
    is the garbage collector tuned (tests call main(argv) inside their own process)."""
    # Everything authsvc creates is private unless a write sets a wider mode on purpose
    # (certificates 0644); SQLite's journal files and library temp files included.
    os.umask(0o077)
    process = argv is None
    if process:
        gc.set_threshold(*COMMAND_GC_THRESHOLDS)
    try:
        _run(sys.argv[1:] if argv is None else argv, argv)
    finally:
        if process:
            gc.freeze()


def _run(args: list[str], argv: list[str] | None) -> None:
    if args and args[0] in FAST_COMMANDS:
        from authsvc.login.client import run

        status = run(list(args))
        if status is not None:
            sys.exit(status)
    from authsvc.cli.root import run_cli

    run_cli(argv)


def long_lived_process() -> None:
    """The garbage collector's default thresholds, for commands that run until stopped (`serve`,
    `proxy`, `csr-signer`): they allocate for hours, and granian's workers inherit the setting."""
    gc.set_threshold(*DEFAULT_GC_THRESHOLDS)


def __getattr__(name: str) -> object:
    """CliState, LazyGroup and cli, imported from authsvc.cli.root on first use (click)."""
    if name in {"CliState", "LazyGroup", "cli"}:
        from authsvc.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["COMMANDS", "CliState", "LazyGroup", "cli", "long_lived_process", "main"]
