"""What several benchmarks measure the same way: a whole process's wall time, and a piece of
work's wall time, CPU time and peak memory in a forked child. (bench/ is on sys.path when a
script in it runs: `from measure import ...`.)"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def installed_env(pycache: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process that starts as an installed authsvc does: bytecode cached.

    A wheel's install and the container image (`compileall`) leave .pyc files; this sandbox
    sets PYTHONDONTWRITEBYTECODE, which would recompile every project module at each start.
    The cache goes to `pycache` (PYTHONPYCACHEPREFIX), not into the source tree."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def wall_ms(command: list[str], env: Mapping[str, str]) -> float:
    """Milliseconds from start to exit of `command`; SystemExit with its stderr when it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, env=dict(env), capture_output=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()}")
    return elapsed


def in_child(work: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(wall seconds, CPU seconds, peak RSS growth in MiB, result) of `work` run in a forked child.

    CPU time is the figure to compare on a shared machine: other processes stretch wall time.
    The result must be JSON-serialisable.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        start_rss, start_cpu = _rss_kib(), _cpu()
        started = time.perf_counter()
        result = work()
        seconds, cpu = time.perf_counter() - started, _cpu() - start_cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with os.fdopen(write_end, "w") as out:
            json.dump([seconds, cpu, (peak - start_rss) / 1024, result], out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as data:
        text = data.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise SystemExit(f"a benchmark run failed (status {status})")
    seconds, cpu, growth, result = json.loads(text)
    return seconds, cpu, growth, result


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_kib() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
