"""`authsvc csr-signer` as one process: the elector's thread keeps the lease, the main thread
lists and watches while this replica leads.

A process of its own rather than a part of `authsvc serve`: it holds its own Lease and a watch,
and neither survives granian's fork into workers (threads and open connections do not cross a
fork); and it needs permissions the webhook pods must not have (update CSR status, `sign` on
signerNames, the CA key), so in a cluster it runs under its own service account.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsvc.audit.log import AuditLog
from authsvc.cluster.csr.handler import CsrHandler
from authsvc.cluster.csr.signers import ConfiguredSigner, configured_signers
from authsvc.cluster.csr.watcher import CsrWatcher
from authsvc.cluster.leader import LeaderElector, LeaseConfig, default_identity
from authsvc.metrics.csr import SignerMetrics

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient
    from authsvc.home.opened import Home

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignerProcess:
    """Everything one `authsvc csr-signer` process runs."""

    elector: LeaderElector
    handler: CsrHandler
    watcher: CsrWatcher
    metrics: SignerMetrics
    audit: AuditLog
    signers: dict[str, ConfiguredSigner]
    stop: threading.Event
    # Set whenever the main thread should look again: leadership changed, or stop.
    wake: threading.Event

    def run(self) -> None:
        """Until `stop` is set (SIGTERM): lead when elected, sign while leading; give the lease up at the end."""
        wake = self.wake

        def on_change(leading: bool) -> None:
            self.metrics.leader.set(1 if leading else 0)
            if leading:
                log.info("%s: %s leads: signing", self.elector.where, self.elector.identity)
            else:
                log.info("%s: %s does not lead: signing stopped", self.elector.where, self.elector.identity)
                self.watcher.interrupt()
            wake.set()

        elector = threading.Thread(target=self.elector.run, args=(self.stop, on_change), name="lease", daemon=True)
        elector.start()
        try:
            while not self.stop.is_set():
                wake.wait()
                wake.clear()
                if self.elector.is_leader() and not self.stop.is_set():
                    self.watcher.run_while(self.elector.is_leader)
        finally:
            self.stop.set()
            self.watcher.interrupt()
            wake.set()
            elector.join(timeout=self.elector.config.renew_deadline)
            self.audit.flush()

    def shutdown(self) -> None:
        """Thread-safe (a signal handler): stop signing now, release the lease, return from run()."""
        self.stop.set()
        self.watcher.interrupt()
        self.wake.set()


def build_signer_process(home: Home, client: ClusterClient, *, identity: str | None = None) -> SignerProcess:
    """Raises ConfigError when nothing is to be signed, HomeError/PKIError when a CA cannot be loaded."""
    from authsvc.errors import ConfigError

    settings = home.settings
    section = settings.csr_signer
    signers = configured_signers(settings, home.stores.issuer)
    if not signers:
        raise ConfigError("csr_signer: every signer is disabled, so there is nothing to sign")
    lease = section.lease
    config = LeaseConfig(
        name=lease.name,
        namespace=lease.namespace,
        identity=identity or section.identity or default_identity(),
        duration=lease.duration.total_seconds(),
        renew_deadline=lease.renew_deadline.total_seconds(),
        retry_period=lease.retry_period.total_seconds(),
    )
    elector = LeaderElector(client, config, home.clock)
    metrics = SignerMetrics()
    audit = AuditLog.open(settings.audit, home.root)
    stop = threading.Event()
    handler = CsrHandler(
        client,
        signers,
        may_act=elector.is_leader,
        clock=home.clock,
        metrics=metrics,
        audit=audit,
        identity=config.identity,
    )
    timeout = int(section.watch_timeout.total_seconds())
    watcher = CsrWatcher(client, handler, metrics, timeout_seconds=timeout, stop=stop)
    return SignerProcess(elector, handler, watcher, metrics, audit, signers, stop, threading.Event())
