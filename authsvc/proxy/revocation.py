"""The per-request revocation check: the one place the proxy asks "may this still be used?".

A TokenReview answer lives in kube-apiserver's caches; a request through the proxy is checked
here every time, after authentication (cached or not), so a revoked credential stops at its
next request. The check is a plain callable injected into the proxy (`RevocationCheck`):
it gets who was authenticated and with what, and returns the reason to refuse, or None.
It runs on the proxy's thread pool, so it may read a database.

The default, `default_revocation_check`, knows what authsvc already revokes:

- tokens authsvc signed (user tokens, /login tokens, service-account tokens): their `jti` in
  the token service's denylist (`authsvc token revoke`), which the service re-reads every
  `tokens.cache_refresh`;
- client certificates: their serial revoked in the inventory (`authsvc certs revoke`), re-read
  as often. kube-apiserver itself reads no CRL: through the proxy, a revoked certificate stops
  working; straight to the API server it works until it expires.

The access-lifecycle work (authsvc/access/: bans, session revocation) plugs its own check in
here, through `ProxyComponents.revocation` (authsvc/proxy/runtime.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from authsvc.proxy.credentials import Authenticated, CredentialKind

if TYPE_CHECKING:
    from pki.inventory import Inventory
    from pki.tokens import TokenService

# Who was authenticated, with what -> the reason it may no longer be used, or None.
RevocationCheck = Callable[[Authenticated], "str | None"]


class RevokedSerials:
    """The inventory's revoked certificate serials, re-read at most every `refresh` seconds."""

    def __init__(self, inventory: Inventory, refresh: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.inventory = inventory
        self.refresh = refresh
        self._monotonic = monotonic
        self._serials: frozenset[str] = frozenset()
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def __contains__(self, serial: object) -> bool:
        return serial in self._current()

    def _current(self) -> frozenset[str]:
        now = self._monotonic()
        if self._loaded_at is not None and now - self._loaded_at < self.refresh:
            return self._serials
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= self.refresh:
                from pki.inventory import CertStatus

                revoked = self.inventory.certificates(status=CertStatus.REVOKED)
                self._serials = frozenset(record.serial for record in revoked)
                self._loaded_at = now
            return self._serials


def default_revocation_check(token_service: TokenService, revoked_serials: RevokedSerials) -> RevocationCheck:
    """authsvc's own revocations: token ids (`token revoke`) and certificate serials (`certs revoke`)."""

    def check(authenticated: Authenticated) -> str | None:
        credential = authenticated.credential
        if credential.kind is CredentialKind.TOKEN:
            if credential.token_id and token_service.is_revoked(credential.token_id):
                return f"token {credential.token_id} revoked"
            return None
        if credential.serial in revoked_serials:
            return f"certificate {credential.serial} revoked"
        return None

    return check
