"""List + watch CertificateSigningRequests the way client-go's reflector does, without polling.

`run_while(leading)`: list every request (each goes to the handler: what was approved while
nobody watched is signed now), then watch from the list's resourceVersion. A watch ends after
`timeout_seconds` (the API server closes it) and starts again from the last resourceVersion
seen (bookmarks keep it fresh on a quiet cluster). When the API server answers 410 Gone (that
version is older than what it keeps) or the connection fails (the API server restarting, a
network error), the watcher lists again, after a backoff for errors: the list is the resync
that makes up for whatever happened while the watch was down. It returns as soon as
`leading()` is false or `interrupt()` was called (from the elector's thread, when the lease is
lost: that closes the watch's socket, so the blocked read returns at once).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authsvc.cluster.errors import ClusterError

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient
    from authsvc.cluster.csr.handler import CsrHandler
    from authsvc.metrics.csr import SignerMetrics

log = logging.getLogger(__name__)
GONE = 410
# Backoff after a failed list or watch: doubles from the first to the last value.
BACKOFF = (0.5, 8.0)


class CsrWatcher:
    def __init__(
        self,
        client: ClusterClient,
        handler: CsrHandler,
        metrics: SignerMetrics,
        *,
        timeout_seconds: int,
        stop: threading.Event,
        watch_factory: Callable[[], Any] | None = None,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        self.client = client
        self.handler = handler
        self.metrics = metrics
        self.timeout_seconds = timeout_seconds
        self.stop = stop
        self._watch_factory = watch_factory
        self._lock = threading.Lock()
        self._watch: Any = None
        self._interrupted = threading.Event()
        self._backoff_bounds = backoff
        self._backoff = backoff[0]

    def interrupt(self) -> None:
        """Make `run_while` return now (thread-safe): the lease was lost, or the process stops."""
        self._interrupted.set()
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.stop()

    def _go_on(self, leading: Callable[[], bool]) -> bool:
        return leading() and not self.stop.is_set() and not self._interrupted.is_set()

    def run_while(self, leading: Callable[[], bool]) -> None:
        self._interrupted.clear()
        version: str | None = None
        while self._go_on(leading):
            try:
                if version is None:
                    version = self.resync()
                version = self.watch_from(version, leading)
            except ClusterError as e:
                if not self._go_on(leading):
                    break
                if e.status == GONE:
                    self.metrics.watch_restarts.labels("gone").inc()
                    log.info("watch of CertificateSigningRequests: %s; listing again", e)
                    version = None
                    continue
                self.metrics.watch_restarts.labels("error").inc()
                log.warning("watch of CertificateSigningRequests: %s; listing again in %.1fs", e, self._backoff)
                version = None
                self._interrupted.wait(self._backoff)
                self._backoff = min(self._backoff * 2, self._backoff_bounds[1])

    def resync(self) -> str:
        """List every request, hand each to the handler; the list's resourceVersion."""
        certificates = self.client.certificates
        listed = self.client.call("list CertificateSigningRequests", certificates.list_certificate_signing_request)
        items = listed.items or []
        self.handler.retain(item.metadata.uid for item in items)
        for item in items:
            if not self._go_on(lambda: True):
                break
            self.handler.handle(item)
        self._backoff = self._backoff_bounds[0]
        return str(listed.metadata.resource_version)

    def watch_from(self, version: str, leading: Callable[[], bool]) -> str:
        """Watch from `version` until the API server ends the watch; the last resourceVersion seen."""
        watch = self._new_watch()
        with self._lock:
            self._watch = watch
        try:
            events = self.client.stream(
                "watch CertificateSigningRequests",
                watch,
                self.client.certificates.list_certificate_signing_request,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=self.timeout_seconds,
                # The API server ends the watch after timeout_seconds; a connection that stays
                # silent well past that is dead (a half-open TCP connection after a network cut).
                _request_timeout=(self.client.source.request_timeout, self.timeout_seconds + 30),
            )
            for event in events:
                kind, obj = event["type"], event["object"]
                if kind == "DELETED":
                    self.handler.forget(obj.metadata.uid)
                elif kind in ("ADDED", "MODIFIED") and self._go_on(leading):
                    self.handler.handle(obj)
                version = str(watch.resource_version or version)
                self._backoff = self._backoff_bounds[0]
                if not self._go_on(leading):
                    break
        finally:
            with self._lock:
                self._watch = None
        self.metrics.watch_restarts.labels("timeout").inc()
        return version

    def _new_watch(self) -> Any:
        if self._watch_factory is not None:
            return self._watch_factory()
        from kubernetes import watch

        return watch.Watch()  # type: ignore[no-untyped-call]
