"""A real PostgreSQL server (Debian's package binaries) in a temporary folder.

``initdb`` and ``postgres`` refuse to run as root. When we are root the folder is chowned to
an unprivileged OS user (``postgres`` by default; the Debian package creates it) and the
server runs as that user via ``subprocess.Popen(user=..., group=...)`` -- a direct child,
so its PID is the postmaster's and the fixture can signal it. As a normal user the server
runs as ourselves. The folder must be reachable by that user: the default one is created
in the system temporary folder (``/tmp``), not under pytest's ``tmp_path`` (0700 when root).

Connections: TCP on 127.0.0.1 only (``auth``, default scram-sha-256, for everyone) and a
unix socket inside the folder (trust; used for the superuser's setup work).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

from .managed import ManagedServer
from .process import ChildProcess, on_free_ports
from .support import find_binary, free_port, postgres_bindir

__all__ = ["Postgres"]

_DEFAULT_SETTINGS: dict[str, str] = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "log_timezone": "'UTC'",
    "timezone": "'UTC'",
}


class Postgres(ManagedServer):
    """A postgres child process on a loopback port, with role and database ``authsvc``.

    Nothing runs until ``start()`` / ``with``; the port is chosen at construction and kept
    for restarts. The first ``start()`` runs initdb and creates the role and database.
    """

    def __init__(
        self,
        *,
        user: str = "authsvc",
        password: str = "authsvc",
        database: str = "authsvc",
        auth: str = "scram-sha-256",
        port: int | None = None,
        workdir: str | os.PathLike[str] | None = None,
        bindir: str | os.PathLike[str] | None = None,
        os_user: str | None = None,
        settings: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if auth not in {"trust", "scram-sha-256", "md5", "password"}:
            raise ValueError(f"unsupported auth method {auth!r}")
        self.user = user
        self.password = password
        self.database = database
        self.auth = auth
        self.host = "127.0.0.1"
        self.port: int = port or free_port()
        self._port_chosen_here = port is None  # chosen again if taken before the first start
        self.superuser = "postgres"
        self.superuser_password = "postgres"
        self.startup_timeout = startup_timeout
        self._settings = {**_DEFAULT_SETTINGS, **(settings or {})}
        self._bindir_arg = Path(bindir) if bindir is not None else None
        self._bindir: Path | None = None
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self._own_workdir = workdir is None
        self._workdir: Path | None = None
        # Run as another OS user only when we are root (initdb/postgres refuse root).
        self.os_user: str | None = os_user if os_user is not None else ("postgres" if os.geteuid() == 0 else None)
        self._process: ChildProcess | None = None
        self._initialised = False

    # -- properties ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL: ``postgresql+psycopg://authsvc:authsvc@127.0.0.1:PORT/authsvc``."""
        return f"postgresql+psycopg://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq conninfo for psycopg.connect() (TCP, the application role)."""
        return f"host={self.host} port={self.port} dbname={self.database} user={self.user} password={self.password}"

    @property
    def admin_dsn(self) -> str:
        """libpq conninfo for the superuser over the unix socket (trust)."""
        return f"host={self.socket_dir} port={self.port} dbname=postgres user={self.superuser}"

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("postgres has not been started yet (no folder)")
        return self._workdir

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def socket_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            bindir = self._bindir_arg or postgres_bindir()
            if bindir is None:
                found = find_binary("postgres")
                bindir = found.parent if found is not None else None
            if bindir is None or not (bindir / "initdb").exists():
                raise FileNotFoundError(
                    "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin "
                    "and $PATH); install them with apt-get install postgresql"
                )
            self._bindir = bindir
        return self._bindir

    @property
    def version(self) -> int:
        """Major version of the server binaries (from ``postgres --version``)."""
        out = subprocess.run(
            [str(self.bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
        return int(out.split()[-1].split(".")[0])

    # -- OS user handling ---------------------------------------------------------------------

    def _ids(self) -> tuple[int, int] | None:
        if self.os_user is None:
            return None
        try:
            entry = pwd.getpwnam(self.os_user)
        except KeyError:
            raise RuntimeError(
                f"running as root needs an unprivileged OS user {self.os_user!r} for PostgreSQL "
                "(the Debian postgresql package creates 'postgres'; or pass os_user=...)"
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bindir}:/usr/bin:/bin",
            "LANG": "C",
            "LC_ALL": "C",
            "HOME": str(self.workdir),
            "TZ": "UTC",
        }

    def _popen_kwargs(self) -> dict[str, object]:
        kwargs: dict[str, object] = {"env": self._env(), "cwd": str(self.workdir)}
        ids = self._ids()
        if ids is not None:
            uid, gid = ids
            kwargs.update(user=uid, group=gid, extra_groups=[])
        return kwargs

    def _check_reachable(self, path: Path) -> None:
        """Every ancestor must be searchable by the server's OS user."""
        ids = self._ids()
        if ids is None:
            return
        uid, gid = ids
        for parent in [path, *path.parents]:
            st = parent.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid == gid or gid in os.getgrouplist(self.os_user or "", gid):
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok:
                raise RuntimeError(
                    f"{parent} is not searchable by OS user {self.os_user!r}, so PostgreSQL "
                    f"cannot use {path}; use a folder under /tmp (the default)"
                )

    def _chown(self, path: Path) -> None:
        ids = self._ids()
        if ids is not None:
            os.chown(path, *ids)

    # -- lifecycle ----------------------------------------------------------------------------

    def _initdb(self) -> None:
        if self._workdir_arg is not None:
            self._workdir = self._workdir_arg
            self._workdir.mkdir(parents=True, exist_ok=True)
        else:
            self._workdir = Path(tempfile.mkdtemp(prefix="authsvc-pg-"))
        wd = self._workdir
        wd.chmod(0o755)
        self._check_reachable(wd)
        self._chown(wd)
        for sub in ("run",):
            (wd / sub).mkdir(mode=0o755, exist_ok=True)
            self._chown(wd / sub)
        self.log_path.touch()
        self._chown(self.log_path)
        pwfile = wd / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        cmd = [
            str(self.bindir / "initdb"),
            "-D", str(self.data_dir),
            "-U", self.superuser,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            f"--auth-host={self.auth}",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, **self._popen_kwargs())  # type: ignore[call-overload]
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed (rc={result.returncode}) in {wd}:\n{result.stdout}{result.stderr}")
        lines = [f"{k} = {v}" for k, v in self._settings.items()]
        # The port is on the command line (-p), so that a port taken by then can be changed.
        lines += [f"unix_socket_directories = '{self.socket_dir}'"]
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# authsvc test instance\n" + "\n".join(lines) + "\n")

    def start(self) -> Postgres:
        """Start the server (the first call runs initdb and creates role + database); returns
        when it accepts connections. Again after ``stop()``/``kill()``: same data and port."""
        if self.running:
            return self
        first = not self._initialised
        if self._workdir is None:
            self._initdb()
        if self._process is None:
            self._process = ChildProcess("postgres", self.log_path, start_timeout=self.startup_timeout)
        process = self._process
        ids = self._ids()

        def start_once() -> None:
            process.start(
                [str(self.bindir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)],
                ready=self._answers,
                ports=[self.port],
                env=self._env(),
                cwd=self.workdir,
                user=ids[0] if ids else None,
                group=ids[1] if ids else None,
            )

        def pick_new_port() -> None:
            self.port = free_port()

        on_free_ports(start_once, pick_new_port if self._port_chosen_here and first else None)
        try:
            if first:
                self._create_role_and_database()
                self._initialised = True
        except BaseException:
            self.kill()
            raise
        return self

    def _answers(self) -> str | None:
        """None once the superuser's socket connection works, else why not."""
        try:
            with psycopg.connect(self.admin_dsn, connect_timeout=2) as conn:
                conn.execute("select 1")
        except psycopg.OperationalError as exc:
            return str(exc).strip()
        return None

    def admin_connection(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """Superuser connection (unix socket, autocommit). The caller closes it."""
        return psycopg.connect(
            f"host={self.socket_dir} port={self.port} dbname={dbname} user={self.superuser}",
            autocommit=True,
        )

    def _create_role_and_database(self) -> None:
        with self.admin_connection() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.database), sql.Identifier(self.user))
            )

    def reset_database(self) -> None:
        """Drop and recreate the application database (terminating its sessions)."""
        with self.admin_connection() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.database)))
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.database), sql.Identifier(self.user))
            )

    def stop(self, mode: str = "fast", timeout: float = 15.0) -> None:
        """Shut down by signalling the postmaster's PID: ``fast`` (SIGINT: roll back and
        disconnect sessions), ``smart`` (SIGTERM: wait for sessions) or ``immediate``
        (SIGQUIT: no checkpoint, crash recovery on next start). SIGKILL after ``timeout``.
        Returns once every backend is gone too, so that a start right after does not find
        the old shared memory still in use."""
        signals = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
        if self._process is not None:
            self._process.stop(timeout, signals[mode])

    def kill(self) -> None:
        """Crash: SIGKILL the postmaster and its backends (its own process group)."""
        if self._process is not None:
            self._process.kill()

    def _forget_folder(self) -> None:
        self._initialised = False

    def _address(self) -> str:
        return f"{self.host}:{self.port}"
