"""`authn:` section: the webhook's authenticator chain and result cache."""

from __future__ import annotations

import datetime as dt

from authsvc.settings.types import Duration, Section


class AuthnSettings(Section):
    # Backends walked in this order; names from authsvc.authn.REGISTRY.
    chain: tuple[str, ...] = ("tokenfile", "bootstrap", "authsvc")
    cache_ttl: Duration = dt.timedelta(seconds=30)
    negative_cache_ttl: Duration = dt.timedelta(seconds=5)
    cache_size: int = 10_000
