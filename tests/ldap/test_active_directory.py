"""`ldap.flavor: active-directory` against a real Active Directory DC (Samba, tests/components/samba_ad.py).

One DC per session (fixed ports 389/636). Accounts: alice, bob (dev); carol and dave in ops,
nested ops -> admins -> platform -> k8s-admins; one account for each way AD refuses a bind
(disabled 533, password expired 532, must change 773, locked out 775, account expired 701,
outside logon hours 530, another workstation 531). `dave` is the account tests disable.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ldap3
import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient

from authsvc.authn.refreshers import LDAPIdentityRefresher
from authsvc.errors import BackendUnavailable
from authsvc.home.layout import HomeLayout
from authsvc.home.opened import Home
from authsvc.identity import UserInfo
from authsvc.init.steps import with_public_listener
from authsvc.ldap.active_directory import AD_REFUSALS
from authsvc.ldap.service import LDAPService
from authsvc.login.backends import LDAPLoginBackend
from authsvc.settings import Settings
from authsvc.web.app import runtime_of
from pki.clock import FixedClock
from tests.components.samba_ad import (
    DEFAULT_AD_GROUPS,
    NESTED_CHAIN,
    STATE_USERS,
    AccountState,
    PortsTaken,
    SambaAD,
)
from tests.components.slapd import Dataset, Group, Slapd, User, group_dn, user_dn
from tests.ldap.fixtures import (
    ENVIRON,
    ad_settings,
    issue_serving_certificate,
    ldap_service,
    ldap_settings,
    require_slapd,
)
from tests.login.fixtures import basic

pytestmark = pytest.mark.samba
CAROL_GROUPS = [f"ad:{name}" for name in sorted(NESTED_CHAIN)]  # ad:admins, ad:k8s-admins, ad:ops, ad:platform
INVALID = {"error": "invalid user name or password"}
NEVER = str(0x7FFFFFFFFFFFFFFF)


@pytest.fixture
def ad_service(active_directory: SambaAD, clock: FixedClock) -> Iterator[Callable[..., LDAPService]]:
    made: list[LDAPService] = []

    def make(**overrides: Any) -> LDAPService:
        service = ldap_service(ad_settings(active_directory, **overrides), clock=clock)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()


@pytest.fixture
def ad_client(
    tmp_path: Path,
    clock: FixedClock,
    login_home_template: Path,
    active_directory: SambaAD,
    app_for: Callable[[Home], Flask],
) -> FlaskClient:
    """The real app with /login against the DC; the audit log (login lines included) in audit.log."""
    settings = Settings.model_validate(
        {
            "ldap": ad_settings(active_directory).model_dump(),
            "login": {"backends": ["ldap"], "max_failures_per_user": 50, "max_failures_per_address": 500},
            # The webhook's result cache must not hide what the refresher decides.
            "authn": {"cache_ttl": 1, "negative_cache_ttl": 1},
            "audit": {"path": "audit.log", "flush_ms": 0},
        }
    )
    root = tmp_path / "home"
    shutil.copytree(login_home_template, root)
    home = Home.of(HomeLayout.at(root), with_public_listener(settings), clock=clock, environ=ENVIRON)
    return app_for(home).test_client()


def login(client: FlaskClient, username: str, password: str) -> Any:
    return client.post("/login", headers=basic(username, password), environ_base={"REMOTE_ADDR": "10.9.0.1"})


def review(client: FlaskClient, token: str) -> dict[str, Any]:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    response = client.post("/authenticate", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.data
    status: dict[str, Any] = response.json["status"]
    return status


def login_lines(client: FlaskClient) -> list[dict[str, Any]]:
    """The audit log's /login lines (flush_ms 0: written before the answer)."""
    home = runtime_of(client.application).home
    path = home.root / home.settings.audit.path
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [line for line in lines if line["action"] == "login"]


# --- logins -----------------------------------------------------------------------------------


def test_login_by_sam_account_name_and_by_upn(
    ad_service: Callable[..., LDAPService], active_directory: SambaAD
) -> None:
    backend = LDAPLoginBackend(ad_service())
    carol = active_directory.user("carol")
    guid = active_directory.object_guid("carol")
    for typed in ("carol", "CAROL", carol.upn, carol.upn.upper()):
        verdict = backend.authenticate(typed, carol.password)
        assert verdict.identity is not None, (typed, verdict.reason)
        # The token names the sAMAccountName, whatever was typed; the uid is the objectGUID as AD writes it.
        assert (verdict.identity.username, verdict.identity.uid) == ("carol", guid)
        assert list(verdict.identity.groups) == CAROL_GROUPS
    wrong = backend.authenticate(carol.upn, "not-" + carol.password)
    assert (wrong.identity, wrong.known, wrong.reason) == (None, True, "wrong password (AD data 52e)")
    # Neither a NetBIOS-style name nor a DN logs in: the filter compares sAMAccountName and UPN only.
    for typed in ("AUTHSVC\\carol", carol.dn, "carol@elsewhere.test", "car*"):
        assert backend.authenticate(typed, carol.password).identity is None, typed


def test_in_chain_resolves_three_levels_as_nested_depth_does_on_slapd(
    ad_service: Callable[..., LDAPService], active_directory: SambaAD
) -> None:
    require_slapd()
    ad = ad_service()
    on_ad = ad.identity_of(_found(ad, "carol")).groups
    assert list(on_ad) == CAROL_GROUPS
    # The same tree in OpenLDAP, which has no in-chain rule: nested_depth follows it level by level.
    with Slapd(dataset=_slapd_twin()) as slapd:
        for depth, expected in ((3, CAROL_GROUPS), (2, [g for g in CAROL_GROUPS if g != "ad:k8s-admins"])):
            service = ldap_service(ldap_settings(slapd, nested_depth=depth, group_prefix="ad:"))
            try:
                assert list(service.identity_of(_found(service, "carol")).groups) == expected, depth
            finally:
                service.close()
    # Twins on AD: without the in-chain rule and without nesting, only the direct group.
    direct = ad_service(in_chain=False)
    assert list(direct.identity_of(_found(direct, "carol")).groups) == ["ad:ops"]
    level_by_level = ad_service(in_chain=False, nested_depth=3)
    assert list(level_by_level.identity_of(_found(level_by_level, "carol")).groups) == CAROL_GROUPS


def _found(service: LDAPService, name: str) -> Any:
    user = service.find_user(name)
    assert user is not None, name
    return user


def _slapd_twin() -> Dataset:
    """DEFAULT_AD_GROUPS as groupOfNames in slapd (members by DN, users with the same names)."""
    groups = {g.name for g in DEFAULT_AD_GROUPS}
    people = sorted({m for g in DEFAULT_AD_GROUPS for m in g.members if m not in groups})
    return Dataset(
        [User(name, f"{name}-pw") for name in people],
        [
            Group(g.name, tuple(group_dn(m) if m in groups else user_dn(m) for m in g.members))
            for g in DEFAULT_AD_GROUPS
        ],
    )


# --- AD's refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", STATE_USERS, ids=lambda u: f"{u.state.value}-{u.name}")
def test_each_refusal_is_the_same_401_with_its_own_reason(
    ad_client: FlaskClient, user: Any, caplog: pytest.LogCaptureFixture
) -> None:
    code = user.state.value
    caplog.set_level(logging.INFO, logger="authsvc.login.service")
    response = login(ad_client, user.name, user.password)  # the right password, every time
    assert (response.status_code, response.json) == (401, INVALID)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="authsvc", charset="UTF-8"'
    reason = f"{AD_REFUSALS[code]} (AD data {code})"
    [line] = login_lines(ad_client)
    assert {k: line[k] for k in ("outcome", "subject", "backend", "reason", "client")} == {
        "outcome": "refused",
        "subject": user.name,
        "backend": "ldap",
        "reason": reason,
        "client": "10.9.0.1",
    }
    assert f"login refused: user {user.name!r} from 10.9.0.1: {reason}" in caplog.messages


def test_wrong_password_and_unknown_user_have_their_own_reasons(ad_client: FlaskClient) -> None:
    assert login(ad_client, "alice", "Wrong-pw-2024!").json == INVALID
    assert login(ad_client, "nobody", "Wrong-pw-2024!").json == INVALID
    assert login(ad_client, "alice", "").json == INVALID
    reasons = [(line["subject"], line["reason"]) for line in login_lines(ad_client)]
    assert reasons == [
        ("alice", "wrong password (AD data 52e)"),
        ("nobody", "unknown user"),
        ("alice", "empty user name or password"),
    ]
    # The twin: the right password logs in, and the audit line says so.
    ok = login(ad_client, "alice", "Alice-pw-2024!")
    assert ok.status_code == 200 and ok.json["groups"] == ["ad:dev"]
    assert login_lines(ad_client)[-1]["outcome"] == "ok"


def test_each_refusal_code_is_read_from_the_bind(ad_service: Callable[..., LDAPService]) -> None:
    service = ad_service()
    for user in STATE_USERS:
        refusal = service.bind(f"CN={user.name},{service.settings.user_base}", user.password)
        assert refusal is not None and refusal.result == 49, user
        assert (refusal.ad_code, refusal.reason) == (
            user.state.value,
            f"{AD_REFUSALS[user.state.value]} (AD data {user.state.value})",
        )
    # Twin: an active account's right password is no refusal at all.
    assert service.bind(f"CN=alice,{service.settings.user_base}", "Alice-pw-2024!") is None


# --- disabled, locked out, expired: at login and at review time -----------------------------------


def test_a_disabled_account_is_refused_at_login_and_its_token_at_review_within_the_cache_ttl(
    ad_client: FlaskClient, active_directory: SambaAD, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    dave = active_directory.user("dave")
    issued = login(ad_client, dave.name, dave.password)
    assert issued.status_code == 200, issued.json
    token = issued.json["token"]
    assert review(ad_client, token)["user"]["groups"] == CAROL_GROUPS
    caplog.set_level(logging.INFO)
    active_directory.set_disabled("dave", True)
    try:
        refused = login(ad_client, dave.name, dave.password)
        assert (refused.status_code, refused.json) == (401, INVALID)
        assert login_lines(ad_client)[-1]["reason"] == "account disabled (AD data 533)"
        # Within ldap.group_cache_ttl (60 s) the answer cached at login still serves...
        clock.advance(dt.timedelta(seconds=30))
        assert review(ad_client, token)["authenticated"] is True
        # ...and once it is past, the token is refused.
        clock.advance(dt.timedelta(seconds=31))
        assert review(ad_client, token)["authenticated"] is False
        assert "token of 'dave' refused: account disabled (userAccountControl ACCOUNTDISABLE)" in caplog.messages
    finally:
        active_directory.set_disabled("dave", False)
    # The twin: enabled again, the same token is accepted again after the TTL.
    clock.advance(dt.timedelta(seconds=61))
    assert review(ad_client, token)["authenticated"] is True


def test_locked_out_and_expired_accounts_are_refused_at_review_time(
    ad_service: Callable[..., LDAPService], active_directory: SambaAD, clock: FixedClock
) -> None:
    service = ad_service()
    refresher = LDAPIdentityRefresher(service)
    locked = service.lookup("lockedout")
    assert locked is not None and locked.inactive.startswith("account locked out")
    assert refresher(UserInfo("lockedout", locked.uid)) is None
    assert service.lookup("acctexpired").inactive.startswith("account expired at")  # type: ignore[union-attr]

    bob = active_directory.user("bob")
    tomorrow = clock() + dt.timedelta(days=1)
    active_directory.set_attribute(bob.dn, "accountExpires", str(_filetime(tomorrow)))
    try:
        now = service.lookup("bob")
        assert now is not None and not now.inactive and now.groups == ("ad:dev",)
        assert refresher(UserInfo("bob", now.uid)) is not None
        clock.advance(dt.timedelta(days=2))  # the injected clock decides, not the DC's
        later = service.lookup("bob")
        assert later is not None and later.inactive.startswith("account expired at")
        assert later.groups == ()
        assert refresher(UserInfo("bob", now.uid)) is None
    finally:
        active_directory.set_attribute(bob.dn, "accountExpires", NEVER)


def _filetime(when: dt.datetime) -> int:
    return int((when - dt.datetime(1601, 1, 1, tzinfo=dt.UTC)).total_seconds()) * 10**7


def test_without_account_checks_the_user_filter_alone_decides(ad_service: Callable[..., LDAPService]) -> None:
    # The override is honoured: a disabled account is then found like any other at review time...
    unchecked = ad_service(account_checks="none")
    disabled = unchecked.lookup("disabled")
    assert disabled is not None and not disabled.inactive
    # ...unless the operator's own filter leaves it out (the AD bit-filter way).
    filtered = ad_service(
        account_checks="none",
        user_filter="(&(objectClass=user)(sAMAccountName={username})(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
    )
    assert filtered.lookup("disabled") is None and filtered.lookup("alice") is not None


# --- TLS ---------------------------------------------------------------------------------------


def test_a_plain_bind_names_the_fix(ad_service: Callable[..., LDAPService], active_directory: SambaAD) -> None:
    plain = ad_service(servers=(active_directory.url,), start_tls=False, allow_plaintext=True)
    with pytest.raises(BackendUnavailable, match="AD requires TLS: use ldaps:// or start_tls"):
        plain.find_user("carol")  # the service account's bind
    with pytest.raises(BackendUnavailable, match="AD requires TLS: use ldaps:// or start_tls"):
        plain.bind(active_directory.user("carol").dn, "Carol-pw-2024!")  # a user's bind
    # The twin: the same server and port with StartTLS (the preset's default) works.
    upgraded = ad_service(servers=(active_directory.url,))
    user = upgraded.find_user("carol")
    assert user is not None and upgraded.check_password(user.dn, "Carol-pw-2024!")
    assert user.server == active_directory.url


def test_the_directory_certificate_is_verified(ad_service: Callable[..., LDAPService], tmp_path: Path) -> None:
    _, _, other_ca = issue_serving_certificate(tmp_path, ["IP:127.0.0.1"])
    with pytest.raises(BackendUnavailable):
        ad_service(ca_file=str(other_ca)).find_user("carol")


# --- `authsvc ldap test` -----------------------------------------------------------------------


def test_ldap_test_says_which_flavor_is_in_force(
    tmp_path: Path, login_home_template: Path, active_directory: SambaAD, cli: Any
) -> None:
    root = tmp_path / "home"
    shutil.copytree(login_home_template, root)
    settings = {
        "enabled": True,
        "flavor": "active-directory",  # one line for AD's defaults; below, only what is this site's
        "servers": [active_directory.ldaps_url],
        "ca_file": str(active_directory.ca_file),
        "bind_dn": active_directory.service_dn,
        "bind_password_env": "TEST_AD_BIND_PASSWORD",
        "user_base": active_directory.people_dn,
        "group_base": active_directory.groups_dn,
        "group_prefix": "ad:",
    }
    (root / "authsvc.yaml").write_text(yaml.safe_dump({"ldap": settings}))
    shown = cli(["ldap", "test", "carol@authsvc.test", "-o", "json"], home=root, env=ENVIRON)
    assert shown.exit_code == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["flavor"].startswith("active-directory")
    assert (report["user"], report["groups"], report["account"]) == ("carol", CAROL_GROUPS, "active")
    assert report["uid"] == active_directory.object_guid("carol")
    table = cli(["ldap", "test", "disabled"], home=root, env=ENVIRON)
    assert table.exit_code == 0, table.stderr
    assert "flavor:  active-directory" in table.stdout
    assert "account: refused: account disabled (userAccountControl ACCOUNTDISABLE)" in table.stdout
    # The twin: without the flavor line the generic defaults apply, and find nobody in AD.
    (root / "authsvc.yaml").write_text(yaml.safe_dump({"ldap": {**settings, "flavor": "generic"}}))
    generic = cli(["ldap", "test", "carol"], home=root, env=ENVIRON)
    assert generic.exit_code == 1 and "no single entry" in generic.stderr


def test_a_second_dc_is_refused_while_the_ports_are_taken(active_directory: SambaAD, tmp_path: Path) -> None:
    second = SambaAD(tls_cert=tmp_path / "c", tls_key=tmp_path / "k", tls_ca=tmp_path / "ca")
    with pytest.raises(PortsTaken, match=re.escape("port(s) 389, 636 on 127.0.0.1 already in use")):
        second.start()
    assert not second.running and second.timings.provision == 0  # refused before provisioning anything
    assert active_directory.running


def test_states_are_what_the_dc_says(active_directory: SambaAD) -> None:
    """The seeded accounts are what the tests above take them for (a check of the fixture)."""
    for user in active_directory.users:
        conn = ldap3.Connection(
            ldap3.Server(active_directory.ldaps_url, get_info=ldap3.NONE, tls=active_directory.tls()),
            user.dn,
            user.password,
        )
        accepted = conn.bind()
        assert accepted is (user.state is AccountState.ACTIVE), (user, conn.result)
        if not accepted:
            assert f"data {user.state.value}," in conn.result["message"]
        conn.unbind()
