"""The directory's configuration, resolved once: DNs checked, CA path and bind password read.

`DirectoryConfig.from_settings` reports every problem at once (dotted `ldap.` paths), the
way the settings loader does, so an operator fixes the file in one go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ldap3.core.exceptions import LDAPInvalidDnError
from ldap3.utils.dn import safe_dn

from authsvc.errors import ConfigError
from authsvc.home.secrets import read_secret
from authsvc.settings.ldap import LDAPSettings


@dataclass(frozen=True, slots=True)
class DirectoryConfig:
    """The `ldap:` settings plus what was resolved from them at start."""

    settings: LDAPSettings
    ca_file: Path | None = None
    bind_password: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: LDAPSettings, *, home_root: Path, environ: Mapping[str, str]) -> DirectoryConfig:
        """Raises ConfigError naming every invalid DN, a missing CA file or an unreadable password."""
        problems = [
            problem
            for name in ("bind_dn", "user_base", "group_base")
            if (problem := _dn_problem(getattr(settings, name), f"ldap.{name}"))
        ]
        ca_file = home_root / settings.ca_file if settings.ca_file else None
        if ca_file is not None and not ca_file.is_file():
            problems.append(f"ldap.ca_file: {ca_file} does not exist")
        if problems:
            raise ConfigError("invalid LDAP configuration: " + "; ".join(problems))
        password = read_secret(
            file=settings.bind_password_file,
            env=settings.bind_password_env,
            environ=environ,
            base=home_root,
            what="LDAP bind password",
        )
        return cls(settings, ca_file, password)


def _dn_problem(value: str | None, where: str) -> str | None:
    if not value:
        return None
    try:
        safe_dn(value)
    except LDAPInvalidDnError as e:
        return f"{where}: {value!r} is not a valid DN ({e})"
    return None
