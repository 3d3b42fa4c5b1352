"""Group resolution: which groups a user is in, by member DN or memberOf, nested to a limit.

Direct groups come from one search (`(&<group_filter>(member=<user DN>))`) or from the
user's memberOf values. Nesting is followed level by level with one search per level
(the DNs found at the previous level OR-ed together, in batches), never entry by entry,
and stops at `nested_depth` or when a level brings nothing new (cycles end there too).
With `in_chain` (Active Directory) the server resolves every level in one search.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import ldap3

from authsvc.ldap.directory import Directory, DirectoryUser, Entry, chunks
from authsvc.ldap.filters import DNKey, dn_key, dn_parts, is_under, membership_filter

log = logging.getLogger(__name__)

# DNs OR-ed into one nested-group search; keeps filters well under server limits.
BATCH = 100


class GroupResolver:
    """Resolves group names (with the configured prefix) through a Directory's service connections."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.settings = directory.settings
        self._base_key = dn_key(self.settings.group_base) if self.settings.group_base else ()

    @property
    def enabled(self) -> bool:
        return self.settings.groups_enabled

    def groups_of(self, user: DirectoryUser) -> tuple[str, ...]:
        """Sorted, de-duplicated group names. Raises BackendUnavailable like every directory call."""
        if not self.enabled:
            return ()
        names = self.directory.call("group search", lambda conn: self._resolve(conn, user))
        prefix = self.settings.group_prefix
        return tuple(sorted({prefix + name for name in names}))

    # -- one connection for the whole resolution --------------------------------------------

    def _resolve(self, conn: ldap3.Connection, user: DirectoryUser) -> list[str]:
        s = self.settings
        if s.in_chain:
            return [name for _, name in self._members_of(conn, [user.dn], in_chain=True)]
        if s.group_membership == "memberOf":
            direct = self._member_of_groups(conn, user)
        else:
            direct = self._members_of(conn, [user.dn])
        found: dict[DNKey, str] = {}
        frontier = self._add_new(found, direct)
        for _level in range(s.nested_depth):
            if not frontier:
                break
            parents = [g for batch in chunks(frontier, BATCH) for g in self._members_of(conn, batch)]
            frontier = self._add_new(found, parents)
        if frontier and s.nested_depth:
            log.debug("group nesting deeper than ldap.nested_depth=%d for %s: stopped", s.nested_depth, user.dn)
        return list(found.values())

    def _members_of(
        self, conn: ldap3.Connection, dns: Sequence[str], *, in_chain: bool = False
    ) -> list[tuple[str, str]]:
        """(DN, name) of the groups under group_base whose member attribute holds one of `dns`."""
        s = self.settings
        if not s.group_base:
            return []
        query = membership_filter(s.group_filter, s.group_member_attribute, dns, in_chain=in_chain)
        entries = self.directory.search(conn, s.group_base, query, [s.group_name_attribute])
        return [(e.dn, self._name_of(e)) for e in entries]

    def _member_of_groups(self, conn: ldap3.Connection, user: DirectoryUser) -> list[tuple[str, str]]:
        """(DN, name) for the user's memberOf values under group_base."""
        groups = []
        for dn in user.member_of:
            try:
                parts = dn_parts(dn)
            except ValueError:
                log.warning("ignoring malformed memberOf value %r of %s", dn, user.dn)
                continue
            if self._base_key and not is_under(dn_key(dn), self._base_key):
                continue
            attribute, value = parts[0]
            name = value if attribute == self.settings.group_name_attribute.lower() else self._read_name(conn, dn)
            if name:
                groups.append((dn, name))
        return groups

    def _read_name(self, conn: ldap3.Connection, dn: str) -> str | None:
        entries = self.directory.search(
            conn, dn, "(objectClass=*)", [self.settings.group_name_attribute], scope=ldap3.BASE
        )
        return self._name_of(entries[0]) if entries else None

    def _name_of(self, entry: Entry) -> str:
        values = entry.attributes.get(self.settings.group_name_attribute) or []
        if values:
            return str(values[0])
        return dn_parts(entry.dn)[0][1]

    @staticmethod
    def _add_new(found: dict[DNKey, str], groups: list[tuple[str, str]]) -> list[str]:
        """Record groups not seen before; return their DNs (the next level's frontier)."""
        new = []
        for dn, name in groups:
            key = dn_key(dn)
            if key not in found:
                found[key] = name
                new.append(dn)
        return new
