"""`ldap:` section: the directory behind /login and group look-ups."""

from __future__ import annotations

from authsvc.settings.types import Section


class LDAPSettings(Section):
    enabled: bool = False
