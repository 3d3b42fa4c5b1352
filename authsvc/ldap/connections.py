"""Connections to the directory: a failover ServerPool and a small thread-safe connection pool.

Choices, each for a measured or documented reason:

* `get_info=NONE`: ldap3's default reads the server's schema on every new connection,
  ~15x slower than the bind itself (shared/testing/slapd.md).
* ServerPool with the FIRST strategy, `active=1` (one pass over the servers, then give up)
  and `exhaust=N` (a server that failed is skipped for N seconds). ldap3 sleeps
  POOLING_LOOP_TIMEOUT (10 s by default) after a pass that found no server; a request
  thread must fail fast instead, so that sleep is set to 0.
* TLS verifies the certificate and the host name in the handshake (`VerifiedTls`) against
  `ca_file` or the system CAs.
* `auto_referrals=False` unless configured: a referral could send the bind, and the
  password with it, to a server nobody configured.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import ldap3
from ldap3.core.exceptions import LDAPException

from authsvc.errors import BackendUnavailable
from authsvc.ldap.config import DirectoryConfig

log = logging.getLogger(__name__)

# ldap3 sleeps this long after a pass over the ServerPool found no live server; see above.
ldap3.set_config_parameter("POOLING_LOOP_TIMEOUT", 0)


class VerifiedTls(ldap3.Tls):  # type: ignore[misc]
    """ldap3's Tls, with the host name checked by the standard library during the handshake.

    ldap3 2.9 switches the context's check_hostname off and calls `ssl.match_hostname`
    afterwards: deprecated, and gone in Python 3.12 (its fallback refuses IP addresses).
    """

    def __init__(self, ca_file: str | None, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED, ca_certs_file=ca_file, sni=host)
        self.context = ssl.create_default_context(cafile=ca_file)  # CERT_REQUIRED + check_hostname

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=self.sni, do_handshake_on_connect=do_handshake
        )


def make_tls(config: DirectoryConfig, host: str) -> ldap3.Tls:
    return VerifiedTls(str(config.ca_file) if config.ca_file else None, host)


def make_server_pool(config: DirectoryConfig) -> ldap3.ServerPool:
    settings = config.settings
    servers = []
    for url in settings.servers:
        parts = urlsplit(url)
        use_ssl = parts.scheme.lower() == "ldaps"
        host = parts.hostname or ""
        tls = make_tls(config, host) if use_ssl or settings.start_tls else None
        servers.append(
            ldap3.Server(
                host,
                port=parts.port or (636 if use_ssl else 389),
                use_ssl=use_ssl,
                tls=tls,
                get_info=ldap3.NONE,
                connect_timeout=settings.connect_timeout.total_seconds(),
            )
        )
    # exhaust=0: a failed server is tried again on the very next connection.
    exhaust = int(settings.retry_failed_server_after.total_seconds())
    return ldap3.ServerPool(servers, ldap3.FIRST, active=1, exhaust=exhaust)


def server_url(connection: ldap3.Connection) -> str:
    """Which server a connection talks to, as a URL (for logs and `authsvc ldap test`)."""
    server = connection.server
    scheme = "ldaps" if server.ssl else "ldap"
    return f"{scheme}://{server.host}:{server.port}"


class PoolBusy(BackendUnavailable):
    """Every connection stayed lent out for the whole wait: the directory is slow to answer."""


class ConnectionPool:
    """At most `size` open connections made by `factory`, lent to one thread at a time.

    A connection that failed with a communication error is closed, not returned: the next
    borrower gets a fresh one, which the ServerPool may place on another server.
    """

    def __init__(
        self,
        factory: Callable[[], ldap3.Connection],
        size: int,
        *,
        wait: float,
        on_close: Callable[[ldap3.Connection], None] = lambda _c: None,
    ) -> None:
        self._factory = factory
        self._on_close = on_close
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[ldap3.Connection] = []
        self._lock = threading.Lock()
        self._wait = wait
        self.size = size

    @contextlib.contextmanager
    def connection(self) -> Iterator[ldap3.Connection]:
        """Lend a connection. Raises PoolBusy when none frees up within `wait` seconds."""
        if not self._slots.acquire(timeout=self._wait):
            raise PoolBusy(f"all {self.size} LDAP connections stayed busy for {self._wait:g}s")
        try:
            conn = self._take_idle() or self._factory()
            try:
                yield conn
            except BaseException:
                # A broken socket, a timeout or a bug: the connection's state is unknown.
                self._close(conn)
                raise
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def _take_idle(self) -> ldap3.Connection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _close(self, conn: ldap3.Connection) -> None:
        with contextlib.suppress(LDAPException, OSError):
            conn.unbind()
        self._on_close(conn)

    def clear(self) -> None:
        """Close every idle connection (tests, shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)
