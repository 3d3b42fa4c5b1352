"""The per-request revocation check: the one place the proxy asks "may this still be used?".

A TokenReview answer lives in kube-apiserver's caches; a request through the proxy is checked
here every time, after authentication (cached or not), so a revoked credential stops at its
next request. The check is injected into the proxy (`RevocationCheck`): it gets who was
authenticated and with what, and returns the reason to refuse, or None. It may read a database,
so the proxy first asks `without_blocking()`, which answers from memory on the event loop when
it can (the revocation set is in memory and fresh: nearly every request) and never reads; only
when it cannot does the check run on the proxy's thread pool. A thread hop on every request
cost +0.5 ms of p50 under load (the event loop waits for the GIL behind the pool's thread;
bench/proxy.py --baseline).

The default, `DenylistCheck`, is the access lifecycle's revocation set (authsvc/access/
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
        """Who was authenticated, with what -> the reason it may no longer be used, or None.
        May block (read a database): the proxy calls it on its thread pool."""
        ...

    def without_blocking(self, authenticated: Authenticated) -> tuple[bool, str | None]:
        """(answered, reason) from what is in memory, never blocking; (False, None) when only
        a call that may block can answer."""
        ...


class DenylistCheck:
    """Bans, revoked token ids and revoked certificate serials, as the webhook checks them."""

    def __init__(self, denylist: Denylist) -> None:
        self.denylist = denylist

    def __call__(self, authenticated: Authenticated) -> str | None:
        return self.denylist.refusal(authenticated.user.username, _credential_ids(authenticated))

    def without_blocking(self, authenticated: Authenticated) -> tuple[bool, str | None]:
        denials = self.denylist.fresh()
        if denials is None:
            return False, None
        return True, self.denylist.refusal_in(denials, authenticated.user.username, _credential_ids(authenticated))


def _credential_ids(authenticated: Authenticated) -> tuple[str, ...]:
    credential = authenticated.credential
    if credential.kind is CredentialKind.TOKEN:
        return (credential.token_id,) if credential.token_id else ()
    return (credential.fingerprint,)
