"""Backend "authsvc": the tokens authsvc signs itself (service-account and user JWTs).

Service-account tokens map to `system:serviceaccount:<ns>:<name>` in
`system:serviceaccounts` and `system:serviceaccounts:<ns>`, with the pod name and UID as
extra when the token is bound to a pod: what kube-apiserver reports for the same token
(unless `tokens.webhook_service_accounts` is off: then they are left to kube-apiserver,
which also checks that the service account and pod still exist).
A user token's audience is authsvc (`tokens.user_audience`, checked here), so the answer for
it carries no audiences: kube-apiserver applies its own, as for a static token.
A user token names the login backend that vouched for it (`authsvc.io/source`); when a
refresher is given for that source (authsvc/authn/refreshers.py, wired by authsvc/runtime.py),
it re-checks the user (still in the directory? same groups?) and its answer is final:
None is "not authenticated", BackendUnavailable is "cannot decide" (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from authsvc.authn.base import AuthenticatorBase, ChainContext, IdentityRefresher, TokenKind
from authsvc.errors import BackendUnavailable
from authsvc.identity import UserInfo
from authsvc.redact import token_fingerprint
from pki.errors import KeyUnavailable, TokenRejected
from pki.tokens import TokenService
from pki.tokens.claims import KIND_USER, TokenIdentity

log = logging.getLogger(__name__)

NAME = "authsvc"


class AuthsvcTokenAuthenticator(AuthenticatorBase):
    """Verifies JWTs signed with authsvc's keys (pki/sa.key and the keys being rotated)."""

    name = NAME
    token_kinds = frozenset({TokenKind.JWT})

    def __init__(
        self,
        service: TokenService,
        refreshers: Mapping[str, IdentityRefresher] | None = None,
        *,
        service_accounts: bool = True,
    ) -> None:
        self.service = service
        self.service_accounts = service_accounts
        # Looked up per token: a login backend may register its refresher after this is built.
        self.refreshers: Mapping[str, IdentityRefresher] = refreshers or {}
        self.issuers = service.accepted_issuers

    def authenticate(self, token: str) -> UserInfo | None:
        try:
            verified = self.service.verify(token)
        except TokenRejected as e:
            log.debug("token %s rejected: %s", token_fingerprint(token), e)
            return None
        except KeyUnavailable as e:
            raise BackendUnavailable(f"token signing keys unavailable: {e}") from e
        identity = verified.identity()
        if identity.kind != KIND_USER:
            return user_info(identity, verified.audiences, verified.jti) if self.service_accounts else None
        # A user token's audience is authsvc itself (tokens.user_audience), checked above; to the
        # API server the answer is audience-agnostic, like a static token: it applies its own.
        user = user_info(identity, (), verified.jti)
        refresher = self.refreshers.get(identity.source)
        return refresher(user) if refresher is not None else user

    def ready(self) -> bool:
        return self.service.ready()


def user_info(identity: TokenIdentity, audiences: tuple[str, ...], jti: str = "") -> UserInfo:
    """The identity for the API server; the jti rides along (never in the answer) so that the
    webhook checks every cached answer against the revoked token ids."""
    return UserInfo(
        username=identity.username,
        uid=identity.uid,
        groups=identity.groups,
        extra=dict(identity.extra),
        audiences=audiences,
        backend=NAME,
        credential_id=jti,
    )


def build(context: ChainContext) -> AuthsvcTokenAuthenticator:
    return AuthsvcTokenAuthenticator(
        context.stores.token_service,
        context.refreshers,
        service_accounts=context.settings.tokens.webhook_service_accounts,
    )
