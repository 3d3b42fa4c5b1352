"""The webhook's result cache under threads (issue 14, item 4).

With `server.threads > 1` a granian worker runs several reviews at once, all on one
`ResultCache`. When it was full, `put()` evicted the oldest entry under the lock while `get()`
dropped an expired entry without it: the entry `put()` had just picked could be gone by the
time it deleted it, a KeyError, answered as HTTP 500 (which kube-apiserver retries). Anyone
can fill the cache: the API server forwards every token it cannot verify itself.

Two tests: many threads on one full cache with entries expiring under them (in-process, with
Python switching threads as often as it can), and a sustained run against the real `authsvc
serve` with several threads, a small cache and many distinct tokens: no error at all.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from authsvc.webhook.result_cache import ResultCache
from tests.components.support import free_port
from tests.hostile.apiserver_load import Probe, Verdict, apiserver_context, hammer, wrong
from tests.serve.support import authsvc_serve

THREADS = 8
ROUNDS = 3_000
CACHE_SIZE = 16
STATIC = {f"race-static-{name}-0123456789abcdef": name for name in ("sam", "sue")}


class YieldingKey(bytes):
    """A token digest whose hashing lets the other threads run (`sleep(0)` releases the GIL):
    every dict operation on it becomes a point where a thread may be preempted, so a window of
    a few bytecodes between two threads is hit every run, not once a day. The cache must be
    right under any interleaving; this one makes the bad ones happen."""

    def __hash__(self) -> int:
        time.sleep(0)
        return bytes.__hash__(self)


def test_threads_on_a_full_cache_with_expiring_entries() -> None:
    cache: ResultCache[int] = ResultCache(ttl=2.0, negative_ttl=1.0, max_size=CACHE_SIZE)
    keys = [YieldingKey(i.to_bytes(2, "big") * 16) for i in range(4 * CACHE_SIZE)]  # 32 bytes, like a SHA-256
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        try:
            for i in range(ROUNDS):
                key = rng.choice(keys)
                now = float(i % 8)  # each thread's clock cycles: what one stored, another finds expired
                if i % 2:
                    cache.put(key, i, now, positive=i % 4 == 1)
                else:
                    value = cache.get(key, now)
                    assert value is None or isinstance(value, int)
                assert len(cache) <= CACHE_SIZE
        except BaseException as e:  # any exception in a worker is the finding
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], f"{len(errors)} of {THREADS} threads failed, first: {errors[0]!r}"


def test_the_cache_still_answers_what_it_was_told() -> None:
    """The twin: the same cache, one thread, exact answers (a cache that never stored would pass above)."""
    cache: ResultCache[str] = ResultCache(ttl=2.0, negative_ttl=1.0, max_size=2)
    cache.put(b"a", "alice", 0.0, positive=True)
    cache.put(b"b", "denied", 0.0, positive=False)
    assert cache.get(b"a", 1.5) == "alice" and cache.get(b"b", 0.5) == "denied"
    assert cache.get(b"b", 1.0) is None  # expired at negative_ttl, and dropped
    assert len(cache) == 1
    cache.put(b"c", "carol", 1.0, positive=True)
    cache.put(b"d", "dave", 1.0, positive=True)  # full: the oldest write (a) goes
    assert cache.get(b"a", 1.0) is None and cache.get(b"c", 1.0) == "carol" and cache.get(b"d", 1.0) == "dave"
    cache.put(b"e", "eve", 1.0, positive=True, not_after=1.5)  # the token's exp caps an identity
    assert cache.get(b"e", 1.4) == "eve" and cache.get(b"e", 1.5) is None


@pytest.mark.parametrize("threads", [4])
def test_a_threaded_server_with_a_small_cache_answers_every_review(
    home_template: Path, tmp_path: Path, threads: int
) -> None:
    """`authsvc serve` (one worker, four threads), a cache of 16 entries, 1 s lifetimes, six
    connections for 15 s. Fourteen tokens come back all the time (cached, expiring every
    second: dropped and stored again), and a stream of tokens never seen before keeps the full
    cache evicting: both changes, from four threads at once. Every review answered 200, rightly."""
    home = tmp_path / "home"
    shutil.copytree(home_template, home)
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["authn"].update(
        chain=["tokenfile", "bootstrap", "authsvc"],
        tokenfile={"path": "tokens.csv"},
        cache_ttl="1s",
        negative_cache_ttl="1s",
        cache_size=CACHE_SIZE,
    )
    config["server"]["threads"] = threads
    config_file.write_text(yaml.safe_dump(config))
    (home / "tokens.csv").write_text("".join(f"{token},{name},uid-{name},dev\n" for token, name in STATIC.items()))
    hot = [Probe("static", token, name) for token, name in STATIC.items()]
    hot += [Probe("unknown", f"race-hot-{i:02d}-0123456789abcdef", None) for i in range(CACHE_SIZE - 2 - len(hot))]
    probes: list[Probe] = []
    for i in range(2000):
        probes.append(hot[i % len(hot)])
        if i % 4 == 0:  # one in five: a token the cache has never seen, so a full cache evicts
            probes.append(Probe("unknown", f"race-new-{i:05d}-0123456789abcdef", None))

    port = free_port()
    with authsvc_serve(home, tmp_path / "serve.log", webhook=port, public=None, workers=1):
        replies = hammer(port, apiserver_context(home), probes, clients=6, duration=15.0)
    log = (tmp_path / "serve.log").read_text()
    assert len(replies) > 1000, len(replies)  # a run that sent little proves little
    assert not wrong(replies), wrong(replies)[:10]
    assert {r.verdict for r in replies} == {Verdict.RIGHT, Verdict.DENIED}
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]
