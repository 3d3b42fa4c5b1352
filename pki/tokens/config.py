"""What a TokenService is configured with (built from the `tokens:` settings section)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pki.policy import SigningPolicy

# kubeadm's --service-account-issuer.
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True, slots=True)
class TokenConfig:
    # The service-account issuer (kube-apiserver's --service-account-issuer).
    issuer: str = DEFAULT_ISSUER
    # `iss` of user tokens; None: the service-account issuer (kube-apiserver refuses a JWT
    # authenticator for that one, so user tokens it verifies natively need an issuer of their own).
    user_issuer: str | None = None
    algorithm: str = "RS256"
    sa_ttl: dt.timedelta = dt.timedelta(hours=1)
    user_ttl: dt.timedelta = dt.timedelta(hours=8)
    max_ttl: dt.timedelta = dt.timedelta(days=1)
    user_audience: str = "authsvc"
    # kube-apiserver's --api-audiences; empty means [issuer], as kube-apiserver defaults it.
    api_audiences: tuple[str, ...] = ()
    leeway: dt.timedelta = dt.timedelta(seconds=30)
    cache_refresh: dt.timedelta = dt.timedelta(seconds=5)
    # A prepared key is published this long before it may sign (relying parties cache JWKS).
    publish_before_activate: dt.timedelta = dt.timedelta(hours=1)
    # A retiring key stays published at least this long (tokens others signed with it).
    retire_min_wait: dt.timedelta = dt.timedelta(hours=1)
    policy: SigningPolicy | None = None

    @property
    def user_token_issuer(self) -> str:
        return self.user_issuer or self.issuer

    @property
    def service_account_audiences(self) -> tuple[str, ...]:
        return self.api_audiences or (self.issuer,)
