"""`ldap:` section: the directory behind /login, `authsvc ldap test` and group look-ups.

Only cheap checks live here (the settings are imported by every command); the DNs are
parsed with ldap3's helpers when the directory is built (authsvc/ldap/config.py).
"""

from __future__ import annotations

import datetime as dt
import string
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from authsvc.settings.fields import Duration, Section

# Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: the server walks nested groups itself.
IN_CHAIN_RULE = "1.2.840.113556.1.4.1941"

LDAPFlavor = Literal["generic", "active-directory"]
# What `flavor: active-directory` sets, for each field the file does not set itself: log in by
# sAMAccountName or userPrincipalName (the token names the sAMAccountName), objectGUID as the
# uid, every nesting level of groups resolved by the DC (in-chain), disabled, locked-out and
# expired accounts refused at /login and at review time, TLS required (StartTLS or ldaps://).
ACTIVE_DIRECTORY_PRESET: dict[str, Any] = {
    "user_filter": (
        "(&(objectCategory=person)(objectClass=user)(|(sAMAccountName={username})(userPrincipalName={username})))"
    ),
    "username_attribute": "sAMAccountName",
    "uid_attribute": "objectGUID",
    "group_membership": "member",
    "group_filter": "(objectClass=group)",
    "group_member_attribute": "member",
    "group_name_attribute": "cn",
    "in_chain": True,
    "account_checks": "active-directory",
    "start_tls": True,
    "allow_plaintext": False,
}
AD_REQUIRES_TLS = "AD requires TLS: use ldaps:// or start_tls"


def _zero_allowed(value: Any) -> Any:
    # Duration refuses "0s" (a zero lifetime is a mistake elsewhere); here 0 means "never skip".
    if isinstance(value, str) and value.strip() in {"0", "0s"}:
        return dt.timedelta(0)
    return value


ZeroOrDuration = Annotated[Duration, BeforeValidator(_zero_allowed)]


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


class LDAPSettings(Section):
    enabled: bool = False
    # "active-directory" sets AD's defaults in one line (authsvc/settings/ldap.py
    # ACTIVE_DIRECTORY_PRESET; docs/ldap.md): user_filter by sAMAccountName or userPrincipalName,
    # username_attribute sAMAccountName, uid_attribute objectGUID, group_filter (objectClass=group),
    # in_chain true, account_checks active-directory, TLS required. A field set here wins.
    flavor: LDAPFlavor = "generic"
    # Tried in order (ldap3 ServerPool, FIRST strategy): the first that answers is used.
    servers: tuple[str, ...] = ()
    # Upgrade ldap:// connections with StartTLS; ldaps:// URLs use TLS from the first byte.
    start_tls: bool = True
    # PEM bundle that verifies the directory's certificate (relative to the home); system CAs if unset.
    ca_file: str | None = None
    # ldap:// without StartTLS sends passwords in clear text: only when explicitly allowed.
    allow_plaintext: bool = False
    # Per network operation (connect; each answer awaited). A look-up makes several of them.
    connect_timeout: Duration = dt.timedelta(seconds=5)
    receive_timeout: Duration = dt.timedelta(seconds=10)
    # The most one request (a TokenReview, a POST /login) waits for the directory in all, well
    # under kube-apiserver's 30 s webhook timeout. Past it, a review answers from the
    # stale-if-error cache or fails closed (an error, never "authenticated"), and the directory
    # counts as hung: calls fail at once until a probe gets an answer (also what /readyz says).
    request_budget: Duration = dt.timedelta(seconds=2)
    # While the directory counts as hung, how often one background probe asks it again.
    probe_interval: Duration = dt.timedelta(seconds=1)
    # A server that failed is skipped this long before it is tried again (ServerPool exhaust).
    retry_failed_server_after: ZeroOrDuration = dt.timedelta(seconds=10)
    follow_referrals: bool = False
    pool_size: int = Field(4, ge=1, le=64)
    page_size: int = Field(500, ge=1, le=10_000)

    # The search account. Its password comes from a file or an environment variable, never from here.
    bind_dn: str | None = None
    bind_password_file: str | None = None
    bind_password_env: str | None = None

    user_base: str = ""
    # {username} is replaced by the escaped user name (ldap3 escape_filter_chars).
    user_filter: str = "(&(objectClass=inetOrgPerson)(uid={username}))"
    username_attribute: str = "uid"
    # Stable identifier of the account (TokenReview uid); entryUUID is OpenLDAP's, objectGUID AD's.
    uid_attribute: str = "entryUUID"

    group_base: str = ""
    # "member": search group_base for groups whose group_member_attribute holds the user's DN;
    # "memberOf": read the user's member_of_attribute.
    group_membership: Literal["member", "memberOf"] = "member"
    group_filter: str = "(objectClass=groupOfNames)"
    group_member_attribute: str = "member"
    member_of_attribute: str = "memberOf"
    group_name_attribute: str = "cn"
    group_prefix: str = ""
    # Levels of groups-in-groups followed beyond the direct groups (0: direct groups only).
    nested_depth: int = Field(0, ge=0, le=10)
    # Let the server resolve every nesting level (Active Directory only).
    in_chain: bool = False
    # "active-directory": read userAccountControl, msDS-User-Account-Control-Computed and
    # accountExpires with the user and refuse disabled, locked-out and expired accounts, at
    # /login and at review time (within group_cache_ttl). "none": the user_filter alone decides.
    account_checks: Literal["none", "active-directory"] = "none"

    # How long a user's existence and groups are trusted at review time, and how much longer
    # a cached answer may be used while the directory cannot be reached.
    group_cache_ttl: Duration = dt.timedelta(seconds=60)
    stale_if_error: Duration = dt.timedelta(minutes=5)
    cache_size: int = Field(10_000, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _apply_flavor(cls, data: Any) -> Any:
        """The flavor's defaults under what the file says (any field can still be set)."""
        if isinstance(data, dict) and data.get("flavor") == "active-directory":
            return {**ACTIVE_DIRECTORY_PRESET, **data}
        return data

    @field_validator("servers")
    @classmethod
    def _check_servers(cls, servers: tuple[str, ...]) -> tuple[str, ...]:
        for url in servers:
            if not url.lower().startswith(("ldap://", "ldaps://")):
                raise ValueError(f"{url!r} is not an ldap:// or ldaps:// URL")
        return servers

    @field_validator("connect_timeout", "receive_timeout")
    @classmethod
    def _check_timeout(cls, value: dt.timedelta) -> dt.timedelta:
        if not dt.timedelta(0) < value <= dt.timedelta(minutes=2):
            raise ValueError("must be more than 0s and at most 120s")
        return value

    @field_validator("request_budget")
    @classmethod
    def _check_budget(cls, value: dt.timedelta) -> dt.timedelta:
        if not dt.timedelta(0) < value <= dt.timedelta(seconds=20):
            raise ValueError("must be more than 0s and at most 20s (kube-apiserver gives up on a webhook after 30s)")
        return value

    @field_validator("probe_interval")
    @classmethod
    def _check_probe_interval(cls, value: dt.timedelta) -> dt.timedelta:
        if not dt.timedelta(0) < value <= dt.timedelta(minutes=5):
            raise ValueError("must be more than 0s and at most 5m")
        return value

    @field_validator("user_filter")
    @classmethod
    def _check_user_filter(cls, template: str) -> str:
        if _placeholders(template) != {"username"}:
            raise ValueError("must contain {username} and no other {placeholder}")
        if not (template.startswith("(") and template.endswith(")")):
            raise ValueError("must be a parenthesised LDAP filter, e.g. (&(objectClass=person)(uid={username}))")
        return template

    @field_validator("group_filter")
    @classmethod
    def _check_group_filter(cls, value: str) -> str:
        if _placeholders(value) or not (value.startswith("(") and value.endswith(")")):
            raise ValueError(
                "must be a parenthesised LDAP filter without placeholders, e.g. (objectClass=groupOfNames)"
            )
        return value

    @model_validator(mode="after")
    def _check_complete(self) -> LDAPSettings:
        if not self.enabled:
            return self
        problems = []
        if not self.servers:
            problems.append("servers: at least one ldap:// or ldaps:// URL is needed")
        plaintext = [u for u in self.servers if u.lower().startswith("ldap://")]
        if plaintext and not self.start_tls and not self.allow_plaintext:
            problems.append(
                f"start_tls is off for ldap:// servers: {AD_REQUIRES_TLS}"
                if self.flavor == "active-directory"
                else "start_tls is off for ldap:// servers: passwords would travel in clear (allow_plaintext)"
            )
        if not self.user_base:
            problems.append("user_base: the DN to search users under is needed")
        if self.bind_dn and not (self.bind_password_file or self.bind_password_env):
            problems.append("bind_dn needs bind_password_file or bind_password_env")
        if self.in_chain and self.group_membership != "member":
            problems.append("in_chain needs group_membership: member (set in_chain: false to read memberOf)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def groups_enabled(self) -> bool:
        return bool(self.group_base) or self.group_membership == "memberOf"
