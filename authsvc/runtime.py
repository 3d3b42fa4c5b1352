"""The one place that wires a running server: `build_runtime(home) -> Runtime`.

Built once per process (each granian worker, each test app) and handed to the Flask factory
(authsvc/web/app.py). Every collaborator is a typed field, built here in dependency order:
metrics and the audit log first (the login side counts into the one and records attempts in
the other; the home's minting writes its issuance lines through it too), then the login
components and what the webhook takes from them (identity refreshers, the directory group
lookup, readiness), then the authenticator chain, the TokenReviewer with its result cache and
the revocation set it checks every answer against, and the OpenID Connect provider (which
re-checks users with the same refreshers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from authsvc.access.denylist import Denylist
from authsvc.audit.log import AuditLog
from authsvc.authn.base import ChainContext
from authsvc.authn.chain import AuthenticatorChain, build_chain
from authsvc.home.opened import Home
from authsvc.login.wiring import LoginComponents, WebhookSide, webhook_side
from authsvc.login.wiring import build as build_login
from authsvc.metrics.server import ServerMetrics
from authsvc.metrics.share import SnapshotShare
from authsvc.oidc.provider import Provider, build_provider
from authsvc.rotation.report import RotationCollector
from authsvc.self_service.sessions import SessionStore
from authsvc.settings import Settings
from authsvc.webhook.result_cache import ResultCache
from authsvc.webhook.reviewer import Answer, TokenReviewer
from pki.clock import Clock


@dataclass(frozen=True, slots=True)
class Runtime:
    """Everything one server process uses."""

    home: Home
    metrics: ServerMetrics
    login: LoginComponents
    webhook_side: WebhookSide  # refreshers, group lookup, readiness of the login backends
    chain: AuthenticatorChain
    audit: AuditLog
    reviewer: TokenReviewer
    # Revoked credentials and banned users (authsvc/access/denylist.py): what the webhook checks
    # every answer against, and what the authentication proxy asks per request.
    denylist: Denylist
    oidc: Provider | None = None  # the OpenID Connect provider, when oidc.clients is set
    # Sign-ins of the self-service page, when self_service.enabled.
    sessions: SessionStore | None = None

    @property
    def settings(self) -> Settings:
        return self.home.settings

    @property
    def clock(self) -> Clock:
        return self.home.clock

    @property
    def readiness(self) -> Mapping[str, Callable[[], bool]]:
        """Backends outside the chain that it depends on (the directory behind /login tokens)."""
        return self.webhook_side.readiness

    def close(self) -> None:
        """Close the directory's connections and flush the audit log (tests build many runtimes)."""
        if self.login.ldap is not None:
            self.login.ldap.close()
        self.audit.flush()

    def not_ready(self) -> list[str]:
        """Names of the backends that cannot answer now (for /readyz)."""
        return self.chain.not_ready() + [name for name, ready in self.readiness.items() if not ready()]


def build_runtime(
    home: Home,
    *,
    metrics_share: Path | None = None,
    chain: AuthenticatorChain | None = None,
    audit: AuditLog | None = None,
) -> Runtime:
    """`metrics_share`: the run's directory of metrics snapshots (authsvc/metrics/share.py), so
    that /metrics sums every process of `authsvc serve`; None counts this process alone.
    `chain` and `audit` replace the configured ones (tests).

    Raises ConfigError for a backend that cannot be built from its settings."""
    settings = home.settings
    share = SnapshotShare(metrics_share) if metrics_share is not None else None
    metrics = ServerMetrics(share=share)
    # In Kubernetes the rotate Job and the webhook pods share the database: /metrics shows the
    # Job's last run (read from `rotation_runs` at most every 30 s).
    metrics.registry.register(RotationCollector(lambda: home.stores.engine))
    if audit is None:
        audit = AuditLog.open(settings.audit, home.root)
    home.stores.attach_audit(audit)  # certificates and tokens minted here (/login) are audited through it
    login = build_login(home, metrics, audit)
    side = webhook_side(login, settings.pki.policy.to_policy())
    if chain is None:
        chain = build_chain(ChainContext.of(home, side.refreshers, side.group_lookup))
    authn = settings.authn
    cache: ResultCache[Answer] = ResultCache(
        authn.cache_ttl.total_seconds(), authn.negative_cache_ttl.total_seconds(), authn.cache_size
    )
    denylist = home.stores.denylist
    reviewer = TokenReviewer(chain, cache, metrics, audit, home.clock, denylist)
    if share is not None:
        share.publish_until_exit(metrics.counts)
    oidc = build_provider(home, side.refreshers)
    sessions = None
    if settings.self_service.enabled:
        sessions = SessionStore(home.stores.engine, home.clock, settings.self_service.session_ttl)
    return Runtime(home, metrics, login, side, chain, audit, reviewer, denylist, oidc, sessions)
