"""The per-request revocation check: the one place the proxy asks "may this still be used?".

A TokenReview answer lives in kube-apiserver's caches; a request through the proxy is checked
here every time, after authentication (cached or not), so a revoked credential stops at its
next request. The check is a plain callable injected into the proxy (`RevocationCheck`):
it gets who was authenticated and with what, and returns the reason to refuse, or None.
It may read a database, so it runs on the proxy's thread pool whenever `may_block()` says
so; otherwise (the revocation set is in memory and fresh: nearly every request) it runs inline
on the event loop. A thread hop per request cost +1-2 ms of p50 under load (the event loop waits
for the GIL behind the pool's thread; bench/proxy.py).

The default, `denylist_check`, is the access lifecycle's revocation set (authsvc/access/
denylist.py), the one the webhook checks every answer against: a banned user (`authsvc access
revoke`) with any credential, a token id revoked by `authsvc token revoke`, a certificate
serial revoked by `authsvc certs revoke`, all re-read from the database every
`tokens.cache_refresh`. kube-apiserver itself reads no CRL: through the proxy, a revoked
certificate stops working; straight to the API server it works until it expires. Before the set
has ever been read the check raises BackendUnavailable and the proxy answers 503 (fail closed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from authsvc.proxy.credentials import Authenticated, CredentialKind

if TYPE_CHECKING:
    from authsvc.access.denylist import Denylist


class RevocationCheck(Protocol):
    def __call__(self, authenticated: Authenticated) -> str | None:
        """Who was authenticated, with what -> the reason it may no longer be used, or None."""
        ...

    def may_block(self) -> bool:
        """Whether the next call may block (read a database): then it runs on the pool."""
        ...


class DenylistCheck:
    """Bans, revoked token ids and revoked certificate serials, as the webhook checks them."""

    def __init__(self, denylist: Denylist) -> None:
        self.denylist = denylist

    def __call__(self, authenticated: Authenticated) -> str | None:
        credential = authenticated.credential
        if credential.kind is CredentialKind.TOKEN:
            ids = (credential.token_id,) if credential.token_id else ()
        else:
            ids = (credential.fingerprint,)
        return self.denylist.refusal(authenticated.user.username, ids)

    def may_block(self) -> bool:
        return self.denylist.read_due()
