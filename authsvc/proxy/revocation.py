"""The per-request revocation check: the one place the proxy asks "may this still be used?".

A TokenReview answer lives in kube-apiserver's caches; a request through the proxy is checked
here every time, after authentication (cached or not), so a revoked credential stops at its
next request. The check is a plain callable injected into the proxy (`RevocationCheck`):
it gets who was authenticated and with what, and returns the reason to refuse, or None.
It runs on the proxy's thread pool, so it may read a database.

The default, `denylist_check`, is the access lifecycle's revocation set (authsvc/access/
denylist.py), the one the webhook checks every answer against: a banned user (`authsvc access
revoke`) with any credential, a token id revoked by `authsvc token revoke`, a certificate
serial revoked by `authsvc certs revoke`, all re-read from the database every
`tokens.cache_refresh`. kube-apiserver itself reads no CRL: through the proxy, a revoked
certificate stops working; straight to the API server it works until it expires. Before the set
has ever been read the check raises BackendUnavailable and the proxy answers 503 (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from authsvc.proxy.credentials import Authenticated, CredentialKind

if TYPE_CHECKING:
    from authsvc.access.denylist import Denylist

# Who was authenticated, with what -> the reason it may no longer be used, or None.
RevocationCheck = Callable[[Authenticated], "str | None"]


def denylist_check(denylist: Denylist) -> RevocationCheck:
    """Bans, revoked token ids and revoked certificate serials, as the webhook checks them."""

    def check(authenticated: Authenticated) -> str | None:
        credential = authenticated.credential
        if credential.kind is CredentialKind.TOKEN:
            ids = (credential.token_id,) if credential.token_id else ()
        else:
            ids = (credential.fingerprint,)
        return denylist.refusal(authenticated.user.username, ids)

    return check
