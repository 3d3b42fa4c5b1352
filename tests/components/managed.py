"""What every test server of tests/components has in common: one child process, a temporary
folder it may own, `with` support, close(), pid/running and a readable repr.

A server class sets `_process`, `_workdir` and `_own_workdir`, implements `start()` and
`stop()`, and says what `close()` must forget about the folder it deletes (`_forget_folder`)
and where it listens (`_address`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import TracebackType
from typing import Self

from .process import ChildProcess


class ManagedServer:
    _process: ChildProcess | None
    _workdir: Path | None
    _own_workdir: bool

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _forget_folder(self) -> None:
        """Forget what was prepared in the folder close() just deleted."""

    def _address(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def close(self) -> None:
        """Stop and delete the temporary folder (kept if `workdir` was given)."""
        self.stop()
        if self._own_workdir and self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            self._forget_folder()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self._address()} {state}>"
