"""Outages, recovery, failover and the TTL/stale-if-error cache, with slapd really stopped."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from authsvc.authn.refreshers import LDAPIdentityRefresher
from authsvc.errors import BackendUnavailable
from authsvc.identity import UserInfo
from authsvc.ldap.service import LDAPService
from pki.clock import FixedClock
from tests.components.slapd import Slapd, User, user_dn
from tests.components.support import free_port
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
