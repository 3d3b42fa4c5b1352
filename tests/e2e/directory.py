"""The test slapd behind the session control plane's /login: what the LDAP-login, access-lifecycle
and self-service tests each need, set up one way and undone after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.components.slapd import GROUPS_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD, Slapd
from tests.components.support import require_binary
from tests.e2e.cluster import E2ECluster


@contextmanager
def directory_logins(cluster: E2ECluster, sections: dict[str, dict[str, Any]] | None = None) -> Iterator[Slapd]:
    """A slapd of the default dataset as `login.backends: [ldap]`, with `sections` merged into
    authsvc.yaml too; the configuration the cluster had is written back (and `authsvc serve`
    restarted on it) at the end."""
    for binary in ("slapd", "slapadd"):
        require_binary(binary)
    original = cluster.config_file.read_text()
    password_file = cluster.home / "ldap-bind-password"
    password_file.touch(mode=0o600)
    password_file.write_text(SERVICE_PASSWORD)
    with Slapd() as slapd:
        ldap = {
            "enabled": True,
            "servers": [slapd.url],
            # Plain LDAP on loopback to a test directory; production uses ldaps or StartTLS.
            "start_tls": False,
            "allow_plaintext": True,
            "bind_dn": SERVICE_DN,
            "bind_password_file": str(password_file),
            "user_base": PEOPLE_DN,
            "group_base": GROUPS_DN,
        }
        cluster.reconfigure({"ldap": ldap, "login": {"backends": ["ldap"]}, **(sections or {})})
        try:
            yield slapd
        finally:
            cluster.write_config(original)
