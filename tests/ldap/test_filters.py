"""The pure parts: filter building (escaping) and DN helpers. No server needed."""

from __future__ import annotations

import re

import pytest

from authsvc.ldap.filters import dn_key, dn_parts, is_under, membership_filter, unescape_dn_value, user_filter
from authsvc.settings.ldap import LDAPSettings

TEMPLATE = "(&(objectClass=inetOrgPerson)(uid={username}))"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "(&(objectClass=inetOrgPerson)(uid=alice))"),
        ("*", "(&(objectClass=inetOrgPerson)(uid=\\2a))"),
        ("a)(uid=*", "(&(objectClass=inetOrgPerson)(uid=a\\29\\28uid=\\2a))"),
        ("back\\slash", "(&(objectClass=inetOrgPerson)(uid=back\\5cslash))"),
        ("nul\x00byte", "(&(objectClass=inetOrgPerson)(uid=nul\\00byte))"),
        ("{username}", "(&(objectClass=inetOrgPerson)(uid={username}))"),  # not formatted twice
        ("weird,name", "(&(objectClass=inetOrgPerson)(uid=weird,name))"),  # ',' means nothing in a filter
    ],
)
def test_user_filter_escapes_every_metacharacter(username: str, expected: str) -> None:
    assert user_filter(TEMPLATE, username) == expected


def test_membership_filter_escapes_dns_and_ors_several() -> None:
    one = membership_filter("(objectClass=groupOfNames)", "member", ["uid=paren(x),ou=people,dc=example,dc=org"])
    assert one == "(&(objectClass=groupOfNames)(member=uid=paren\\28x\\29,ou=people,dc=example,dc=org))"
    two = membership_filter("(objectClass=groupOfNames)", "member", ["cn=a,dc=x", "cn=b\\2c,dc=x"])
    assert two == "(&(objectClass=groupOfNames)(|(member=cn=a,dc=x)(member=cn=b\\5c2c,dc=x)))"
    with pytest.raises(ValueError):
        membership_filter("(objectClass=groupOfNames)", "member", [])


def test_in_chain_uses_the_active_directory_matching_rule() -> None:
    query = membership_filter("(objectClass=group)", "member", ["CN=Alice,OU=People,DC=corp"], in_chain=True)
    assert query == "(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=CN=Alice,OU=People,DC=corp))"


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [("weird\\,name", "weird,name"), ("weird\\2Cname", "weird,name"), ("caf\\C3\\A9", "café"), ("a\\\\b", "a\\b")],
)
def test_unescape_dn_value(escaped: str, plain: str) -> None:
    assert unescape_dn_value(escaped) == plain


def test_dn_key_ignores_case_and_escaping_style() -> None:
    assert dn_key("uid=Weird\\,Name,OU=People,dc=example,dc=org") == dn_key(
        "uid=weird\\2cname,ou=people,dc=example,dc=org"
    )
    assert dn_key("cn=a,dc=x") != dn_key("cn=b,dc=x")
    assert dn_parts("cn=Dev Team,ou=groups,dc=x")[0] == ("cn", "Dev Team")
    assert is_under(dn_key("cn=dev,ou=groups,dc=x"), dn_key("ou=groups,dc=x"))
    assert not is_under(dn_key("cn=dev,ou=other,dc=x"), dn_key("ou=groups,dc=x"))
    with pytest.raises(ValueError):
        dn_key("not a dn")


VALID: dict[str, object] = {
    "enabled": True,
    "servers": ("ldap://127.0.0.1:389",),
    "user_base": "ou=people,dc=example,dc=org",
    "bind_dn": "cn=svc,dc=example,dc=org",
    "bind_password_env": "PW",
}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"user_filter": "(uid=alice)"}, "{username}"),
        ({"user_filter": "uid={username}"}, "parenthesised"),
        ({"user_filter": "(uid={username})(x={other})"}, "{username}"),
        ({"group_filter": "(member={dn})"}, "without placeholders"),
        ({"servers": ("http://x",)}, "ldap:// or ldaps://"),
        ({"connect_timeout": "3m"}, "at most 120s"),
        ({"servers": ()}, "at least one"),
        ({"start_tls": False}, "clear"),
        ({"bind_password_env": None}, "bind_dn needs"),
        ({"in_chain": True, "group_membership": "memberOf"}, "in_chain needs"),
    ],
)
def test_settings_refuse_unsafe_or_broken_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        LDAPSettings.model_validate({**VALID, **overrides})


def test_the_valid_baseline_and_its_variants_load() -> None:
    assert LDAPSettings.model_validate(VALID).start_tls
    assert LDAPSettings.model_validate({**VALID, "start_tls": False, "allow_plaintext": True})
    assert LDAPSettings.model_validate({**VALID, "servers": ("ldaps://ldap.example.org",), "start_tls": False})
    assert LDAPSettings.model_validate({**VALID, "in_chain": True, "group_filter": "(objectClass=group)"})
    assert not LDAPSettings().enabled  # disabled: nothing is required
