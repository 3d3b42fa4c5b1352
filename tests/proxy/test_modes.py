"""Impersonation mode, the revocation hook, and what a slow or broken backend does to the proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from authsvc.access.bans import Ban
from authsvc.access.denylist import Denylist
from authsvc.authn.base import ALL_KINDS, ANY_ISSUER, AuthenticatorBase
from authsvc.authn.chain import AuthenticatorChain
from authsvc.errors import BackendUnavailable
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from authsvc.proxy.credentials import Authenticated, Credential, CredentialKind
from authsvc.proxy.revocation import DenylistCheck
from authsvc.runtime import build_runtime
from pki.clock import FixedClock
from tests.proxy.conftest import STATIC_TOKEN, STATIC_USER, configure, proxy_settings
from tests.proxy.support import EchoUpstream, running_proxy


def get(url: str, home: Home, token: str | None = None, headers: dict[str, str] | None = None) -> requests.Response:
    sent = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers={**sent, **(headers or {})}, verify=str(home.root / "pki" / "ca.crt"), timeout=10)


@pytest.fixture
def impersonation_home(home: Home, clock: FixedClock, upstream: EchoUpstream) -> Home:
    token_file = home.root / "impersonator.token"
    token_file.write_text("sa-token-one\n")
    settings = proxy_settings(
        upstream.url, proxy={"mode": "impersonation", "impersonation": {"token_file": "impersonator.token"}}
    )
    return configure(home, clock, settings)


def test_impersonation_mode_sends_the_service_account_token_and_impersonate_headers(
    impersonation_home: Home, upstream: EchoUpstream
) -> None:
    with running_proxy(impersonation_home) as proxy:
        hostile = {"Impersonate-User": "admin", "Impersonate-Group": "system:masters", "X-Remote-User": "admin"}
        answer = get(proxy.url + "/api/v1/pods", impersonation_home, STATIC_TOKEN, headers=hostile)
        assert answer.status_code == 200, answer.text
        seen = upstream.seen[-1]
        assert seen.values("Authorization") == ["Bearer sa-token-one"]
        assert seen.values("Impersonate-User") == [STATIC_USER]
        assert seen.values("Impersonate-Group") == ["team-a", "shared"]
        assert seen.values("X-Remote-User") == []
        assert seen.client_cn is None  # no front-proxy certificate in this mode

        # A projected token rotates: the next requests use the new one, without a restart.
        token_file = impersonation_home.root / "impersonator.token"
        token_file.write_text("sa-token-two-longer\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            get(proxy.url + "/api", impersonation_home, STATIC_TOKEN)
            if upstream.seen[-1].values("Authorization") == ["Bearer sa-token-two-longer"]:
                break
            time.sleep(0.2)
        assert upstream.seen[-1].values("Authorization") == ["Bearer sa-token-two-longer"]


def test_extras_are_escaped_as_client_go_does(impersonation_home: Home, upstream: EchoUpstream) -> None:
    service = impersonation_home.stores.token_service
    token = service.issue_user_token("frank", ["dev"], extra={"team key%": ["a b", "c"]})
    with running_proxy(impersonation_home) as proxy:
        assert get(proxy.url + "/api", impersonation_home, token.token).status_code == 200
    assert upstream.seen[-1].values("Impersonate-Extra-team%20key%25") == ["a b", "c"]


class RecordingCheck:
    """A revocation check that refuses nothing and notes where it ran (the event loop's thread,
    or the pool's, whose threads are named proxy-authn-N)."""

    def __init__(self, *, blocking: bool) -> None:
        self.blocking = blocking
        self.threads: list[str] = []

    def __call__(self, authenticated: object) -> None:
        self.threads.append(threading.current_thread().name)

    def without_blocking(self, authenticated: object) -> tuple[bool, None]:
        if self.blocking:
            return False, None
        self(authenticated)
        return True, None


def test_revocation_is_the_injected_check_not_the_cache(proxy_home: Home, upstream: EchoUpstream) -> None:
    """The same revoked, cached token: refused with the default check, let through with a
    check that says nothing (the twin: it is the per-request hook that refuses, not a re-ask)."""
    service = proxy_home.stores.token_service
    token = service.issue_user_token("gina", ["dev"])
    says_nothing = RecordingCheck(blocking=False)
    with running_proxy(proxy_home, revocation=says_nothing) as proxy:
        assert get(proxy.url + "/api", proxy_home, token.token).status_code == 200
        service.revoke(token.jti)  # this process's token service knows at once
        assert get(proxy.url + "/api", proxy_home, token.token).status_code == 200
    assert len(says_nothing.threads) == 2
    with running_proxy(proxy_home) as proxy:
        assert get(proxy.url + "/api", proxy_home, token.token).status_code == 401


@pytest.mark.parametrize("blocking", [False, True])
def test_revocation_check_leaves_the_event_loop_only_when_it_may_block(
    proxy_home: Home, upstream: EchoUpstream, blocking: bool
) -> None:
    """A check that answers from memory runs inline (a thread hop per request cost ~1-2 ms of
    p50 under load); one that may read the database runs on the pool, never on the loop."""
    check = RecordingCheck(blocking=blocking)
    with running_proxy(proxy_home, revocation=check) as proxy:
        assert get(proxy.url + "/api", proxy_home, STATIC_TOKEN).status_code == 200
    assert len(check.threads) == 1
    assert check.threads[0].startswith("proxy-authn") is blocking


class Outage(AuthenticatorBase):
    name = "outage"
    token_kinds = ALL_KINDS
    issuers = ANY_ISSUER

    def authenticate(self, token: str) -> UserInfo | None:
        raise BackendUnavailable("directory down")


class Slow(AuthenticatorBase):
    """Vouches for "slow" after the test lets it (a directory that takes its time)."""

    name = "slow"
    token_kinds = ALL_KINDS
    issuers = ANY_ISSUER

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.go = threading.Event()

    def authenticate(self, token: str) -> UserInfo | None:
        if token != "slow":
            return None
        self.entered.set()
        self.go.wait(10)
        return UserInfo("slow-user")


@pytest.fixture
def outage_runtime(proxy_home: Home) -> Iterator[object]:
    runtime = build_runtime(proxy_home, chain=AuthenticatorChain([Outage()]))
    yield runtime


def test_a_backend_outage_is_503_and_never_forwarded(
    proxy_home: Home, upstream: EchoUpstream, outage_runtime: object
) -> None:
    with running_proxy(proxy_home, runtime=outage_runtime) as proxy:
        answer = get(proxy.url + "/api", proxy_home, "any-token")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "ServiceUnavailable"
    assert upstream.seen == []


def test_a_slow_backend_does_not_hold_up_other_requests(proxy_home: Home, upstream: EchoUpstream) -> None:
    slow = Slow()
    runtime = build_runtime(proxy_home, chain=AuthenticatorChain([slow]))
    results: list[int] = []
    with running_proxy(proxy_home, runtime=runtime) as proxy:
        waiting = threading.Thread(
            target=lambda: results.append(get(proxy.url + "/api", proxy_home, "slow").status_code)
        )
        waiting.start()
        assert slow.entered.wait(10)
        # While the chain blocks on a pool thread, the event loop answers others.
        started = time.monotonic()
        assert get(proxy.url + "/api", proxy_home, "other").status_code == 401
        assert time.monotonic() - started < 5
        assert results == []
        slow.go.set()
        waiting.join(10)
    assert results == [200]


def test_a_banned_user_is_refused_at_the_next_request_whatever_the_credential(
    proxy_home: Home, upstream: EchoUpstream
) -> None:
    """`authsvc access revoke`'s ban reaches the proxy through the webhook's revocation set:
    a token that still verifies is refused once its user is banned (the twin: another user's
    token from the same service goes through)."""
    import datetime as dt

    from authsvc.access.bans import Ban

    service = proxy_home.stores.token_service
    hana, ivan = service.issue_user_token("hana", ["dev"]), service.issue_user_token("ivan", ["dev"])
    proxy_home.stores.bans.add(Ban("hana", dt.datetime.now(dt.UTC), "cli:test", "left"))
    with running_proxy(proxy_home) as proxy:
        assert get(proxy.url + "/api", proxy_home, hana.token).status_code == 401
        assert get(proxy.url + "/api", proxy_home, ivan.token).status_code == 200


def test_the_default_check_answers_from_memory_and_leaves_every_read_to_the_pool(proxy_home: Home) -> None:
    """`without_blocking` never reads the database: before the first read and once a read is
    due it does not answer; between reads it answers what the last read said."""
    ticks = [0.0]
    denylist = Denylist(proxy_home.stores.engine, proxy_home.clock, 10.0, monotonic=lambda: ticks[0])
    check = DenylistCheck(denylist)
    gina = Authenticated(UserInfo("gina"), Credential(CredentialKind.TOKEN, "0123456789ab", "jti-1"))
    assert check.without_blocking(gina) == (False, None)  # never read: only the pool may read
    assert check(gina) is None
    assert check.without_blocking(gina) == (True, None)

    proxy_home.stores.bans.add(Ban("gina", proxy_home.clock(), "cli:test"))
    assert check.without_blocking(gina) == (True, None)  # from memory: the ban is not read yet
    ticks[0] += 10
    assert check.without_blocking(gina) == (False, None)  # due: no read on the event loop
    assert check(gina) == "access revoked (banned)"
    assert check.without_blocking(gina) == (True, "access revoked (banned)")
