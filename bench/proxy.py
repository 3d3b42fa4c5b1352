"""`authsvc proxy` against the same kube-apiserver reached directly, in one run, interleaved.

- `kubectl get`-shaped requests (GET a namespace's ConfigMaps, `limit=500`, kubectl's Table
  Accept header) per second, p50 and p99, over keep-alive HTTPS, N client processes:
  direct to kube-apiserver with a client certificate; through the proxy with the same client
  certificate; through the proxy with a static bearer token (cached by the proxy);
- memory of the proxy process (RSS, sampled every 20 ms) while a ~100 MiB list (100 ConfigMaps
  of ~1 MiB) streams through it to a client.

The control plane is the e2e suite's (tests/e2e/cluster.py: etcd + kube-apiserver 1.20 with the
request-header flags, `authsvc serve`), the proxy a real `authsvc proxy` process with the
result cache on and the audit log batched (the defaults). The load generator is Python and
shares the 2 cores with etcd, kube-apiserver and the proxy: read the ratios, not the absolutes.

    KUBE_APISERVER=$(scripts/kube-apiserver.sh) .venv/bin/python bench/proxy.py \
        [--duration 4] [--rounds 3] [--concurrency 4] [--baseline CHECKOUT]

`--baseline` starts a second `authsvc proxy` on the same home from another checkout (its
PYTHONPATH; e.g. `git archive <commit> | tar -x -C /tmp/base`) and measures it in the same
rounds, after this checkout's: before and after side by side.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import multiprocessing
import os
import ssl
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.components.kube_apiserver import free_ports, kube_apiserver_binary
from tests.components.support import require_binary
from tests.e2e.cluster import STATIC_TOKEN, E2ECluster, start_cluster
from tests.e2e.harness import AuthsvcProxy

NAMESPACE = "bench"
BIG_NAMESPACE = "bench-big"
# What kubectl 1.2x sends for `kubectl get configmaps`.
ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)
PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps?limit=500"


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    cert: tuple[str, str] | None
    token: str | None


@dataclass(frozen=True)
class Result:
    name: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def load_worker(job: tuple[Target, str, float, float, float]) -> tuple[list[float], int]:
    target, ca, start_at, warmup, duration = job
    context = ssl.create_default_context(cafile=ca)
    if target.cert:
        context.load_cert_chain(*target.cert)
    headers = {"Accept": ACCEPT, "User-Agent": "kubectl/bench"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    connection = http.client.HTTPSConnection("127.0.0.1", target.port, context=context)
    while time.time() < start_at:
        time.sleep(0.005)
    latencies: list[float] = []
    errors = 0
    measure_from, stop_at = time.perf_counter() + warmup, time.perf_counter() + warmup + duration
    while True:
        started = time.perf_counter()
        connection.request("GET", PATH, headers=headers)
        response = connection.getresponse()
        response.read()
        ended = time.perf_counter()
        if started >= measure_from:
            latencies.append(ended - started)
            errors += response.status != 200
        if ended >= stop_at:
            break
    connection.close()
    return latencies, errors


def measure(target: Target, ca: str, concurrency: int, duration: float) -> Result:
    jobs = [(target, ca, time.time() + 1.0, 0.5, duration)] * concurrency
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        outcomes = pool.map(load_worker, jobs)
    latencies = sorted(x for lat, _ in outcomes for x in lat)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    errors = sum(e for _, e in outcomes)
    return Result(target.name, len(latencies) / duration, statistics.median(latencies) * 1e3, p99 * 1e3, errors)


def admin_session_files(cluster: E2ECluster) -> tuple[str, str]:
    user = yaml.safe_load(cluster.super_admin_kubeconfig.read_text())["users"][0]["user"]
    cert, key = cluster.path("bench-admin.crt"), cluster.path("bench-admin.key")
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.touch(mode=0o600)
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    return str(cert), str(key)


def create_configmaps(cluster: E2ECluster, namespace: str, count: int, value_size: int) -> None:
    admin = admin_session_files(cluster)
    url = f"{cluster.server}/api/v1/namespaces/{namespace}/configmaps"
    value = "x" * value_size
    session = requests.Session()

    def create(n: int) -> int:
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{n:04d}"}, "data": {"v": value}}
        return session.post(url, json=body, cert=admin, verify=str(cluster.ca_file), timeout=60).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = set(pool.map(create, range(count)))
    assert codes == {201}, codes


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stream_memory(cluster: E2ECluster, proxy: AuthsvcProxy, cert: tuple[str, str]) -> tuple[int, int, int, int]:
    """(bytes received, RSS before, peak RSS during, RSS after) of the proxy, in bytes and KiB."""
    pid = proxy.child.pid
    assert pid is not None, "the proxy is not running"
    before = rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    received = 0
    try:
        url = f"{proxy.url}/api/v1/namespaces/{BIG_NAMESPACE}/configmaps"
        headers = {"Accept-Encoding": "identity"}  # else the API server gzips ~100 MiB of "x" to ~100 KiB
        with requests.get(
            url, cert=cert, headers=headers, verify=str(cluster.ca_file), stream=True, timeout=300
        ) as answer:
            assert answer.status_code == 200, answer.status_code
            for chunk in answer.raw.stream(1024 * 1024, decode_content=False):
                received += len(chunk)
    finally:
        done.set()
        sampler.join()
    return received, before, peak[0], rss_kib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--baseline", type=Path, help="a checkout of another version: its proxy measured too")
    parser.add_argument("--big-objects", type=int, default=100, help="ConfigMaps of ~1 MiB in the streamed list")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-proxy-"))
    cluster = start_cluster(
        workdir, require_binary("/usr/bin/kubectl"), kube_apiserver_binary(), require_binary("etcd")
    )
    proxy = baseline = None
    try:
        settings = yaml.safe_load(cluster.config_file.read_text())
        settings["authn"]["cache_size"] = 10000  # the default: the e2e fixture turns it off
        settings["audit"]["flush_ms"] = 200  # the default: batched
        cluster.config_file.write_text(yaml.safe_dump(settings))
        cluster.admin("create", "namespace", NAMESPACE)
        cluster.admin("create", "namespace", BIG_NAMESPACE)
        create_configmaps(cluster, NAMESPACE, 10, 64)
        cluster.authsvc.ok("certs", "create", "bench", "-g", "bench-readers", "--out-dir", str(workdir))
        cluster.admin("create", "clusterrole", "bench-reader", "--verb=get,list", "--resource=configmaps")
        cluster.admin("create", "clusterrolebinding", "bench", "--clusterrole=bench-reader", "--group=bench-readers")
        cluster.admin("create", "clusterrolebinding", "bench-static", "--clusterrole=bench-reader", "--user=static-sam")
        cert = (str(workdir / "bench.crt"), str(workdir / "bench.key"))
        port, metrics_port = free_ports(2)
        proxy = AuthsvcProxy(cluster.authsvc, port, metrics_port, workdir / "proxy.log")
        proxy.start()
        apiserver_port = int(cluster.server.rsplit(":", 1)[1])
        targets = [
            Target("direct, client certificate", apiserver_port, cert, None),
            Target("proxy, client certificate", port, cert, None),
            Target("proxy, static token (cached)", port, None, STATIC_TOKEN),
        ]
        if args.baseline:
            cli = dataclasses.replace(
                cluster.authsvc, env={**cluster.authsvc.env, "PYTHONPATH": str(args.baseline.resolve())}
            )
            base_port, base_metrics_port = free_ports(2)
            baseline = AuthsvcProxy(cli, base_port, base_metrics_port, workdir / "baseline-proxy.log")
            baseline.start()
            targets += [
                Target("baseline, client certificate", base_port, cert, None),
                Target("baseline, static token (cached)", base_port, None, STATIC_TOKEN),
            ]
        ca = str(cluster.ca_file)
        for target in targets:  # warm caches, connections and RBAC
            measure(target, ca, 1, 0.5)
        results: dict[str, list[Result]] = {t.name: [] for t in targets}
        for _ in range(args.rounds):
            for target in targets:
                results[target.name].append(measure(target, ca, args.concurrency, args.duration))
        report(results, args)
        create_configmaps(cluster, BIG_NAMESPACE, args.big_objects, 1_000_000)
        received, before, peak, after = stream_memory(cluster, proxy, cert)
        print(
            f"\n{received / 2**20:.1f} MiB list streamed through the proxy: RSS {before / 1024:.1f} MiB before, "
            f"peak {peak / 1024:.1f} MiB (+{(peak - before) / 1024:.1f} MiB), {after / 1024:.1f} MiB after"
        )
    finally:
        for started in (proxy, baseline):
            if started is not None:
                started.stop()
        cluster.stop()


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> None:
    print(
        f"kubectl-get-shaped GET {PATH}; median of {args.rounds} interleaved rounds of {args.duration:.0f}s, "
        f"{args.concurrency} keep-alive connections; {os.cpu_count()} CPUs"
    )
    print(f"{'variant':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    medians = {}
    for name, runs in results.items():
        rate = statistics.median(r.rate for r in runs)
        p50 = statistics.median(r.p50_ms for r in runs)
        p99 = statistics.median(r.p99_ms for r in runs)
        medians[name] = (rate, p50)
        print(f"{name:34} {rate:8.0f} {p50:8.2f} {p99:8.2f} {sum(r.errors for r in runs):7d}")
    direct_rate, direct_p50 = medians["direct, client certificate"]
    for name, (rate, p50) in medians.items():
        if not name.startswith("direct"):
            ratio, added = rate / direct_rate, p50 - direct_p50
            ok = "ok" if ratio >= 0.5 and added <= 2.0 else "MISSED"
            print(f"  {name}: {ratio:.2f}x direct throughput (target >= 0.5), +{added:.2f} ms p50 (target <= 2) {ok}")


if __name__ == "__main__":
    main()
