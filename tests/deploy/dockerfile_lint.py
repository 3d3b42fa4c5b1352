"""A small Dockerfile linter for the rules this project holds its image to (no Docker engine
runs in CI, so the file is checked as text): pinned bases, multi-stage, a non-root USER, no
secrets copied in, a HEALTHCHECK, `authsvc` as the entrypoint."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

SECRET_SOURCE = re.compile(r"(\.key|\.pem|\.p12|\.pfx|\.kubeconfig|(^|/)\.env(\.|$)|authsvc-data|id_rsa|\.db)$")
ROOT_USERS = {"root", "0", "0:0", "root:root"}


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str
    arguments: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """Logical instructions: continuation lines joined, comments and blank lines dropped."""
    result: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip(), start))
        pending = ""
    return result


def stages(parsed: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in parsed:
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def exec_form(arguments: str) -> list[str] | None:
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def is_pinned(image: str) -> bool:
    """A digest, or a tag naming an exact release (python:3.11.11-slim-bookworm)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    name = image.rsplit("/", 1)[-1]  # a registry host may carry a :port
    return ":" in name and re.search(r"\d+\.\d+\.\d+", name.split(":", 1)[1]) is not None


def check_bases(all_stages: list[list[Instruction]]) -> list[str]:
    problems = []
    stage_names: set[str] = set()
    for stage in all_stages:
        words = [w for w in stage[0].arguments.split() if not w.startswith("--")]
        image = words[0]
        if image not in stage_names and not is_pinned(image):
            problems.append(f"line {stage[0].line}: base image {image} is not pinned to an exact version or digest")
        if len(words) == 3 and words[1].upper() == "AS":
            stage_names.add(words[2])
    if len(all_stages) < 2:
        problems.append("not multi-stage: build in one stage, copy the result into a slim final stage")
    return problems


def check_copies(parsed: list[Instruction]) -> list[str]:
    problems = []
    for instruction in parsed:
        if instruction.keyword == "ADD":
            problems.append(f"line {instruction.line}: ADD (remote URLs, auto-extraction): use COPY")
        if instruction.keyword not in ("ADD", "COPY"):
            continue
        sources = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")][:-1]
        problems += [
            f"line {instruction.line}: copies {source}, which may hold a secret"
            for source in sources
            if SECRET_SOURCE.search(source.rstrip("/"))
        ]
    return problems


def check_final_stage(final: list[Instruction]) -> list[str]:
    problems = []
    users = [i.arguments for i in final if i.keyword == "USER"]
    if not users or users[-1].split()[0] in ROOT_USERS:
        problems.append("the final stage does not switch to a non-root USER")
    if not any(i.keyword == "HEALTHCHECK" and not i.arguments.upper().startswith("NONE") for i in final):
        problems.append("the final stage has no HEALTHCHECK")
    entrypoints = [exec_form(i.arguments) for i in final if i.keyword == "ENTRYPOINT"]
    if not entrypoints or entrypoints[-1] != ["authsvc"]:
        problems.append('ENTRYPOINT is not ["authsvc"] (exec form)')
    for instruction in final:
        secret = re.search(r"(PASSWORD|PASSPHRASE|SECRET|TOKEN)\w*=", instruction.arguments, re.IGNORECASE)
        if instruction.keyword in ("ENV", "ARG") and secret:
            problems.append(f"line {instruction.line}: a secret in {instruction.keyword}")
    return problems


def lint_dockerfile(text: str) -> list[str]:
    """Every rule the file breaks, one line each (empty: it passes)."""
    parsed = instructions(text)
    all_stages = stages(parsed)
    if not all_stages:
        return ["no FROM instruction"]
    return check_bases(all_stages) + check_copies(parsed) + check_final_stage(all_stages[-1])
