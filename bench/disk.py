"""What the disk under a benchmark's files costs, printed beside its figures.

Issuing into a home writes files; on some machines creating a file costs more CPU than signing
a certificate (this sandbox's ext4: 200-400 µs per create, tmpfs: ~13 µs), which no code of
ours can change. The scripts print this so that a reader can tell the disk from the code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path


def filesystem(path: Path) -> str:
    """The type of the file system `path` is on (ext4, tmpfs, ...), from /proc/mounts."""
    best = ("?", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if str(path.resolve()).startswith(fields[1]) and len(fields[1]) >= len(best[1]):
            best = (fields[2], fields[1])
    return best[0]


def file_create_cost(directory: Path, count: int = 200) -> tuple[float, float]:
    """(CPU µs, wall µs) to create, write (1 KiB) and close one new file in `directory`, no fsync."""
    work = Path(tempfile.mkdtemp(prefix="create-cost-", dir=directory))
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for n in range(count):
            fd = os.open(work / f"f{n}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"x" * 1024)
            os.close(fd)
        return (time.process_time() - cpu) / count * 1e6, (time.perf_counter() - wall) / count * 1e6
    finally:
        shutil.rmtree(work)


def describe(directory: Path) -> str:
    """One line: the file system of `directory` and what one file creation costs there."""
    cpu, wall = file_create_cost(directory)
    return f"{filesystem(directory)} ({directory}): creating a file costs {cpu:.0f} µs CPU, {wall:.0f} µs wall"
