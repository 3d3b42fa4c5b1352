"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

The Lease's spec is the record: `holderIdentity`, `leaseDurationSeconds`, `acquireTime`,
`renewTime`, `leaseTransitions`. Every `retry_period` each replica reads it and

- creates it, holding it, when there is none;
- takes it (acquireTime now, leaseTransitions + 1) when it is held by nobody, or when the
  record has not changed for `leaseDurationSeconds` since this replica last *saw* it change:
  time is measured on this replica's monotonic clock from its own observation, never by
  comparing another machine's renewTime with ours (clock skew between replicas does not
  matter; only their clocks' rates do, as client-go documents);
- renews it (renewTime now) when it holds it.

Every write carries the resourceVersion read, so of two replicas racing for an expired lease
one gets a 409 and stays a follower. A leader that has not renewed for `renew_deadline`
(shorter than the lease duration) is no longer one, at once, whether or not it could tell the
API server: `is_leader()` is computed from its last successful renewal on every call, and the
caller checks it before every write it makes as the leader. The times written (renewTime,
acquireTime) come from the injected clock; what decides expiry is the monotonic clock (also
injectable, so tests step both and never sleep).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authsvc.cluster.errors import ClusterError, ClusterNotFound

if TYPE_CHECKING:
    from authsvc.cluster.connection import ClusterClient
    from pki.clock import Clock

log = logging.getLogger(__name__)


def default_identity() -> str:
    """<hostname>_<random>, client-go's convention (a pod's hostname is its name)."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    duration: float
    renew_deadline: float
    retry_period: float

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.duration:
            raise ValueError("lease: need 0 < retry_period < renew_deadline < duration")


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The Lease's spec as leader election reads it (and its resourceVersion, for the next write)."""

    holder: str
    duration_seconds: int
    acquire_time: dt.datetime | None
    renew_time: dt.datetime | None
    transitions: int
    resource_version: str | None = None

    @classmethod
    def of(cls, lease: Any) -> LeaseRecord:
        spec = lease.spec
        return cls(
            holder=(spec.holder_identity if spec is not None else None) or "",
            duration_seconds=(spec.lease_duration_seconds if spec is not None else None) or 0,
            acquire_time=spec.acquire_time if spec is not None else None,
            renew_time=spec.renew_time if spec is not None else None,
            transitions=(spec.lease_transitions if spec is not None else None) or 0,
            resource_version=lease.metadata.resource_version,
        )

    def same_record(self, other: LeaseRecord | None) -> bool:
        """The spec unchanged (a renewal changes renewTime, so a live leader's record always differs)."""
        return other is not None and (
            self.holder,
            self.duration_seconds,
            self.acquire_time,
            self.renew_time,
            self.transitions,
        ) == (other.holder, other.duration_seconds, other.acquire_time, other.renew_time, other.transitions)


def micro_time(when: dt.datetime) -> str:
    """metav1.MicroTime's JSON form: RFC 3339 with exactly six fractional digits, in UTC. (The
    client's models write datetimes with isoformat, which drops a zero fraction: the API server
    refuses that for a MicroTime field.)"""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One replica's view of the election; `run` keeps it going in a thread of its own."""

    def __init__(
        self,
        client: ClusterClient,
        config: LeaseConfig,
        clock: Clock,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        # Monotonic time at which the last successful acquire/renew was *sent*: leadership is
        # counted from before the write, so this replica stops before any other could start.
        self._renewed_at: float | None = None

    @property
    def identity(self) -> str:
        return self.config.identity

    @property
    def where(self) -> str:
        return f"Lease {self.config.namespace}/{self.config.name}"

    def is_leader(self) -> bool:
        with self._lock:
            renewed = self._renewed_at
        return renewed is not None and self.monotonic() - renewed < self.config.renew_deadline

    def holder(self) -> str:
        """The holder in the record last read ("" when none)."""
        with self._lock:
            return self._observed.holder if self._observed is not None else ""

    def try_acquire_or_renew(self) -> bool:
        """One round of the election; True when this replica holds the lease after it."""
        started = self.monotonic()
        try:
            current = self._read()
            if current is None:
                self._write(None, self._record(None))
            else:
                self._observe(current, started)
                if self._held_by_another(current, started):
                    return False
                self._write(current, self._record(current))
        except ClusterError as e:
            # Not fatal: a 409 lost a race, an outage ends; is_leader() runs out by itself.
            log.info("%s: %s", self.where, e)
            return False
        with self._lock:
            self._renewed_at = started
        return True

    def release(self) -> None:
        """Give the lease up at a clean stop, so that another replica takes over at once (client-go's
        ReleaseOnCancel): no holder, a one-second duration."""
        if not self.is_leader():
            return
        with self._lock:
            self._renewed_at = None
        try:
            current = self._read()
            if current is not None and current.holder == self.identity:
                now = self.clock()
                self._write(current, LeaseRecord("", 1, now, now, current.transitions))
        except ClusterError as e:
            log.warning("%s: could not release it: %s", self.where, e)

    def run(self, stop: threading.Event, on_change: Callable[[bool], None]) -> None:
        """Acquire and renew every retry_period until `stop`; `on_change(leading)` on each transition."""
        leading = False
        while not stop.is_set():
            self.try_acquire_or_renew()
            now_leading = self.is_leader()
            if now_leading != leading:
                leading = now_leading
                on_change(leading)
            stop.wait(self._next_wait(leading))
        if leading:
            self.release()
            on_change(False)

    def _next_wait(self, leading: bool) -> float:
        """retry_period, but wake up when something is due in between: a leader when its renew
        deadline passes (to report it), a follower when the lease it watches expires (to take it
        over then, not up to a retry_period later)."""
        with self._lock:
            if leading:
                due = (self._renewed_at or 0.0) + self.config.renew_deadline
            elif self._observed is not None and self._observed.holder not in ("", self.identity):
                due = self._observed_at + self._observed.duration_seconds + 0.01
            else:
                return self.config.retry_period
        return max(0.0, min(self.config.retry_period, due - self.monotonic()))

    def _observe(self, current: LeaseRecord, now: float) -> None:
        with self._lock:
            if not current.same_record(self._observed):
                self._observed_at = now
            self._observed = current

    def _held_by_another(self, current: LeaseRecord, now: float) -> bool:
        if not current.holder or current.holder == self.identity:
            return False
        with self._lock:
            return self._observed_at + current.duration_seconds > now

    def _record(self, current: LeaseRecord | None) -> LeaseRecord:
        now = self.clock()
        duration = max(1, round(self.config.duration))
        if current is not None and current.holder == self.identity:
            return LeaseRecord(self.identity, duration, current.acquire_time or now, now, current.transitions)
        transitions = 0 if current is None else current.transitions + 1
        return LeaseRecord(self.identity, duration, now, now, transitions)

    def _timeout(self) -> float:
        # A renewal that hangs must not outlast the deadline it is meant to meet.
        return max(0.5, min(self.client.source.request_timeout, self.config.renew_deadline / 2))

    def _read(self) -> LeaseRecord | None:
        coordination = self.client.coordination
        try:
            lease = self.client.call(
                f"get {self.where}",
                coordination.read_namespaced_lease,
                self.config.name,
                self.config.namespace,
                _request_timeout=self._timeout(),
            )
        except ClusterNotFound:
            return None
        return LeaseRecord.of(lease)

    def _write(self, current: LeaseRecord | None, record: LeaseRecord) -> None:
        body = self._body(record, current.resource_version if current is not None else None)
        coordination = self.client.coordination
        if current is None:
            self.client.call(
                f"create {self.where}",
                coordination.create_namespaced_lease,
                self.config.namespace,
                body,
                _request_timeout=self._timeout(),
            )
        else:
            self.client.call(
                f"update {self.where}",
                coordination.replace_namespaced_lease,
                self.config.name,
                self.config.namespace,
                body,
                _request_timeout=self._timeout(),
            )
        with self._lock:
            self._observed = record
            self._observed_at = self.monotonic()

    def _body(self, record: LeaseRecord, resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.config.name, "namespace": self.config.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        spec: dict[str, Any] = {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "leaseTransitions": record.transitions,
        }
        if record.acquire_time is not None:
            spec["acquireTime"] = micro_time(record.acquire_time)
        if record.renew_time is not None:
            spec["renewTime"] = micro_time(record.renew_time)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}
