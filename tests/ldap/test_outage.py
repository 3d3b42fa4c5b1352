"""Outages, recovery, failover and the TTL/stale-if-error cache, with slapd really stopped or frozen."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest

from authsvc.authn.refreshers import LDAPIdentityRefresher
from authsvc.errors import BackendUnavailable
from authsvc.identity import UserInfo
from authsvc.ldap.service import LDAPService
from pki.clock import FixedClock
from tests.components.slapd import Slapd, User, user_dn
from tests.components.support import eventually, free_port
from tests.ldap.fixtures import ldap_service, ldap_settings, require_slapd

pytestmark = pytest.mark.slapd


@pytest.fixture
def pair() -> Iterator[tuple[Slapd, Slapd]]:
    """Two servers with the same data: a failover pair."""
    require_slapd()
    with Slapd() as first, Slapd() as second:
        yield first, second


def test_stopped_directory_fails_closed_then_recovers_without_restart(private_slapd: Slapd) -> None:
    errors: list[str] = []
    service = ldap_service(ldap_settings(private_slapd), on_error=errors.append)
    assert service.find_user("alice") is not None and service.ready()

    private_slapd.stop()
    with pytest.raises(BackendUnavailable, match="unavailable"):
        service.find_user("alice")
    with pytest.raises(BackendUnavailable):
        service.check_password(user_dn("alice"), "alice-pw")
    assert not service.ready()
    assert errors[:2] == ["user search", "user bind"]
    # Refused at once is "down", not "hung": no breaker, so the restarted server is used at once.
    assert service.directory.breaker.opened is None

    private_slapd.start()  # same ports, same data; the service is not rebuilt
    assert service.ready()
    user = service.find_user("alice")
    assert user is not None and service.check_password(user.dn, "alice-pw")
    service.close()


def test_a_restart_between_two_calls_goes_unnoticed(private_slapd: Slapd) -> None:
    errors: list[str] = []
    service = ldap_service(ldap_settings(private_slapd), on_error=errors.append)
    user = service.find_user("alice")
    assert user is not None and service.check_password(user.dn, "alice-pw")
    private_slapd.stop()
    private_slapd.start()  # both pooled connections (search, bind) are now dead sockets
    assert service.check_password(user.dn, "alice-pw")
    assert service.find_user("alice") is not None
    assert errors == []
    service.close()


def test_outage_answers_come_fast(private_slapd: Slapd) -> None:
    service = ldap_service(ldap_settings(private_slapd))
    private_slapd.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable):
        service.find_user("alice")
    # ldap3's ServerPool would sleep POOLING_LOOP_TIMEOUT (10 s) here; authsvc sets it to 0.
    assert time.monotonic() - started < 2


def test_second_server_answers_when_the_first_is_stopped(pair: tuple[Slapd, Slapd]) -> None:
    first, second = pair
    service = ldap_service(ldap_settings([first.url, second.url]))
    assert service.find_user("alice").server == first.url  # type: ignore[union-attr]
    first.stop()
    user = service.find_user("alice")  # the pooled connection to `first` breaks; a new one goes to `second`
    assert user is not None and user.server == second.url
    assert service.check_password(user.dn, "alice-pw")
    assert service.resolver.groups_of(user) == ("dev",)
    assert service.ready()
    second.stop()
    assert not service.ready()
    service.close()


def test_dead_first_server_from_the_start(private_slapd: Slapd) -> None:
    nothing_there = f"ldap://127.0.0.1:{free_port()}"
    service = ldap_service(ldap_settings([nothing_there, private_slapd.url]))
    user = service.find_user("bob")
    assert user is not None and user.server == private_slapd.url
    service.close()


def test_a_failed_server_is_skipped_for_a_while(pair: tuple[Slapd, Slapd]) -> None:
    first, second = pair
    service = ldap_service(ldap_settings([first.url, second.url], retry_failed_server_after=dt.timedelta(minutes=5)))
    first.stop()
    assert service.find_user("alice").server == second.url  # type: ignore[union-attr]
    first.start()
    service.directory.close()  # new connections: the pool still skips `first` for 5 minutes
    assert service.find_user("alice").server == second.url  # type: ignore[union-attr]
    service.close()


Cached = tuple[FixedClock, LDAPService, LDAPIdentityRefresher]


@pytest.fixture
def cached(private_slapd: Slapd) -> Iterator[Cached]:
    """A service with group_cache_ttl 60 s and stale_if_error 5 min on a FixedClock."""
    clock = FixedClock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    ttl, stale = dt.timedelta(seconds=60), dt.timedelta(minutes=5)
    service = ldap_service(ldap_settings(private_slapd, group_cache_ttl=ttl, stale_if_error=stale), clock=clock)
    yield clock, service, LDAPIdentityRefresher(service)
    service.close()


def test_group_changes_take_effect_within_the_ttl(private_slapd: Slapd, cached: Cached) -> None:
    clock, service, refresher = cached
    token_user = _token_user(service, "carol")
    assert _groups_now(refresher, token_user) == ("ops",)

    private_slapd.add_member("dev", user_dn("carol"))
    clock.advance(dt.timedelta(seconds=59))
    assert _groups_now(refresher, token_user) == ("ops",)  # cached
    clock.advance(dt.timedelta(seconds=2))
    assert _groups_now(refresher, token_user) == ("dev", "ops")

    private_slapd.remove_member("dev", user_dn("carol"))
    clock.advance(dt.timedelta(seconds=61))
    assert _groups_now(refresher, token_user) == ("ops",)

    private_slapd.delete(user_dn("carol"))  # the account is gone: its tokens stop working
    clock.advance(dt.timedelta(seconds=61))
    assert refresher(token_user) is None


def test_a_recreated_account_with_another_uid_is_someone_else(private_slapd: Slapd, cached: Cached) -> None:
    clock, service, refresher = cached
    token_user = _token_user(service, "bob")
    private_slapd.delete(user_dn("bob"))
    private_slapd.add_users(User("bob", "new-bob-pw"))
    clock.advance(dt.timedelta(seconds=61))
    assert refresher(token_user) is None
    assert refresher(UserInfo("bob")) is not None  # a token without uid matches on the name


def test_stale_answers_serve_for_the_stale_window_only(private_slapd: Slapd, cached: Cached) -> None:
    clock, service, refresher = cached
    token_user = _token_user(service, "alice")
    assert refresher(token_user) is not None

    private_slapd.stop()
    clock.advance(dt.timedelta(seconds=61 + 4 * 60))  # past the TTL, inside ttl + stale_if_error (5 min)
    assert _groups_now(refresher, token_user) == ("dev",)
    assert service.cache.stale_served == 1
    clock.advance(dt.timedelta(minutes=1))  # past ttl + stale_if_error
    with pytest.raises(BackendUnavailable):
        refresher(token_user)
    with pytest.raises(BackendUnavailable):  # never seen: nothing stale to serve
        refresher(UserInfo("bob"))

    private_slapd.start()
    assert _groups_now(refresher, token_user) == ("dev",)


def _token_user(service: LDAPService, name: str) -> UserInfo:
    user = service.find_user(name)
    assert user is not None
    return UserInfo(user.username, user.uid, ("stale-group-from-the-token",), backend="authsvc")


def _groups_now(refresher: LDAPIdentityRefresher, user: UserInfo) -> tuple[str, ...]:
    refreshed = refresher(user)
    assert refreshed is not None, user.username
    assert (refreshed.username, refreshed.uid) == (user.username, user.uid)
    return refreshed.groups


BUDGET = dt.timedelta(seconds=1)
QUICK = 0.5  # seconds: an answer that did not wait for the directory


def _timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    with contextlib.suppress(BackendUnavailable):
        call()
    return time.monotonic() - started


Hung = tuple[FixedClock, LDAPService, LDAPIdentityRefresher, list[str]]


@pytest.fixture
def hung(private_slapd: Slapd) -> Iterator[Hung]:
    """`cached`'s service (60 s TTL, 5 min stale) with a 1 s request budget, a 3 s receive
    timeout and its error hook's calls; slapd thawed again at the end whatever happened."""
    clock = FixedClock(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    settings = ldap_settings(
        private_slapd,
        group_cache_ttl=dt.timedelta(seconds=60),
        stale_if_error=dt.timedelta(minutes=5),
        request_budget=BUDGET,
        receive_timeout=dt.timedelta(seconds=3),
    )
    errors: list[str] = []
    service = ldap_service(settings, clock=clock, on_error=errors.append)
    yield clock, service, LDAPIdentityRefresher(service), errors
    private_slapd.thaw()
    service.close()


def test_a_frozen_directory_costs_one_budget_then_nothing(private_slapd: Slapd, hung: Hung) -> None:
    clock, service, refresher, errors = hung
    alice = _token_user(service, "alice")
    assert _groups_now(refresher, alice) == ("dev",)  # cached for 60 s

    private_slapd.freeze()
    clock.advance(dt.timedelta(seconds=61))  # past the TTL: the directory is asked, and hangs
    started = time.monotonic()
    assert _groups_now(refresher, alice) == ("dev",)  # the stale answer, once the budget is spent
    assert BUDGET.total_seconds() <= time.monotonic() - started < BUDGET.total_seconds() + QUICK
    opened = service.directory.breaker.opened
    assert opened is not None and "request_budget" in opened.reason
    assert "request budget" in errors  # authsvc_ldap_errors_total{operation="request budget"}

    # Known hung: no more waiting. A user never cached fails closed at once; so does /readyz.
    assert _timed(lambda: refresher(UserInfo("bob"))) < QUICK
    with pytest.raises(BackendUnavailable, match="not asked again"):
        refresher(UserInfo("bob"))
    assert _timed(lambda: service.find_user("carol")) < QUICK
    started = time.monotonic()
    assert not service.ready()
    assert time.monotonic() - started < QUICK

    private_slapd.thaw()
    clock.advance(dt.timedelta(seconds=1))  # ldap.probe_interval: the next probe may go
    assert eventually(service.ready, bool, timeout=10)
    assert service.directory.breaker.opened is None
    assert refresher(UserInfo("bob")) is not None


def test_a_hung_call_is_not_tried_twice(private_slapd: Slapd) -> None:
    """ldap3 raises a socket timeout like a broken connection; retrying it on a new connection
    (right for a restarted server) would double the wait on a hung one."""
    settings = ldap_settings(private_slapd, receive_timeout=dt.timedelta(seconds=1))
    service = ldap_service(settings)
    try:
        assert service.find_user("alice") is not None
        private_slapd.freeze()
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            service.directory.find_user("alice")  # the directory itself: no request budget
        assert 1.0 <= time.monotonic() - started < 1.9
        assert service.directory.breaker.opened is not None
    finally:
        private_slapd.thaw()
        service.close()
