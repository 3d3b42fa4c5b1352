"""TokenReview requests/s and p50/p99 latency over HTTPS with mTLS (keep-alive), in one run:

- authsvc (`authsvc serve`: granian WSGI, TLS + client certificates) with a cached static token,
  with an uncached external JWT (a fresh ES256 token from an external issuer on every request)
  and with an uncached user token of its own (a fresh one on every request, signed with the
  home's key, `--token-algorithm`, as `authsvc token user` signs them);
- (a) a minimal Flask view parsing the same JSON, on the same granian settings and certificates;
- (b) a bare WSGI JSON endpoint on the same granian settings;
- (c) the minimal Flask view on gunicorn gthread (2 workers x 4 threads), same certificates;
- (d) and (e), the yardsticks of the uncached paths: bare WSGI apps on the same granian settings
  that parse the TokenReview and verify the same JWTs with PyJWT (key object loaded once),
  external (d) and authsvc's own user tokens (e) (bench/webhook_apps.py);

at a fixed concurrency and on a single connection, with the ratios of the cached path to (a),
(b), (c) and of each uncached path to its yardstick. Every JWT is used once per figure (each
connection signs its own before the figure starts): a line says so if a connection ran out and
went round again, which would let the result cache answer.

The load generator is Python: wrk cannot present a client certificate (and the servers refuse
callers without one), so N processes each keep one TLS connection (client certificate, HTTP/1.1
keep-alive) and send pre-built requests back to back. It shares the 2 cores with the server, so
absolute figures are lower than wrk's; every variant pays the same client cost.

    .venv/bin/python bench/webhook.py [--duration 5] [--rounds 3] [--concurrency 8] [--workers 2] [--threads 1]
        [--token-algorithm ES256|RS256] [--baseline CHECKOUT]

`--baseline` starts a second `authsvc serve` on the same home from another checkout (its
PYTHONPATH; e.g. `git archive <commit> | tar -x -C /tmp/base`) and measures it right after
each of this checkout's figures: before and after in the same rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from typing import Any

import jwt
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authsvc.settings import settings_from_mapping
from pki.keys import load_private_key_pem, load_public_key_pem
from pki.store import write_private_key
from pki.tokens.claims import user_claims
from pki.tokens.kid import algorithm_for, kid_for
from pki.tokens.service import new_jti

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
STATIC_TOKEN = "bench-static-token-0123456789abcdef"
ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "kubernetes"
FLASK = "(a) minimal Flask, granian"
BARE = "(b) bare WSGI, granian"
GUNICORN = "(c) minimal Flask, gunicorn gthread 2x4"
EXTERNAL_YARDSTICK = "(d) bare WSGI + PyJWT verify, external JWT"
USER_YARDSTICK = "(e) bare WSGI + PyJWT verify, user token"
BASELINE = "baseline"
KINDS = {"static": "cached static token", "jwt": "uncached external ES256 JWT", "user": "uncached user token"}
# Uncached reviews a second that a figure can take, all connections together, without a
# connection running out of fresh JWTs (sized for 2 cores; more and it would say so), and the
# margin for connections that get more than their share.
MAX_FRESH_RATE = 8000
SHARE_MARGIN = 2.0


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
    issuer_jwks: Path
    user_key: Path  # the home's signing key (pki/sa.key) and its public half (pki/sa.pub)
    user_public: Path
    user_kid: str
    user_issuer: str
    user_audience: str
    user_algorithm: str


@dataclass(frozen=True)
class Result:
    name: str
    concurrency: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    reused: int = 0  # requests that sent a JWT this connection had sent before


def make_home(root: Path, token_algorithm: str) -> Files:
    home = root / "home"
    home.mkdir(mode=0o700)
    (home / "authsvc.yaml").write_text(yaml.safe_dump({"tokens": {"algorithm": token_algorithm}}))
    subprocess.run([BIN / "authsvc", "--home", str(home), "init"], check=True, capture_output=True)
    (home / "tokens.csv").write_text(f"{STATIC_TOKEN},bench,uid-1,dev\n")
    issuer_key = ec.generate_private_key(ec.SECP256R1())
    key_file = write_private_key(root / "issuer.key", issuer_key)
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(issuer_key.public_key()))
    (home / "issuer-jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "bench", "alg": "ES256"}]}))
    config_file = home / "authsvc.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["authn"] = {
        "chain": ["tokenfile", "issuers", "authsvc"],
        "tokenfile": {"path": "tokens.csv"},
        "issuers": [{"url": ISSUER, "audiences": [AUDIENCE], "jwks_file": "issuer-jwks.json", "algorithms": ["ES256"]}],
    }
    config["audit"] = {"path": "audit.log"}
    config_file.write_text(yaml.safe_dump(config))
    tokens = settings_from_mapping(config).tokens.to_config()
    pki = home / "pki"
    user_public = load_public_key_pem((pki / "sa.pub").read_bytes())
    return Files(
        home,
        pki / "ca.crt",
        pki / "authsvc/serving.crt",
        pki / "authsvc/serving.key",
        pki / "authsvc/webhook-client-ca.crt",
        pki / "authsvc/apiserver-webhook-client.crt",
        pki / "authsvc/apiserver-webhook-client.key",
        key_file,
        home / "issuer-jwks.json",
        pki / "sa.key",
        pki / "sa.pub",
        kid_for(user_public),
        tokens.user_token_issuer,
        tokens.user_audience,
        algorithm_for(user_public),
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
def running(
    command: Sequence[str | Path], port: int, files: Files, log: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    with log.open("wb") as out:
        process = subprocess.Popen([str(c) for c in command], stdout=out, stderr=out, start_new_session=True, env=env)
    try:
        try:
            wait_ready(port, files, process)
        except RuntimeError as error:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{error}: {' '.join(map(str, command[:3]))}...\n" + "\n".join(tail)) from None
        yield
    finally:
        if process.poll() is None:
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


def fresh_user_tokens(files: Files, count: int) -> list[str]:
    """User tokens as `authsvc token user create` signs them (pki.tokens.claims.user_claims), a
    fresh jti each; not recorded in the inventory, which the webhook does not read."""
    key = load_private_key_pem(files.user_key.read_bytes())
    now = dt.datetime.now(dt.UTC)
    tokens = []
    for _ in range(count):
        claims = user_claims(
            issuer=files.user_issuer, username="user-1", groups=["dev"], audience=files.user_audience, now=now,
            ttl=dt.timedelta(hours=1), jti=new_jti(now), source="cli",
        )  # fmt: skip
        tokens.append(jwt.encode(claims, key, algorithm=files.user_algorithm, headers={"kid": files.user_kid}))  # type: ignore[arg-type]
    return tokens


def tokens_for(files: Files, kind: str, count: int) -> list[str]:
    if kind == "jwt":
        return fresh_jwts(files, count)
    if kind == "user":
        return fresh_user_tokens(files, count)
    return [STATIC_TOKEN]


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


# How many connections of the figure being measured are ready (JWTs signed, connected): they
# start together (set before the figure's processes are forked).
_start_together: Any = None


def load_worker(job: tuple[Files, int, str, int, float, float, int]) -> tuple[list[float], int, int]:
    files, port, kind, count, warmup, duration, connections = job
    requests = [tokenreview_request(t) for t in tokens_for(files, kind, count)]
    raw = socket.create_connection(("127.0.0.1", port))
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock = client_context(files).wrap_socket(raw, server_hostname="127.0.0.1")
    latencies: list[float] = []
    errors, i, buffer = 0, 0, bytearray()
    with _start_together.get_lock():
        _start_together.value += 1
    deadline = time.monotonic() + 120  # a connection that never got ready must not hang the run
    while _start_together.value < connections and time.monotonic() < deadline:
        time.sleep(0.002)
    measure_from, stop_at = time.perf_counter() + warmup, time.perf_counter() + warmup + duration
    reused = 0
    while True:
        started = time.perf_counter()
        sock.sendall(requests[i % len(requests)])
        status = read_response(sock, buffer)
        ended = time.perf_counter()
        reused += i >= len(requests) > 1
        i += 1
        if started >= measure_from:
            latencies.append(ended - started)
            errors += status != 200
        if ended >= stop_at:
            break
    sock.close()
    return latencies, errors, reused


def measure(name: str, files: Files, port: int, kind: str, concurrency: int, duration: float) -> Result:
    warmup = 1.0
    count = 1 if kind == "static" else int(MAX_FRESH_RATE * (warmup + duration) / concurrency * SHARE_MARGIN)
    jobs = [(files, port, kind, count, warmup, duration, concurrency)] * concurrency
    global _start_together
    context = multiprocessing.get_context("fork")
    _start_together = context.Value("i", 0)  # connections ready
    with context.Pool(concurrency) as pool:
        outcomes = pool.map(load_worker, jobs, chunksize=1)
    latencies = sorted(x for lat, _, _ in outcomes for x in lat)
    errors, reused = sum(e for _, e, _ in outcomes), sum(r for _, _, r in outcomes)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    rate = len(latencies) / duration
    return Result(name, concurrency, rate, statistics.median(latencies) * 1e3, p99 * 1e3, errors, reused)


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
        files = make_home(Path(tmp), args.token_algorithm)
        w, t = args.workers, args.threads
        commands: dict[str, Callable[[int], list[str | Path]]] = {
            "authsvc": lambda port: authsvc_command(port, files, w, t),
            FLASK: lambda port: granian_command("webhook_apps:flask_app", port, files, w, t),
            BARE: lambda port: granian_command("webhook_apps:bare_app", port, files, w, t),
            GUNICORN: lambda port: gunicorn_command(port, files, w),
            EXTERNAL_YARDSTICK: lambda port: granian_command("webhook_apps:external_jwt_app", port, files, w, t),
            USER_YARDSTICK: lambda port: granian_command("webhook_apps:user_token_app", port, files, w, t),
        }
        os.environ.update(
            BENCH_ISSUER_JWKS=str(files.issuer_jwks), BENCH_USER_KEY=str(files.user_public),
            BENCH_USER_ISSUER=files.user_issuer, BENCH_USER_AUDIENCE=files.user_audience,
            BENCH_USER_ALGORITHM=files.user_algorithm,
        )  # fmt: skip
        environments = {}
        if args.baseline:
            commands[BASELINE] = commands["authsvc"]
            environments[BASELINE] = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
        ports = {name: free_port() for name in commands}
        for name, command in commands.items():
            log = Path(tmp) / f"{ports[name]}.log"
            servers.enter_context(running(command(ports[name]), ports[name], files, log, environments.get(name)))
        figures: list[tuple[str, str, str]] = [
            (f"authsvc {KINDS['static']}", "authsvc", "static"),
            (f"authsvc {KINDS['jwt']}", "authsvc", "jwt"),
            (EXTERNAL_YARDSTICK, EXTERNAL_YARDSTICK, "jwt"),
            (f"authsvc {KINDS['user']}", "authsvc", "user"),
            (USER_YARDSTICK, USER_YARDSTICK, "user"),
            (FLASK, FLASK, "static"),
            (BARE, BARE, "static"),
            (GUNICORN, GUNICORN, "static"),
        ]
        if args.baseline:
            at = {kind: next(i for i, f in enumerate(figures) if f[2] == kind and f[1] == "authsvc") for kind in KINDS}
            for kind in ("user", "jwt", "static"):  # right after the same figure of this checkout
                figures.insert(at[kind] + 1, (f"{BASELINE} {KINDS[kind]}", BASELINE, kind))
        rounds: dict[tuple[str, int], list[Result]] = {}
        for concurrency, duration in ((args.concurrency, args.duration), (1, args.duration / 2)):
            for number in range(args.rounds):
                for label, server, kind in in_turn(figures, swap=number % 2 == 1):
                    result = measure(label, files, ports[server], kind, concurrency, duration)
                    rounds.setdefault((label, concurrency), []).append(result)
    results = [median_of(results) for results in rounds.values()]
    return sorted(results, key=lambda r: (-r.concurrency, [f[0] for f in figures].index(r.name)))


def in_turn(figures: list[tuple[str, str, str]], *, swap: bool) -> list[tuple[str, str, str]]:
    """The figures in order, or with each baseline figure before this checkout's same figure. With
    the baseline always second, two runs read the same cached path (the code of both sides is the
    same there) at 0.82x the baseline on one connection; taking turns, 0.98x."""
    ordered = list(figures)
    if swap:
        for i in range(len(ordered) - 1):
            if ordered[i + 1][1] == BASELINE and ordered[i][1] == "authsvc":
                ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
    return ordered


def median_of(results: list[Result]) -> Result:
    first = results[0]
    return Result(
        first.name,
        first.concurrency,
        statistics.median(r.rate for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        sum(r.reused for r in results),
    )


def report(results: list[Result], args: argparse.Namespace, load: str) -> None:
    print(f"TokenReview over HTTPS + mTLS, keep-alive; median of {args.rounds} rounds of {args.duration:g}s "
          f"({args.duration / 2:g}s on 1 connection); workers={args.workers} threads={args.threads}; "
          f"{os.cpu_count()} CPUs; authsvc's tokens {args.token_algorithm}; load average {load}")  # fmt: skip
    print(f"{'variant':52} {'conns':>5} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    for r in results:
        print(f"{r.name:52} {r.concurrency:5} {r.rate:8.0f} {r.p50_ms:7.2f} {r.p99_ms:7.2f} {r.errors:6}")
        if r.reused:
            print(f"  ^ {r.reused} requests re-sent a JWT (the cache may have answered them): raise MAX_FRESH_RATE")
    by_name = {(r.name, r.concurrency): r.rate for r in results}
    cached = by_name[(f"authsvc {KINDS['static']}", args.concurrency)]
    targets = {FLASK: 0.9, BARE: 0.6, GUNICORN: 2.0}
    print(f"ratios of the cached path at {args.concurrency} connections:")
    for name, target in targets.items():
        ratio = cached / by_name[(name, args.concurrency)]
        verdict = "ok" if ratio >= target else "MISSED"
        print(f"  authsvc cached / {name:40} {ratio:5.2f}  (target >= {target}) {verdict}")
    if args.baseline:
        print(f"this checkout / {BASELINE} ({args.baseline}), same run:")
        for kind in KINDS:
            for concurrency in (args.concurrency, 1):
                ratio = (
                    by_name[(f"authsvc {KINDS[kind]}", concurrency)]
                    / by_name[(f"{BASELINE} {KINDS[kind]}", concurrency)]
                )
                print(f"  {KINDS[kind]:30} {concurrency} conn.  {ratio:5.2f}")
        for kind, yardstick in (("jwt", EXTERNAL_YARDSTICK), ("user", USER_YARDSTICK)):
            for concurrency in (args.concurrency, 1):
                ratio = by_name[(f"{BASELINE} {KINDS[kind]}", concurrency)] / by_name[(yardstick, concurrency)]
                print(f"  {BASELINE} {KINDS[kind]:28} / {yardstick[:3]} {concurrency} conn.  {ratio:5.2f}")
    print("ratios of the uncached paths to their yardsticks (target >= 0.85):")
    for kind, yardstick in (("jwt", EXTERNAL_YARDSTICK), ("user", USER_YARDSTICK)):
        for concurrency in (args.concurrency, 1):
            ratio = by_name[(f"authsvc {KINDS[kind]}", concurrency)] / by_name[(yardstick, concurrency)]
            verdict = "ok" if ratio >= 0.85 else "MISSED"
            print(f"  authsvc {KINDS[kind]:28} / {yardstick[:3]} {concurrency} conn.  {ratio:5.2f}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per figure (after 1s warm-up)")
    parser.add_argument("--concurrency", type=int, default=8, help="connections (one client process each)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=1, help="granian blocking threads per worker")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per figure (the median is shown)")
    parser.add_argument(
        "--baseline", type=Path, help="a checkout of another version: its `authsvc serve` measured too, interleaved"
    )
    parser.add_argument("--token-algorithm", choices=("ES256", "RS256"), default="ES256", help="authsvc's signing key")
    args = parser.parse_args()
    before = os.getloadavg()[0]
    results = run(args)
    report(results, args, f"{before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
