"""LDAP: directory users, passwords and groups for /login and the webhook (ldap3).

config       the `ldap:` settings resolved (DNs checked, CA file, bind password)
filters      pure filter builders (every outside value escaped) and DN helpers
connections  failover ServerPool, TLS with verification, a small connection pool
directory    find a user, check a password; BackendUnavailable when it cannot answer
groups       direct, nested (depth-limited) and in-chain group resolution
cache        TTL cache with a stale-if-error window
service      LDAPService: the above together, one per server process
"""

from __future__ import annotations
