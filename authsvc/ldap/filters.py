"""Pure builders for LDAP filters and helpers for DNs: where user input meets the protocol.

Every value that came from outside (a user name, a DN read back from the directory) goes
into a filter through ldap3's `escape_filter_chars`, so `*`, `(`, `)`, `\\` and NUL can
never change the filter's structure (RFC 4515 section 3). DNs are taken apart with ldap3's
`parse_dn`, never with string splitting.
"""

from __future__ import annotations

import string
from collections.abc import Sequence

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from authsvc.settings.ldap import IN_CHAIN_RULE

DNKey = tuple[tuple[str, str], ...]


def user_filter(template: str, username: str) -> str:
    """The user search filter: `template` with `{username}` replaced by the escaped name."""
    return template.format(username=escape_filter_chars(username))


def membership_filter(object_filter: str, member_attribute: str, dns: Sequence[str], *, in_chain: bool = False) -> str:
    """Groups (matching `object_filter`) whose `member_attribute` holds any of `dns`.

    With `in_chain`, Active Directory's LDAP_MATCHING_RULE_IN_CHAIN makes the server follow
    every nesting level itself.
    """
    if not dns:
        raise ValueError("membership_filter needs at least one DN")
    rule = f":{IN_CHAIN_RULE}:" if in_chain else ""
    assertions = "".join(f"({member_attribute}{rule}={escape_filter_chars(dn)})" for dn in dns)
    if len(dns) > 1:
        assertions = f"(|{assertions})"
    return f"(&{object_filter}{assertions})"


def unescape_dn_value(value: str) -> str:
    r"""An attribute value as written in a DN (RFC 4514 section 2.4), unescaped: `a\,b` and `a\2cb` -> `a,b`."""
    out = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(c in string.hexdigits for c in pair):
                out += bytes.fromhex(pair)
                i += 3
                continue
            i += 1
        out += value[i].encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def dn_parts(dn: str) -> DNKey:
    """A DN as (attribute type lower-cased, unescaped value) pairs; ValueError if malformed."""
    try:
        parts = parse_dn(dn)
    except LDAPInvalidDnError as e:
        raise ValueError(f"{dn!r} is not a valid DN: {e}") from None
    return tuple((attr.strip().lower(), unescape_dn_value(val.strip())) for attr, val, _ in parts)


def dn_key(dn: str) -> DNKey:
    """A comparable form of a DN: `uid=Weird\\,Name,ou=People` and `uid=weird\\2cname,ou=people` match.

    Raises ValueError for a malformed DN.
    """
    return tuple((attr, value.lower()) for attr, value in dn_parts(dn))


def is_under(dn: DNKey, base: DNKey) -> bool:
    """True when `dn` is `base` or below it (keys from `dn_key`)."""
    return len(dn) >= len(base) and dn[len(dn) - len(base) :] == base
