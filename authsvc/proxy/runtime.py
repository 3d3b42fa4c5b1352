"""What one `authsvc proxy` process runs on: built once from a home, in dependency order.

The authenticator chain, metrics and audit log are the webhook's (`build_runtime`: the same
backends, refreshers and directory); the proxy adds its thread pool (blocking chain calls never
run on the event loop), its credential caches, the upstream and the revocation check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from authsvc.proxy.credentials import ProxyAuthenticator
from authsvc.proxy.metrics import ProxyMetrics
from authsvc.proxy.revocation import DenylistCheck, RevocationCheck
from authsvc.proxy.upstream import Upstream, build_upstream
from authsvc.runtime import Runtime
from authsvc.webhook.result_cache import ResultCache

T = TypeVar("T")


def pool_runner(pool: concurrent.futures.Executor) -> Callable[..., Awaitable[Any]]:
    """`await run(function, *args)`: the call on `pool`, so the event loop never waits on it."""

    async def run(function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, functools.partial(function, *args))

    return run


@dataclass(frozen=True, slots=True)
class ProxyComponents:
    runtime: Runtime
    upstream: Upstream
    authenticator: ProxyAuthenticator
    metrics: ProxyMetrics
    pool: concurrent.futures.ThreadPoolExecutor
    # THE revocation hook: called for every authenticated request (on the pool when it may
    # block). The default is
    # the access lifecycle's revocation set, the webhook's (authsvc/proxy/revocation.py).
    revocation: RevocationCheck

    @property
    def run_blocking(self) -> Callable[..., Awaitable[Any]]:
        return self.authenticator.run_blocking

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.runtime.close()


def build_proxy(
    runtime: Runtime,
    *,
    upstream: Upstream | None = None,
    mode: str | None = None,
    token_file: Path | None = None,
    revocation: RevocationCheck | None = None,
) -> ProxyComponents:
    """The proxy of `runtime`'s home: `upstream` as given or built with `mode` and `token_file`
    (overriding the settings); `revocation` replaces the default check. Raises ConfigError /
    HomeError for settings or files that cannot work."""
    home = runtime.home
    settings = home.settings
    upstream = upstream or build_upstream(home, mode=mode, token_file=token_file)
    pool = concurrent.futures.ThreadPoolExecutor(settings.proxy.threads, thread_name_prefix="proxy-authn")
    metrics = ProxyMetrics()
    runtime.metrics.registry.register(metrics)
    authn, tokens = settings.authn, settings.tokens
    authenticator = ProxyAuthenticator(
        runtime.chain,
        ResultCache(authn.cache_ttl.total_seconds(), authn.negative_cache_ttl.total_seconds(), authn.cache_size),
        home.clock,
        pool_runner(pool),
        api_audiences=tokens.api_audiences or (tokens.issuer,),
    )
    if revocation is None:
        revocation = DenylistCheck(runtime.denylist)
    return ProxyComponents(runtime, upstream, authenticator, metrics, pool, revocation)
