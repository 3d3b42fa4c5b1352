"""A /login token at the webhook listener: the directory must still have the last word.

`authsvc serve` runs two listeners (authsvc/web/app.py): the webhook one (mTLS, /authenticate) and
the public one (/login). A token from /login names the directory as its source; at review
time the webhook re-checks the user there (authn/authsvc_tokens.py, identity refreshers), so
a user removed from the directory stops authenticating within the caches' lifetimes. Each
listener is an app of its own: the webhook's must have the refreshers too.
"""

from __future__ import annotations

import datetime as dt

import pytest

from authsvc.runtime import build_runtime
from authsvc.web.app import Listener, create_app
from pki.clock import FixedClock
from tests.components.slapd import CAROL, Group, Slapd, user_dn
from tests.login.fixtures import MakeHome, basic
from tests.login.test_login_http import _review

pytestmark = pytest.mark.slapd


@pytest.mark.parametrize(
    "listener",
    ["all", "webhook"],
)
def test_a_deleted_users_login_token_stops_working(
    make_home: MakeHome, private_slapd: Slapd, clock: FixedClock, listener: Listener
) -> None:
    home = make_home(private_slapd)
    public_runtime, runtime = build_runtime(home), build_runtime(home)
    public = create_app(public_runtime, "public").test_client()
    token = public.post("/login", headers=basic(CAROL.uid, CAROL.password)).json["token"]  # type: ignore[index]
    webhook = create_app(runtime, listener).test_client()
    try:
        assert _review(webhook, token)["authenticated"] is True
        private_slapd.delete(CAROL.dn)
        clock.advance(dt.timedelta(seconds=61))  # ldap.group_cache_ttl (60 s) and the webhook's cache (1 s)
        assert _review(webhook, token)["authenticated"] is False
    finally:
        public_runtime.close()
        runtime.close()


@pytest.mark.parametrize(
    ("group", "authenticated"),
    [("system:masters", False), ("late-joiners", True)],  # the twin: an ordinary new group comes through
)
def test_a_privileged_group_added_after_the_login_does_not_ride_in_on_the_token(
    make_home: MakeHome, private_slapd: Slapd, clock: FixedClock, group: str, authenticated: bool
) -> None:
    home = make_home(private_slapd)
    public_runtime, runtime = build_runtime(home), build_runtime(home)
    public = create_app(public_runtime, "public").test_client()
    token = public.post("/login", headers=basic(CAROL.uid, CAROL.password)).json["token"]  # type: ignore[index]
    webhook = create_app(runtime, "webhook").test_client()
    try:
        assert _review(webhook, token)["authenticated"] is True
        private_slapd.add_groups(Group(group, (user_dn(CAROL.uid),)))
        clock.advance(dt.timedelta(seconds=61))  # ldap.group_cache_ttl (60 s) and the webhook's cache (1 s)
        status = _review(webhook, token)
        assert status["authenticated"] is authenticated
        if authenticated:
            assert group in status["user"]["groups"]
    finally:
        public_runtime.close()
        runtime.close()
