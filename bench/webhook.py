"""TokenReview requests/s and p50/p99 latency over HTTPS with mTLS (keep-alive), in one run:

- authsvc (`authsvc serve`: granian WSGI, TLS + client certificates) with a cached static token
  and with an uncached JWT (a fresh ES256 token from an external issuer on every request);
- (a) a minimal Flask view parsing the same JSON, on the same granian settings and certificates;
- (b) a bare WSGI JSON endpoint on the same granian settings;
- (c) the minimal Flask view on gunicorn gthread (2 workers x 4 threads), same certificates;

at a fixed concurrency and on a single connection, with the ratios of the cached path.

The load generator is Python: wrk cannot present a client certificate (and the servers refuse
callers without one), so N processes each keep one TLS connection (client certificate, HTTP/1.1
keep-alive) and send pre-built requests back to back. It shares the 2 cores with the server, so
absolute figures are lower than wrk's; every variant pays the same client cost.

    .venv/bin/python bench/webhook.py [--duration 5] [--rounds 3] [--concurrency 8] [--workers 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pki.store import write_private_key

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
STATIC_TOKEN = "bench-static-token-0123456789abcdef"
ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "kubernetes"
FLASK = "(a) minimal Flask, granian"
BARE = "(b) bare WSGI, granian"
GUNICORN = "(c) minimal Flask, gunicorn gthread 2x4"
KINDS = {"static": "cached static token", "jwt": "uncached ES256 JWT"}


@dataclass(frozen=True)
class Files:
    home: Path
    ca: Path
    cert: Path
    key: Path
    client_ca: Path
    client_cert: Path
    client_key: Path
    issuer_key: Path


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int


def make_home(root: Path) -> Files:
    home = root / "home"
    subprocess.run([BIN / "authsvc", "--home", str(home), "init"], check=True, capture_output=True)
    (home / "tokens.csv").write_text(f"{STATIC_TOKEN},bench,uid-1,dev\n")
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    key_file = write_private_key(root / "issuer.key", issuer_key)
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(issuer_key.public_key()))
    (home / "issuer-jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "ES256"}]}))
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["authn"] = {
        "chain": ["tokenfile", "issuers"],
        "tokenfile": {"path": "tokens.csv"},
        "issuers": [{"url": ISSUER, "audiences": [AUDIENCE], "jwks_file": "issuer-jwks.json", "algorithms": ["ES256"]}],
    }
    config["audit"] = {"path": "audit.log"}
    config_file.write_text(yaml.safe_dump(config))
    pki = home / "pki"
    return Files(
        home,
        pki / "ca.crt",
        pki / "authsvc/serving.crt",
        pki / "authsvc/serving.key",
        pki / "authsvc/webhook-client-ca.crt",
        pki / "authsvc/apiserver-webhook-client.crt",
        pki / "authsvc/apiserver-webhook-client.key",
        key_file,
    )


def client_context(files: Files) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files.ca))
    context.load_cert_chain(str(files.client_cert), str(files.client_key))
    return context


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(command: Sequence[str | Path], port: int, files: Files, log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen([str(c) for c in command], stdout=out, stderr=out, start_new_session=True)
    try:
        wait_ready(port, files, process)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(port: int, files: Files, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            raw = socket.create_connection(("127.0.0.1", port), 1)
            with client_context(files).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if tls.recv(100):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} not ready")


def tokenreview_request(token: str) -> bytes:
    body = json.dumps(
        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    ).encode()
    head = (
        "POST /authenticate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def fresh_jwts(files: Files, count: int) -> list[str]:
    key = serialization.load_pem_private_key(files.issuer_key.read_bytes(), None)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "jwt-user", "groups": ["dev"], "iat": now, "exp": now + 3600}
    return [
        jwt.encode({**claims, "jti": uuid.uuid4().hex}, key, algorithm="ES256", headers={"kid": "bench"})  # type: ignore[arg-type]
        for _ in range(count)
    ]


def read_response(sock: ssl.SSLSocket, buffer: bytearray) -> int:
    """Read one HTTP/1.1 response off a keep-alive connection; return its status code."""
    while (end := buffer.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buffer += chunk
    head = bytes(buffer[:end]).decode("latin-1").lower()
    length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
    while len(buffer) < end + 4 + length:
        buffer += sock.recv(65536)
    del buffer[: end + 4 + length]
    return int(head.split(" ", 2)[1])


def load_worker(job: tuple[Files, int, str, float, float, float]) -> tuple[list[float], int]:
    files, port, kind, start_at, warmup, duration = job
    tokens = fresh_jwts(files, 4000) if kind == "jwt" else [STATIC_TOKEN]
    requests = [tokenreview_request(t) for t in tokens]
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = client_context(files).wrap_socket(raw, server_hostname="127.0.0.1")
    latencies: list[float] = []
    errors, i, buffer = 0, 0, bytearray()
    while time.time() < start_at:
        time.sleep(0.005)
    measure_from, stop_at = time.perf_counter() + warmup, time.perf_counter() + warmup + duration
    while True:
        started = time.perf_counter()
        sock.sendall(requests[i % len(requests)])
        status = read_response(sock, buffer)
        ended = time.perf_counter()
        i += 1
        if started >= measure_from:
            latencies.append(ended - started)
            errors += status != 200
        if ended >= stop_at:
            break
    sock.close()
    return latencies, errors


def measure(name: str, files: Files, port: int, kind: str, concurrency: int, duration: float) -> Result:
    start_at = time.time() + (4.0 if kind == "jwt" else 1.0)  # time to sign the JWTs first
    jobs = [(files, port, kind, start_at, 1.0, duration)] * concurrency
    with multiprocessing.get_context("fork").Pool(concurrency) as pool:
        outcomes = pool.map(load_worker, jobs)
    latencies = sorted(x for lat, _ in outcomes for x in lat)
    errors = sum(e for _, e in outcomes)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(name, concurrency, len(latencies) / duration, statistics.median(latencies) * 1e3, p99 * 1e3, errors)


def authsvc_command(port: int, files: Files, workers: int, threads: int) -> list[str | Path]:
    return [
        BIN / "authsvc", "--home", files.home, "serve", "--bind", f"127.0.0.1:{port}", "--public-bind=",
        "--workers", str(workers), "--threads", str(threads),
    ]  # fmt: skip


def granian_command(target: str, port: int, files: Files, workers: int, threads: int) -> list[str | Path]:
    return [
        BIN / "granian",
        "--interface", "wsgi", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--blocking-threads", str(threads), "--no-ws",
        "--ssl-certificate", files.cert, "--ssl-keyfile", files.key,
        "--ssl-ca", files.client_ca, "--ssl-client-verify",
        "--working-dir", BENCH_DIR, "--log-level", "warning", target,
    ]  # fmt: skip


def gunicorn_command(port: int, files: Files, workers: int) -> list[str | Path]:
    return [
        BIN / "gunicorn", "-k", "gthread", "--workers", str(workers), "--threads", "4",
        "--bind", f"127.0.0.1:{port}", "--certfile", files.cert, "--keyfile", files.key,
        "--ca-certs", files.client_ca, "--cert-reqs", "2", "--chdir", BENCH_DIR,
        "--log-level", "warning", "webhook_apps:flask_app",
    ]  # fmt: skip


def run(args: argparse.Namespace) -> list[Result]:
    """All servers up at once; every figure measured in `--rounds` interleaved rounds (median kept),
    so that load from elsewhere on the machine hits every variant alike."""
    with tempfile.TemporaryDirectory(prefix="authsvc-bench-") as tmp, ExitStack() as servers:
        files = make_home(Path(tmp))
        w, t = args.workers, args.threads
        commands: dict[str, Callable[[int], list[str | Path]]] = {
            "authsvc": lambda port: authsvc_command(port, files, w, t),
            FLASK: lambda port: granian_command("webhook_apps:flask_app", port, files, w, t),
            BARE: lambda port: granian_command("webhook_apps:bare_app", port, files, w, t),
            GUNICORN: lambda port: gunicorn_command(port, files, w),
        }
        ports = {name: free_port() for name in commands}
        for name, command in commands.items():
            servers.enter_context(running(command(ports[name]), ports[name], files, Path(tmp) / f"{ports[name]}.log"))
        figures: list[tuple[str, str, str]] = [
            (f"authsvc {KINDS['static']}", "authsvc", "static"),
            (f"authsvc {KINDS['jwt']}", "authsvc", "jwt"),
            (FLASK, FLASK, "static"),
            (BARE, BARE, "static"),
            (GUNICORN, GUNICORN, "static"),
        ]
        rounds: dict[tuple[str, int], list[Result]] = {}
        for concurrency, duration in ((args.concurrency, args.duration), (1, args.duration / 2)):
            for _ in range(args.rounds):
                for label, server, kind in figures:
                    result = measure(label, files, ports[server], kind, concurrency, duration)
                    rounds.setdefault((label, concurrency), []).append(result)
    return [median_of(results) for results in rounds.values()]


def median_of(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.name,
        first.concurrency,
        statistics.median(r.rate for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
    )


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(f"TokenReview over HTTPS + mTLS, keep-alive; median of {args.rounds} rounds of {args.duration:g}s "
          f"({args.duration / 2:g}s on 1 connection); workers={args.workers} threads={args.threads}; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'variant':52} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in results:
        print(f"{r.name:52} {r.concurrency:5} {r.rate:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.errors:6}")
    by_name = {(r.name, r.concurrency): r.rate for r in results}
    cached = by_name[(f"authsvc {KINDS['static']}", args.concurrency)]
    targets = {FLASK: 0.9, BARE: 0.6, GUNICORN: 2.0}
    print(f"ratios of the cached path at {args.concurrency} connections:")
    for name, target in targets.items():
        ratio = cached / by_name[(name, args.concurrency)]
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"  authsvc cached / {name:40} {ratio:5.2f}  (target >= {target}) {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per figure (after 1s warm-up)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (one client process each)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=1, help="granian blocking threads per worker")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per figure (the median is shown)")
    args = parser.parse_args()
    report(run(args), args)


if __name__ == "__main__":
    main()
