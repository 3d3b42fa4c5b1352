"""Leader election on a Lease, with stepped clocks: no sleeps, and every interleaving is chosen.

The API server is the in-memory fake (tests/cluster/fakes.py: resourceVersions, 404/409 as
kube-apiserver answers them); tests/e2e/test_csr_signer.py runs two real signer processes on a
real Lease and kills the leader.
"""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from kubernetes.client.exceptions import ApiException

from authsvc.cluster.leader import LeaderElector, LeaseConfig, micro_time
from pki.clock import FixedClock
from tests.cluster.fakes import FakeLeases, fake_client

DURATION, DEADLINE, RETRY = 15.0, 10.0, 2.0
START = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


class Monotonic:
    """A replica's monotonic clock, stepped by the test."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Replica:
    def __init__(self, name: str, leases: FakeLeases, wall: FixedClock) -> None:
        self.monotonic = Monotonic()
        config = LeaseConfig("authsvc-csr-signer", "kube-system", name, DURATION, DEADLINE, RETRY)
        self.elector = LeaderElector(fake_client(leases=leases), config, wall, monotonic=self.monotonic)

    def step(self) -> bool:
        return self.elector.try_acquire_or_renew()

    def leads(self) -> bool:
        return self.elector.is_leader()


@pytest.fixture
def leases() -> FakeLeases:
    return FakeLeases()


@pytest.fixture
def wall() -> FixedClock:
    return FixedClock(START)


def advance(wall: FixedClock, seconds: float, *replicas: Replica) -> None:
    wall.advance(dt.timedelta(seconds=seconds))
    for replica in replicas:
        replica.monotonic.advance(seconds)


def test_the_first_replica_creates_the_lease_and_leads(leases: FakeLeases, wall: FixedClock) -> None:
    a = Replica("a", leases, wall)
    assert not a.leads()
    assert a.step() and a.leads()
    spec = leases.spec()
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15 and spec["leaseTransitions"] == 0
    # MicroTime: six fractional digits even for a whole second (the API server refuses fewer).
    assert spec["acquireTime"] == spec["renewTime"] == "2030-01-01T00:00:00.000000Z"


def test_renewing_keeps_acquire_time_and_transitions(leases: FakeLeases, wall: FixedClock) -> None:
    a = Replica("a", leases, wall)
    a.step()
    advance(wall, 2, a)
    assert a.step()
    spec = leases.spec()
    assert spec["acquireTime"] == "2030-01-01T00:00:00.000000Z"
    assert spec["renewTime"] == "2030-01-01T00:00:02.000000Z"
    assert spec["leaseTransitions"] == 0


def test_a_follower_takes_over_only_after_the_lease_duration_of_silence(leases: FakeLeases, wall: FixedClock) -> None:
    a, b = Replica("a", leases, wall), Replica("b", leases, wall)
    a.step()
    assert not b.step() and not b.leads()
    assert b.elector.holder() == "a"
    # a dies: nothing renews. b counts from when it saw the record, on its own clock.
    advance(wall, DURATION - 0.5, a, b)
    assert not b.step()
    advance(wall, 1.0, a, b)
    assert b.step() and b.leads()
    spec = leases.spec()
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == micro_time(wall())
    # The old leader's own view ran out long before (renew_deadline < duration): it is no leader.
    assert not a.leads()
    assert not a.step()


def test_a_live_leader_is_never_taken_over(leases: FakeLeases, wall: FixedClock) -> None:
    a, b = Replica("a", leases, wall), Replica("b", leases, wall)
    a.step()
    for _ in range(30):
        advance(wall, RETRY, a, b)
        assert a.step()
        assert not b.step()
    assert leases.spec()["holderIdentity"] == "a"


def test_a_lost_lease_stops_the_leader_at_once_when_the_deadline_passes(leases: FakeLeases, wall: FixedClock) -> None:
    a = Replica("a", leases, wall)
    a.step()
    leases.fail = ApiException(status=503, reason="Service Unavailable")
    advance(wall, DEADLINE - 0.01, a)
    assert not a.step()
    assert a.leads()  # renewed 9.99 s ago: still inside renew_deadline
    advance(wall, 0.02, a)
    assert not a.leads()  # no call needed: computed from the last renewal


def test_the_holder_takes_its_lease_back_after_an_outage(leases: FakeLeases, wall: FixedClock) -> None:
    a = Replica("a", leases, wall)
    a.step()
    leases.fail = ApiException(status=0, reason="connection refused")
    advance(wall, DEADLINE + 1, a)
    assert not a.step() and not a.leads()
    leases.fail = None
    assert a.step() and a.leads()
    assert leases.spec()["leaseTransitions"] == 0  # still its own


def test_of_two_replicas_racing_for_an_expired_lease_one_wins(leases: FakeLeases, wall: FixedClock) -> None:
    a, b, c = Replica("a", leases, wall), Replica("b", leases, wall), Replica("c", leases, wall)
    a.step()
    b.step(), c.step()  # both see a's record
    advance(wall, DURATION + 1, b, c)
    leases.barrier = threading.Barrier(2)  # both read the same resourceVersion, then both write
    results: dict[str, bool] = {}
    threads = [threading.Thread(target=lambda r=r: results.__setitem__(r.elector.identity, r.step())) for r in (b, c)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results.values()) == [False, True]
    winner = "b" if results["b"] else "c"
    assert leases.spec()["holderIdentity"] == winner
    assert [r.leads() for r in (b, c)].count(True) == 1


def test_a_released_lease_is_taken_at_once(leases: FakeLeases, wall: FixedClock) -> None:
    a, b = Replica("a", leases, wall), Replica("b", leases, wall)
    a.step()
    b.step()
    a.elector.release()
    assert not a.leads()
    assert leases.spec()["holderIdentity"] == "" and leases.spec()["leaseDurationSeconds"] == 1
    assert b.step() and b.leads()  # no lease duration to wait out


def test_release_by_a_follower_changes_nothing(leases: FakeLeases, wall: FixedClock) -> None:
    a, b = Replica("a", leases, wall), Replica("b", leases, wall)
    a.step()
    b.step()
    b.elector.release()
    assert leases.spec()["holderIdentity"] == "a"


@pytest.mark.parametrize("seed", range(20))
def test_two_replicas_never_lead_at_once(leases: FakeLeases, wall: FixedClock, seed: int) -> None:
    """Random outages, stalls and retry jitter; at every instant at most one replica may sign."""
    rng = random.Random(seed)
    replicas = [Replica("a", leases, wall), Replica("b", leases, wall)]
    stalled = {r.elector.identity: 0.0 for r in replicas}  # a replica frozen (GC pause, CPU starved)
    leaders = []
    for _ in range(400):
        advance(wall, rng.uniform(0.1, RETRY), *replicas)
        leases.fail = ApiException(status=503, reason="down") if rng.random() < 0.15 else None
        for replica in rng.sample(replicas, 2):
            name = replica.elector.identity
            if stalled[name] > 0:
                stalled[name] -= 1
                continue
            if rng.random() < 0.03:
                stalled[name] = rng.randint(1, 15)
            replica.step()
            assert [r.leads() for r in replicas].count(True) <= 1
        leaders.append(tuple(r.elector.identity for r in replicas if r.leads()))
    leases.fail = None
    # Safety is the assertion above; liveness: most of the time somebody leads.
    assert sum(1 for group in leaders if group) > len(leaders) / 2


def test_run_reports_each_transition_and_releases_at_stop(leases: FakeLeases, wall: FixedClock) -> None:
    """The loop itself, on the real clock with a tiny retry period (no fixed sleeps: the events are waited for)."""
    config = LeaseConfig("authsvc-csr-signer", "kube-system", "a", 0.6, 0.4, 0.05)
    elector = LeaderElector(fake_client(leases=leases), config, wall)
    changes: list[bool] = []
    led = threading.Event()
    stop = threading.Event()

    def on_change(leading: bool) -> None:
        changes.append(leading)
        if leading:
            led.set()

    thread = threading.Thread(target=elector.run, args=(stop, on_change))
    thread.start()
    assert led.wait(timeout=10)
    stop.set()
    thread.join(timeout=10)
    assert changes == [True, False]
    assert leases.spec()["holderIdentity"] == ""
