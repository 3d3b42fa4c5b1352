"""The Dockerfile and .dockerignore, linted as text (no Docker engine runs in CI).

Each rule has its failing twin: the real Dockerfile with one thing broken must be caught."""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authsvc.home.opened import Home
from tests.components.support import free_port
from tests.deploy.dockerfile_lint import instructions, lint_dockerfile, stages
from tests.serve.support import authsvc_serve

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text()


def test_the_dockerfile_passes_every_rule() -> None:
    assert lint_dockerfile(DOCKERFILE) == []


def test_the_final_stage_runs_authsvc_serve_as_uid_10001() -> None:
    final = stages(instructions(DOCKERFILE))[-1]
    by_keyword = {i.keyword: i.arguments for i in final}
    assert by_keyword["USER"] == "10001:10001"  # numeric: runAsNonRoot can check it
    assert by_keyword["CMD"].startswith('["serve"')
    assert "8443" in by_keyword["EXPOSE"]


def test_copied_sources_exist_in_the_repository() -> None:
    for instruction in instructions(DOCKERFILE):
        if instruction.keyword != "COPY" or "--from=" in instruction.arguments:
            continue
        for source in instruction.arguments.split()[:-1]:
            matches = list(REPO.glob(source.rstrip("/")))
            assert matches or "[" in source, f"line {instruction.line}: {source} does not exist"


BREAKAGES = {
    "floating base": (
        "FROM python:3.11.11-slim-bookworm AS runtime",
        "FROM python:3.11-slim AS runtime",
        "not pinned",
    ),
    "latest base": ("FROM python:3.11.11-slim-bookworm AS build", "FROM python:latest AS build", "not pinned"),
    "root user": ("USER 10001:10001", "USER root", "non-root USER"),
    "no user": ("USER 10001:10001", "", "non-root USER"),
    "add": ("COPY authsvc/ authsvc/", "ADD authsvc/ authsvc/", "ADD"),
    "key copied": ("COPY authsvc/ authsvc/", "COPY authsvc/ authsvc/\nCOPY authsvc-data/pki/ca.key /x/", "secret"),
    "env file copied": ("COPY pki/ pki/", "COPY pki/ pki/\nCOPY .env /src/", "secret"),
    "password in env": ("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 DB_PASSWORD=hunter2", "a secret in ENV"),
    "no healthcheck": ("HEALTHCHECK", "# HEALTHCHECK", "HEALTHCHECK"),
    "shell entrypoint": ('ENTRYPOINT ["authsvc"]', "ENTRYPOINT authsvc", "ENTRYPOINT"),
    "other entrypoint": ('ENTRYPOINT ["authsvc"]', 'ENTRYPOINT ["python"]', "ENTRYPOINT"),
}


@pytest.mark.parametrize("name", BREAKAGES)
def test_each_rule_catches_its_breakage(name: str) -> None:
    old, new, problem = BREAKAGES[name]
    assert old in DOCKERFILE
    problems = lint_dockerfile(DOCKERFILE.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_a_single_stage_dockerfile_is_refused() -> None:
    final_stage = DOCKERFILE[DOCKERFILE.index("FROM python:3.11.11-slim-bookworm AS runtime") :]
    assert any("not multi-stage" in p for p in lint_dockerfile(final_stage))


def ignored(path: str) -> bool:
    """Whether Docker's build context leaves `path` out (last matching pattern wins, `!` re-includes)."""
    result = False
    for raw in DOCKERIGNORE.splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        suffixes = ["/".join(parts[i:]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, c) for c in candidates for p in prefixes + suffixes):
            result = not negate
    return result


@pytest.mark.parametrize(
    "path",
    [
        "authsvc-data/pki/ca.key",
        "pki/ca.key",
        "authsvc/server.pem",
        ".env",
        "authsvc/.env.prod",
        "authsvc.db",
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "authsvc/__pycache__/x.pyc",
    ],
)
def test_dockerignore_keeps_secrets_and_clutter_out(path: str) -> None:
    assert ignored(path)


@pytest.mark.parametrize(
    "path", ["pyproject.toml", "pki/ca.py", "authsvc/cli/__init__.py", "authsvc/db/migrations/env.py"]
)
def test_dockerignore_keeps_the_sources(path: str) -> None:
    assert not ignored(path)


def healthcheck_command() -> list[str]:
    final = stages(instructions(DOCKERFILE))[-1]
    arguments = next(i.arguments for i in final if i.keyword == "HEALTHCHECK")
    command: list[str] = json.loads(arguments[arguments.index("CMD") + 3 :].strip())
    return command


def test_the_image_serves_both_listeners() -> None:
    final = stages(instructions(DOCKERFILE))[-1]
    by_keyword = {i.keyword: i.arguments for i in final}
    assert json.loads(by_keyword["CMD"]) == ["serve", "--bind", "0.0.0.0:8443", "--public-bind", "0.0.0.0:8444"]
    assert by_keyword["EXPOSE"].split() == ["8443", "8444"]


def test_the_healthcheck_is_an_https_get_of_healthz(home: Home, tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, run against a real `authsvc serve`: it passes against the
    public listener, and fails against the webhook listener (no client certificate) and a closed
    port: a TCP connect alone would have passed the second."""
    command = healthcheck_command()
    command[0] = sys.executable  # the image's python is this one
    webhook, public = free_port(), free_port()
    environ = {**os.environ, "AUTHSVC_HOME": str(home.root)}

    def check(url: str) -> int:
        done = subprocess.run(command, env={**environ, "AUTHSVC_HEALTHZ_URL": url}, capture_output=True, timeout=30)
        return done.returncode

    with authsvc_serve(home.root, tmp_path / "serve.log", webhook=webhook, public=public):
        assert check(f"https://127.0.0.1:{public}/healthz") == 0
        assert check(f"https://127.0.0.1:{webhook}/healthz") != 0
    assert check(f"https://127.0.0.1:{public}/healthz") != 0
