"""What a directory's refusals and Active Directory's account attributes mean, for the operator.

A refused simple bind is resultCode 49 (invalidCredentials) whatever the cause; AD says which
in the diagnostic message, as the `data` code of a Windows error:

    80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 533, v1db1

The client of /login always gets the same 401; the code becomes the reason in the audit log
and the log line. Codes, from [MS-ERREF] 2.2 (Win32 error codes) as AD reports them (each one
produced by a real Samba AD DC in tests/ldap/test_active_directory.py):

    52e wrong password (also a DN that does not exist)   530 not permitted at this time
    531 not permitted from this workstation              532 password expired
    533 account disabled                                 701 account expired
    773 password must be changed                         775 account locked out

AD refuses simple binds without TLS with strongerAuthRequired ("BindSimple: Transport
encryption required."): `tls_required` turns that into an error that names the fix.

At review time nothing binds, so whether the account may still be used is read from the entry
(`account_problem`): userAccountControl's ACCOUNTDISABLE bit, the lockout bit of the constructed
msDS-User-Account-Control-Computed (the DC applies the lockout duration; lockoutTime itself
stays set after a lockout ends, until the next logon, so a filter on it would lock people out
for good), and accountExpires against the injected clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INVALID_CREDENTIALS = 49
# strongerAuthRequired (AD, and slapd's `require`), confidentialityRequired (slapd's `security ssf=`).
TLS_REQUIRED = frozenset({8, 13})

# userAccountControl and msDS-User-Account-Control-Computed flags ([MS-ADTS] 2.2.16).
ACCOUNTDISABLE = 0x2
LOCKOUT = 0x10
PASSWORD_EXPIRED = 0x800000
# accountExpires: 0 and 0x7FFFFFFFFFFFFFFF both mean "never".
NEVER = 0x7FFFFFFFFFFFFFFF
# Read with the user entry when ldap.account_checks is active-directory. The computed one is a
# constructed attribute: returned only when asked for by name, never usable in a filter.
ACCOUNT_ATTRIBUTES = ("userAccountControl", "msDS-User-Account-Control-Computed", "accountExpires")

AD_REFUSALS: Mapping[str, str] = {
    "525": "user not found",
    "52e": "wrong password",
    "530": "logon not permitted at this time (logonHours)",
    "531": "logon not permitted from this workstation (userWorkstations)",
    "532": "password expired",
    "533": "account disabled",
    "568": "too many security identifiers (group memberships) for a logon token",
    "701": "account expired (accountExpires)",
    "773": "password must be changed before the first logon (pwdLastSet 0)",
    "775": "account locked out",
}
_DATA_CODE = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
_FILETIME_EPOCH = dt.datetime(1601, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class BindRefusal:
    """Why the directory did not accept a user's password (for the audit log, never the client)."""

    result: int | None  # LDAP resultCode; None when nothing was sent
    ad_code: str  # AD's data code ("533"), "" when the server gave none
    reason: str  # "account disabled (AD data 533)"


def bind_refusal(result: int, description: str, message: str) -> BindRefusal:
    """The refusal an LDAP bind result describes (49 invalidCredentials, with or without AD's code)."""
    match = _DATA_CODE.search(message or "")
    code = match.group(1).lower() if match else ""
    if code in AD_REFUSALS:
        return BindRefusal(result, code, f"{AD_REFUSALS[code]} (AD data {code})")
    if code:
        return BindRefusal(result, code, f"{description} (AD data {code})")
    if result == INVALID_CREDENTIALS:
        return BindRefusal(result, "", "wrong password, or an account the directory refuses (invalidCredentials)")
    return BindRefusal(result, "", f"refused by the directory ({description})")


def tls_required(description: str, message: str) -> str:
    """The error for a bind the directory refused because the connection has no TLS."""
    said = f"{description}: {message}" if message else description
    return f"the directory refuses binds without TLS ({said}): AD requires TLS: use ldaps:// or start_tls"


def account_problem(attributes: Mapping[str, Sequence[Any]], now: dt.datetime) -> str:
    """Why an AD account may not be used now ("" when it may): disabled, locked out, expired.

    An entry without userAccountControl is refused: the checks cannot be made (fail closed).
    Password expiry is not here: it stops the next bind (AD data 532), not a session begun before.
    """
    control = _integer(attributes.get("userAccountControl"))
    if control is None:
        return "no userAccountControl attribute: cannot tell whether the account is enabled"
    if control & ACCOUNTDISABLE:
        return "account disabled (userAccountControl ACCOUNTDISABLE)"
    if (_integer(attributes.get("msDS-User-Account-Control-Computed")) or 0) & LOCKOUT:
        return "account locked out (msDS-User-Account-Control-Computed LOCKOUT)"
    expires = expiry_time(_integer(attributes.get("accountExpires")))
    if expires is not None and expires <= now:
        return f"account expired at {expires.isoformat(timespec='seconds')} (accountExpires)"
    return ""


def expiry_time(filetime: int | None) -> dt.datetime | None:
    """accountExpires as a time; None for "never" (absent, 0 or 0x7FFFFFFFFFFFFFFF)."""
    if filetime is None or filetime in (0, NEVER) or filetime < 0:
        return None
    try:
        return _FILETIME_EPOCH + dt.timedelta(microseconds=filetime // 10)
    except OverflowError:  # past year 9999: as good as never
        return None


def _integer(values: Sequence[Any] | None) -> int | None:
    if not values:
        return None
    value = values[0]
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
