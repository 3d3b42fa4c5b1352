"""The directory as authsvc sees it: find a user, check a password, list the user's groups.

Every call either answers or raises `BackendUnavailable` (no server reachable, timeouts,
an unexpected result code): callers fail closed on it. A user that is not found, found
twice, or a wrong password is an answer (None / False), never an error.

Two small pools: searches run on connections bound as the service account; password checks
rebind connections of their own, so the service connections never change identity.

A directory that hangs (accepts connections, answers nothing) costs each call its timeouts;
the first call that times out opens the circuit breaker (authsvc/ldap/breaker.py): calls then
fail at once, without a network round trip, until a background probe gets an answer. A call
that fails fast (connection refused: the server is down, not hung) does not open it, so a
restarted server is used again by the very next call.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ldap3
from ldap3.core.exceptions import LDAPBindError, LDAPCommunicationError, LDAPException

from authsvc.errors import BackendUnavailable
from authsvc.ldap.active_directory import (
    ACCOUNT_ATTRIBUTES,
    TLS_REQUIRED,
    BindRefusal,
    account_problem,
    bind_refusal,
    tls_required,
)
from authsvc.ldap.breaker import CircuitBreaker
from authsvc.ldap.config import DirectoryConfig
from authsvc.ldap.connections import ConnectionPool, PoolBusy, make_server_pool, server_url
from authsvc.ldap.filters import user_filter
from pki.clock import Clock, system_clock

log = logging.getLogger(__name__)

# Result codes that are answers, not failures: success, sizeLimitExceeded (handled by the
# caller's size limit), noSuchObject (the base is empty or gone: nothing found).
SEARCH_ANSWERS = frozenset({0, 4, 32})
SIZE_LIMIT_EXCEEDED = 4
# Bind results that mean "these credentials do not log in": invalidCredentials (also AD's
# disabled, expired and locked accounts), inappropriateAuthentication, insufficientAccessRights,
# unwillingToPerform (e.g. a locked account behind some password policies).
BIND_REFUSED = frozenset({49, 48, 50, 53})
# A pooled connection the server has closed surfaces as a communication error, or from
# rebind() as LDAPBindError ("the server abruptly closed the connection"): retry on a fresh one.
RETRYABLE = (LDAPCommunicationError, LDAPBindError)
PAGED_RESULTS = "1.2.840.113556.1.4.319"

ErrorHook = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user entry found by the service search."""

    dn: str
    username: str  # the directory's spelling (value of username_attribute)
    uid: str
    member_of: tuple[str, ...] = ()
    server: str = ""  # URL of the server that answered
    # The typed name equals a stored value of an attribute the filter matches on, up to case and
    # spaces. False when only the directory's own folding matched it (slapd's caseIgnoreMatch
    # takes fullwidth letters and U+0130 for ASCII): /login refuses such spellings.
    exact: bool = True
    # Why the account may not be used now ("" when it may): ldap.account_checks found it
    # disabled, locked out or expired. /login and the review-time refresher refuse it.
    inactive: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    dn: str
    attributes: dict[str, list[Any]]
    raw: Mapping[str, list[bytes]] = field(default_factory=dict)  # the values as sent (binary ones: objectGUID)


class Directory:
    """Thread-safe client for one configured directory (one per server process)."""

    def __init__(
        self, config: DirectoryConfig, *, on_error: ErrorHook = lambda _op: None, clock: Clock = system_clock
    ) -> None:
        self.config = config
        self.settings = config.settings
        self._on_error = on_error
        self._clock = clock
        self.breaker = CircuitBreaker(probe_interval=self.settings.probe_interval, clock=clock)
        # A failure that took this long counts as "hung", even when it is not a timeout error.
        self._slow = self.settings.request_budget.total_seconds()
        self._server_pool = make_server_pool(config)
        self._open_lock = threading.Lock()  # ldap3's ServerPool state is not thread-safe
        wait = self.settings.receive_timeout.total_seconds()
        size = self.settings.pool_size
        self._search_pool = ConnectionPool(self._open_service, size, wait=wait, on_close=self._forget)
        self._bind_pool = ConnectionPool(self._open_unbound, size, wait=wait, on_close=self._forget)
        self._matched_by = matched_attributes(self.settings.user_filter, self.settings.username_attribute)

    # -- public ---------------------------------------------------------------------------

    def find_user(self, username: str) -> DirectoryUser | None:
        """The one entry the user filter matches, or None (none, or more than one: ambiguous)."""
        s = self.settings
        attributes = list(dict.fromkeys([s.username_attribute, s.uid_attribute, *self._matched_by]))
        if s.group_membership == "memberOf":
            attributes.append(s.member_of_attribute)
        if s.account_checks == "active-directory":
            attributes += ACCOUNT_ATTRIBUTES
        query = user_filter(s.user_filter, username)
        entries, server = self._run("user search", lambda c: self.search(c, s.user_base, query, attributes, limit=2))
        if len(entries) > 1:
            log.warning("LDAP user filter matched more than one entry for one name: refused (%s)", entries[0].dn)
        return self._user_from(entries[0], username, server) if len(entries) == 1 else None

    def check_password(self, dn: str, password: str) -> bool:
        """Whether the directory accepts `password` for `dn` (see `bind`)."""
        return self.bind(dn, password) is None

    def bind(self, dn: str, password: str) -> BindRefusal | None:
        """Bind as `dn` with `password`, passed as is (UTF-8 bytes: no escaping, no SASLprep):
        None when the directory accepts it, else why not (AD's data code read as a reason).

        An empty DN or password is refused here too: LDAP treats both as an anonymous bind
        that "succeeds" (RFC 4513 section 5.1.2). Raises BackendUnavailable for an answer that
        is no refusal of these credentials: it names the fix when the server requires TLS.
        """
        if not dn or not password:
            return BindRefusal(None, "", "empty user name or password (never sent: it would bind anonymously)")
        secret = password.encode("utf-8", "surrogatepass")

        def bind(conn: ldap3.Connection) -> BindRefusal | None:
            if conn.rebind(user=dn, password=secret):
                return None
            result = conn.result or {}
            code, description, message = result.get("result"), result.get("description"), result.get("message")
            if code in TLS_REQUIRED:
                raise BackendUnavailable(tls_required(str(description), str(message or "")))
            if code not in BIND_REFUSED:
                raise BackendUnavailable(f"LDAP bind answered {description!r}")
            return bind_refusal(int(code), str(description), str(message or ""))

        refusal, _ = self._run("user bind", bind, pool=self._bind_pool)
        return refusal

    def search(
        self,
        conn: ldap3.Connection,
        base: str,
        query: str,
        attributes: Sequence[str],
        *,
        scope: str = ldap3.SUBTREE,
        limit: int = 0,
    ) -> list[Entry]:
        """Run a search on `conn`. Without a `limit`, an answer the server capped (its size
        limit, AD's MaxPageSize) is fetched again page by page (RFC 2696): most searches fit
        in one answer, and the paging control costs a little CPU on each."""
        entries, code = self._search_page(conn, base, query, attributes, scope, limit, None, None)
        if limit or code != SIZE_LIMIT_EXCEEDED:
            return entries
        entries, cookie = [], b""
        while True:
            page, _ = self._search_page(conn, base, query, attributes, scope, 0, self.settings.page_size, cookie)
            entries += page
            cookie = _paged_cookie(conn) or b""
            if not cookie:
                return entries

    def _search_page(
        self,
        conn: ldap3.Connection,
        base: str,
        query: str,
        attributes: Sequence[str],
        scope: str,
        limit: int,
        page_size: int | None,
        cookie: bytes | None,
    ) -> tuple[list[Entry], int | None]:
        conn.search(
            base,
            query,
            search_scope=scope,
            attributes=list(attributes),
            size_limit=limit,
            time_limit=int(self.settings.receive_timeout.total_seconds()),
            paged_size=page_size,
            paged_cookie=cookie,
        )
        code = self._check_result(conn, "search")
        entries = [
            Entry(item["dn"], dict(item["attributes"]), item.get("raw_attributes") or {})
            for item in conn.response or []
            if item.get("type") == "searchResEntry"
        ]
        return entries, code

    def call(self, what: str, operation: Callable[[ldap3.Connection], T]) -> T:
        """Run `operation` on a service connection (retry and error mapping as for every call)."""
        result, _ = self._run(what, operation)
        return result

    def ready(self) -> bool:
        """True when the directory answers a probe now (a base search of user_base: ~1 ms); False
        at once while the breaker is open (a background probe is started if one is due)."""
        if self.breaker.opened is not None:
            self._start_probe()
            return False
        try:
            self._run("readiness probe", self._probe_search)
        except BackendUnavailable:
            return False
        return True

    def count_error(self, what: str) -> None:
        """Count a failure noticed outside the directory's own calls (a request's budget spent)."""
        self._on_error(what)

    def refuse_while_open(self) -> None:
        """Raise BackendUnavailable at once while the directory counts as hung (breaker open),
        and start a background probe if one is due; return while it answers."""
        opened = self.breaker.opened
        if opened is None:
            return
        self._start_probe()
        raise BackendUnavailable(
            f"LDAP directory unavailable since {opened.since:%H:%M:%S} ({opened.reason}); "
            "not asked again until it answers a probe"
        )

    def close(self) -> None:
        self._search_pool.clear()
        self._bind_pool.clear()

    # -- plumbing -------------------------------------------------------------------------

    def _run(
        self,
        what: str,
        operation: Callable[[ldap3.Connection], T],
        *,
        pool: ConnectionPool | None = None,
        probe: bool = False,
    ) -> tuple[T, str]:
        """Run `operation` on a pooled connection; one retry on a fresh connection when the
        pooled one turns out to be broken (a restarted server closes idle connections), none
        after a timeout (a hung server would cost it twice). Refused at once while the breaker
        is open, except for the `probe` that may close it."""
        if not probe:
            self.refuse_while_open()
        pool = pool or self._search_pool
        started = time.monotonic()
        for attempt in (1, 2):
            try:
                with pool.connection() as conn:
                    result = operation(conn), server_url(conn)
            except RETRYABLE as e:
                if attempt == 2 or isinstance(e, TimeoutError):
                    raise self._unavailable(what, e, started, quiet=probe) from e
                continue
            except PoolBusy as e:
                raise self._unavailable(what, e, started, quiet=probe) from e
            except BackendUnavailable as e:  # it answered, with something we cannot use
                self.breaker.answered()
                self._on_error(what)
                log.error("LDAP %s failed: %s", what, e)
                raise
            except (LDAPException, OSError) as e:
                raise self._unavailable(what, e, started, quiet=probe) from e
            self.breaker.answered()
            return result
        raise AssertionError("unreachable")

    def _unavailable(self, what: str, error: Exception, started: float, *, quiet: bool) -> BackendUnavailable:
        """Log and count a failed call; open the breaker when it failed by waiting (a timeout,
        no free connection, or simply as long as a request's budget)."""
        servers = ", ".join(self.settings.servers)
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        hung = isinstance(error, TimeoutError | PoolBusy) or time.monotonic() - started >= self._slow
        if hung:
            self.breaker.trip(f"{what}: {type(error).__name__}")
        if quiet:  # a recovery probe: the breaker's log lines say enough
            log.debug("LDAP %s failed: %s: %s", what, type(error).__name__, reason)
        else:
            self._on_error(what)
            log.error("LDAP %s failed (servers %s): %s: %s", what, servers, type(error).__name__, reason)
        return BackendUnavailable(f"LDAP directory unavailable ({servers}): {reason}")

    def _probe_search(self, conn: ldap3.Connection) -> list[Entry]:
        return self.search(conn, self.settings.user_base, "(objectClass=*)", ["1.1"], scope=ldap3.BASE)

    def _start_probe(self) -> None:
        """One recovery probe on a thread of its own, if the breaker says one is due: whoever
        noticed the open breaker (a review, /readyz) does not wait for it."""
        if self.breaker.claim_probe():
            threading.Thread(target=self._recovery_probe, name="authsvc-ldap-probe", daemon=True).start()

    def _recovery_probe(self) -> None:
        answered = False
        try:
            self._run("recovery probe", self._probe_search, probe=True)
            answered = True
        except BackendUnavailable:
            pass
        finally:
            self.breaker.probe_done(answered)

    def _open(self) -> ldap3.Connection:
        s = self.settings
        with self._open_lock:
            conn = ldap3.Connection(
                self._server_pool,
                auto_referrals=s.follow_referrals,
                # whole seconds: ldap3 packs it into SO_RCVTIMEO as an integer on Linux
                receive_timeout=math.ceil(s.receive_timeout.total_seconds()),
                raise_exceptions=False,
                read_only=True,
                return_empty_attributes=False,
            )
            try:
                conn.open()
            except BaseException:
                self._forget(conn)
                raise
        # Outside the lock: a round trip, and a hung server would hold every other opening.
        if s.start_tls and not conn.server.ssl:
            try:
                conn.start_tls()
            except BaseException:
                with contextlib.suppress(LDAPException, OSError):
                    conn.unbind()
                self._forget(conn)
                raise
        return conn

    def _open_unbound(self) -> ldap3.Connection:
        return self._open()

    def _open_service(self) -> ldap3.Connection:
        conn = self._open()
        dn, password = self.settings.bind_dn, self.config.bind_password
        if dn and password and not conn.rebind(user=dn, password=password):
            result = conn.result or {}
            description, message = result.get("description", "no answer"), result.get("message") or ""
            conn.unbind()
            self._forget(conn)
            if result.get("result") in TLS_REQUIRED:
                why = tls_required(description, message)
                raise BackendUnavailable(f"the LDAP service bind as {dn!r} failed: {why}")
            raise BackendUnavailable(
                f"the LDAP service bind as {dn!r} was refused ({description}): check ldap.bind_dn and its password"
            )
        return conn

    def _forget(self, conn: ldap3.Connection) -> None:
        # ldap3's ServerPool keeps a state entry per connection forever; drop it with the connection.
        self._server_pool.pool_states.pop(conn, None)

    def _check_result(self, conn: ldap3.Connection, what: str) -> int | None:
        code: int | None = conn.result.get("result") if conn.result else None
        if code not in SEARCH_ANSWERS:
            description = conn.result.get("description") if conn.result else "no result"
            raise BackendUnavailable(f"LDAP {what} answered {description!r} (code {code})")
        return code

    def _user_from(self, entry: Entry, typed: str, server: str) -> DirectoryUser | None:
        s = self.settings
        names = [str(v) for v in entry.attributes.get(s.username_attribute, [])]
        if not names:
            # The identity must be the directory's value, never the typed text: refuse.
            log.warning(
                "LDAP entry %s has no %s attribute (ldap.username_attribute): refused", entry.dn, s.username_attribute
            )
            return None
        stored = [str(v) for attribute in self._matched_by for v in entry.attributes.get(attribute, [])]
        inactive = account_problem(entry.attributes, self._clock()) if s.account_checks == "active-directory" else ""
        return DirectoryUser(
            dn=entry.dn,
            username=_canonical_name(names, typed),
            uid=uid_text(s.uid_attribute, _values(entry.raw, s.uid_attribute)),
            member_of=tuple(str(v) for v in entry.attributes.get(s.member_of_attribute, [])),
            server=server,
            exact=fold_name(typed) in {fold_name(v) for v in stored},
            inactive=inactive,
        )


def _paged_cookie(conn: ldap3.Connection) -> bytes | None:
    controls = (conn.result or {}).get("controls") or {}
    cookie = controls.get(PAGED_RESULTS, {}).get("value", {}).get("cookie")
    return cookie or None


def _canonical_name(names: Sequence[str], typed: str) -> str:
    """The directory's spelling of the name the user typed (uid may hold several values)."""
    folded = fold_name(typed)
    for name in names:
        if fold_name(name) == folded:
            return name
    return names[0]


def fold_name(name: str) -> str:
    """Case and runs of spaces ignored, nothing else (no Unicode compatibility folding)."""
    return " ".join(name.split()).casefold()


_MATCHED_BY = re.compile(r"\(([A-Za-z][\w;.-]*)=\{username\}\)")


def matched_attributes(template: str, username_attribute: str) -> tuple[str, ...]:
    """The attributes a user filter compares the name with: `(|(uid={username})(mail={username}))`
    -> ("uid", "mail"); the username attribute when the template says nothing simpler."""
    found = tuple(dict.fromkeys(match.group(1) for match in _MATCHED_BY.finditer(template)))
    return found or (username_attribute,)


def _values(attributes: Mapping[str, list[Any]], name: str) -> list[Any]:
    """An attribute's values by name, whatever case the server spelled it in."""
    if name in attributes:
        return attributes[name]
    folded = name.casefold()
    return next((values for key, values in attributes.items() if key.casefold() == folded), [])


def uid_text(attribute: str, values: Sequence[bytes]) -> str:
    """The TokenReview uid from the raw values of `uid_attribute`: objectGUID (16 bytes, the
    first three fields little-endian) as AD writes a GUID, 6460a454-accd-4c09-8ade-560a42e95af3;
    text attributes (entryUUID) as they are; other binary values in hex."""
    if not values:
        return ""
    value = values[0]
    if attribute.casefold() == "objectguid" and len(value) == 16:
        return str(uuid.UUID(bytes_le=value))
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.hex()


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
