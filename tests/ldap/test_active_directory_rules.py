"""The AD rules without a server: bind refusal codes, account state, GUIDs, the flavor preset.

(The same rules against a real DC: tests/ldap/test_active_directory.py.)
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from authsvc.audit.log import AuditLog
from authsvc.ldap.active_directory import (
    AD_REFUSALS,
    NEVER,
    account_problem,
    bind_refusal,
    expiry_time,
    tls_required,
)
from authsvc.ldap.directory import uid_text
from authsvc.settings.audit import AuditSettings
from authsvc.settings.ldap import ACTIVE_DIRECTORY_PRESET, LDAPSettings

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


def filetime(when: dt.datetime) -> str:
    return str(int((when - EPOCH).total_seconds()) * 10**7)


# --- bind refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(AD_REFUSALS))
@pytest.mark.parametrize(
    "template",
    [
        "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data {code}, v1db1",  # Samba
        "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data {code}, v4563\x00",  # 2019
        "80090308: LdapErr: DSID-0C090439, comment: AcceptSecurityContext error, DATA {upper}, v4563",
    ],
    ids=["samba", "windows", "upper-case"],
)
def test_every_ad_code_becomes_its_reason(code: str, template: str) -> None:
    refusal = bind_refusal(49, "invalidCredentials", template.format(code=code, upper=code.upper()))
    assert (refusal.result, refusal.ad_code) == (49, code)
    assert refusal.reason == f"{AD_REFUSALS[code]} (AD data {code})"


def test_refusals_without_an_ad_code() -> None:
    slapd = bind_refusal(49, "invalidCredentials", "")
    assert (slapd.ad_code, slapd.reason) == (
        "",
        "wrong password, or an account the directory refuses (invalidCredentials)",
    )
    unknown_code = bind_refusal(49, "invalidCredentials", "AcceptSecurityContext error, data 999, v1")
    assert (unknown_code.ad_code, unknown_code.reason) == ("999", "invalidCredentials (AD data 999)")
    other = bind_refusal(53, "unwillingToPerform", "account locked")
    assert other.reason == "refused by the directory (unwillingToPerform)"
    # "data" must be a word followed by a code, not any hex run in the message.
    assert bind_refusal(49, "invalidCredentials", "metadata 533x").ad_code == ""


def test_tls_required_names_the_fix() -> None:
    message = tls_required("strongerAuthRequired", "BindSimple: Transport encryption required.")
    assert message.endswith("AD requires TLS: use ldaps:// or start_tls")
    assert "strongerAuthRequired: BindSimple: Transport encryption required." in message


# --- account state ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ({"userAccountControl": ["512"]}, ""),
        ({"userAccountControl": [b"512"], "accountExpires": [b"0"]}, ""),
        ({"userAccountControl": ["512"], "accountExpires": [str(NEVER)]}, ""),
        ({"userAccountControl": ["512"], "accountExpires": [filetime(NOW + dt.timedelta(seconds=1))]}, ""),
        ({"userAccountControl": ["66048"]}, ""),  # DONT_EXPIRE_PASSWORD, enabled
        ({"userAccountControl": ["514"]}, "account disabled (userAccountControl ACCOUNTDISABLE)"),
        ({"userAccountControl": ["66050"]}, "account disabled (userAccountControl ACCOUNTDISABLE)"),
        (
            {"userAccountControl": ["512"], "msDS-User-Account-Control-Computed": ["16"]},
            "account locked out (msDS-User-Account-Control-Computed LOCKOUT)",
        ),
        # Password expiry stops the next bind, not a session that began before it.
        ({"userAccountControl": ["512"], "msDS-User-Account-Control-Computed": ["8388608"]}, ""),
        (
            {"userAccountControl": ["512"], "accountExpires": [filetime(NOW)]},
            "account expired at 2030-06-01T12:00:00+00:00 (accountExpires)",
        ),
        ({}, "no userAccountControl attribute: cannot tell whether the account is enabled"),
        (
            {"userAccountControl": ["not a number"]},
            "no userAccountControl attribute: cannot tell whether the account is enabled",
        ),
    ],
)
def test_account_problem(attributes: dict[str, list[Any]], problem: str) -> None:
    assert account_problem(attributes, NOW) == problem


def test_account_expiry_follows_the_clock() -> None:
    expires = NOW + dt.timedelta(days=1)
    attributes = {"userAccountControl": ["512"], "accountExpires": [filetime(expires)]}
    assert account_problem(attributes, NOW) == ""
    assert account_problem(attributes, expires + dt.timedelta(seconds=1)).startswith("account expired at")
    assert expiry_time(None) is None and expiry_time(0) is None and expiry_time(NEVER) is None
    assert expiry_time(int(filetime(expires))) == expires


# --- uid -------------------------------------------------------------------------------------------


def test_object_guid_is_written_as_ad_writes_it() -> None:
    guid = uuid.UUID("6460a454-accd-4c09-8ade-560a42e95af3")
    assert uid_text("objectGUID", [guid.bytes_le]) == "6460a454-accd-4c09-8ade-560a42e95af3"
    # A GUID whose 16 bytes happen to be valid UTF-8 is still a GUID, not text.
    ascii_guid = uuid.UUID(bytes_le=b"ABCDEFGHIJKLMNOP")
    assert uid_text("objectguid", [b"ABCDEFGHIJKLMNOP"]) == str(ascii_guid)
    assert uid_text("entryUUID", [b"c7a717ac-7d8b-1041-965b-b5027c1c3fc3"]) == "c7a717ac-7d8b-1041-965b-b5027c1c3fc3"
    assert uid_text("objectSid", [b"\x01\x05\xff"]) == "0105ff"
    assert uid_text("objectGUID", []) == ""


# --- the flavor ------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "enabled": True,
    "servers": ["ldaps://dc1.example.org"],
    "user_base": "OU=people,DC=example,DC=org",
    "group_base": "DC=example,DC=org",
}


def test_one_line_sets_ads_defaults() -> None:
    ad = LDAPSettings(**BASE, flavor="active-directory")
    for name, value in ACTIVE_DIRECTORY_PRESET.items():
        assert getattr(ad, name) == value, name
    assert "(sAMAccountName={username})" in ad.user_filter and "(userPrincipalName={username})" in ad.user_filter
    generic = LDAPSettings(**BASE)
    assert (generic.flavor, generic.uid_attribute, generic.in_chain, generic.account_checks) == (
        "generic",
        "entryUUID",
        False,
        "none",
    )


def test_any_field_can_still_be_set() -> None:
    ad = LDAPSettings(**BASE, flavor="active-directory", group_name_attribute="sAMAccountName", in_chain=False)
    assert (ad.group_name_attribute, ad.in_chain, ad.uid_attribute) == ("sAMAccountName", False, "objectGUID")
    # What model_dump writes reads back to the same settings (authsvc.yaml written by init).
    assert LDAPSettings.model_validate(ad.model_dump(mode="json")) == ad


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"servers": ["ldap://dc1.example.org"], "start_tls": False}, "AD requires TLS: use ldaps:// or start_tls"),
        ({"group_membership": "memberOf"}, "set in_chain: false to read memberOf"),
        ({"flavor": "openldap"}, "flavor"),
        ({"account_checks": "yes"}, "account_checks"),
    ],
)
def test_invalid_combinations_are_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LDAPSettings(**{**BASE, "flavor": "active-directory", **values})


def test_plaintext_can_be_allowed_explicitly() -> None:
    # Allowed by the settings; AD itself then refuses the bind, with the same fix named
    # (tests/ldap/test_active_directory.py::test_a_plain_bind_names_the_fix).
    settings = LDAPSettings(
        **{**BASE, "servers": ["ldap://dc1"]}, flavor="active-directory", start_tls=False, allow_plaintext=True
    )
    assert not settings.start_tls and settings.allow_plaintext


# --- the audit log's login lines -------------------------------------------------------------------


def test_login_lines_in_the_audit_log(tmp_path: Path) -> None:
    audit = AuditLog.open(AuditSettings(path="audit.log", flush_ms=0), tmp_path)
    audit.login(
        NOW, result="refused", user='d"ave\n', backend="ldap", reason="account disabled (AD data 533)", client="::1"
    )
    audit.close()
    text = (tmp_path / "audit.log").read_text()
    assert text.count("\n") == 1 and os.stat(tmp_path / "audit.log").st_mode & 0o777 == 0o600
    line = json.loads(text)
    assert line == {
        "time": "2030-06-01T12:00:00.000+00:00",
        "actor": 'd"ave\n',
        "action": "login",
        "subject": 'd"ave\n',
        "outcome": "refused",
        "reason": "account disabled (AD data 533)",
        "ids": {},
        "backend": "ldap",
        "client": "::1",
    }


# --- the fixture's rules -----------------------------------------------------------------------------


def test_a_missing_samba_fails_under_ci_and_skips_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.components import support
    from tests.ldap.fixtures import require_samba

    monkeypatch.setattr(support, "find_binary", lambda name: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: .*'samba'.*apt-get install samba samba-ad-dc"):
        require_samba()
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="samba"):
        require_samba()
