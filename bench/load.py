"""A bounded load run against `authsvc serve` (granian, HTTPS + mTLS, loopback), with faults.

A home is made in a temporary folder (a real slapd behind /login unless --no-ldap, a real
PostgreSQL as the inventory with --postgres), the server started, and a mix of tokens sent as
TokenReviews by N client processes, each on one keep-alive TLS connection with the API server's
client certificate (bench/webhook.py's client pieces): static tokens, bootstrap tokens, authsvc
user tokens, tokens from POST /login (LDAP), and invalid ones (unknown, tampered, alg none).
The run stops by itself after --requests or --duration, whichever comes first.

Every answer is judged against what the token is: the right user, a denial for an invalid
token, or (while a backend is down) "authenticated false" with an error. A WRONG answer is a
valid token authenticated as someone else, or an invalid one authenticated: must be 0.

--faults stops slapd at 15% of the run and starts it again at 30%, freezes it (SIGSTOP: it
accepts connections and answers nothing, a hung directory) at 40% and thaws it (SIGCONT) at 60%
(with --postgres, stops PostgreSQL at 70% and starts it at 85%), and reports, per fault, how
long after it wrong-or-failed answers went on and the slowest review while it lasted, of all
and of the tokens that never need the directory. Caches are short in fault mode (webhook result
cache --cache-ttl, LDAP group cache and stale-if-error): with the defaults (30 s, 60 s + 5 min
stale) a short outage is never seen.

    .venv/bin/python bench/load.py [--duration 20] [--requests 200000] [--concurrency 4]
                                   [--faults] [--postgres] [--no-ldap] [--workers 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webhook import BIN, Files, authsvc_command, client_context, free_port, running, tokenreview_request

from tests.components.postgres import Postgres
from tests.components.slapd import ALICE, BOB, CAROL, Slapd
from tests.ldap.fixtures import ENVIRON as LDAP_ENVIRON
from tests.ldap.fixtures import ldap_settings

DATABASE_ENV = "AUTHSVC_DATABASE_URL"


class Outcome(IntEnum):
    RIGHT_USER = 0  # a valid token, authenticated as its own user
    DENIED = 1  # an invalid token, refused
    OUTAGE = 2  # authenticated false with an error: a backend could not decide (fail closed)
    FALSE_DENIAL = 3  # a valid token refused without an error
    WRONG = 4  # a valid token as another user, or an invalid one authenticated
    HTTP_ERROR = 5  # not a 200 TokenReview, or the connection failed


GOOD = (Outcome.RIGHT_USER, Outcome.DENIED)
DIRECTORY_KINDS = ("ldap-login",)  # tokens re-checked in the directory at review time


@dataclass(frozen=True)
class Probe:
    kind: str
    token: str
    user: str | None  # None: the token is invalid


def judge(probe: Probe, status: int, body: bytes) -> Outcome:
    if status != 200:
        return Outcome.HTTP_ERROR
    answer = json.loads(body)["status"]
    if answer["authenticated"]:
        return Outcome.RIGHT_USER if answer["user"]["username"] == probe.user else Outcome.WRONG
    if probe.user is None:
        return Outcome.DENIED
    return Outcome.OUTAGE if answer.get("error") else Outcome.FALSE_DENIAL


# -- the home ------------------------------------------------------------------------------------


def write_config(home: Path, args: argparse.Namespace, slapd: Slapd | None, public_port: int) -> None:
    ttl = f"{args.cache_ttl}s"
    config: dict[str, object] = {
        "server": {"public_url": f"https://127.0.0.1:{public_port}"},  # what discovery publishes
        "authn": {"chain": ["tokenfile", "bootstrap", "authsvc"], "tokenfile": {"path": "tokens.csv"},
                  "cache_ttl": ttl, "negative_cache_ttl": ttl},
        "tokens": {"cache_refresh": ttl},
        "audit": {"path": "audit.log"},
    }  # fmt: skip
    if args.postgres:
        config["database"] = {"url_env": DATABASE_ENV}
    if slapd is not None:
        ldap = ldap_settings(slapd).model_dump(mode="json", exclude_defaults=True)
        config["ldap"] = {**ldap, "group_cache_ttl": ttl, "stale_if_error": f"{args.stale_if_error}s"}
        config["login"] = {"backends": ["ldap"], "max_failures_per_user": 1000, "max_failures_per_address": 1000}
    home.mkdir(parents=True)
    (home / "authsvc.yaml").write_text(yaml.safe_dump(config))


def cli(home: Path, *args: str) -> str:
    result = subprocess.run([BIN / "authsvc", "--home", str(home), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"authsvc {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def files_of(home: Path) -> Files:
    pki = home / "pki"
    return Files(
        home, pki / "ca.crt", pki / "authsvc/serving.crt", pki / "authsvc/serving.key",
        pki / "authsvc/webhook-client-ca.crt", pki / "authsvc/apiserver-webhook-client.crt",
        pki / "authsvc/apiserver-webhook-client.key",
        # bench/webhook.py's JWT signers: not used here (this run makes its tokens itself)
        Path(os.devnull), Path(os.devnull), Path(os.devnull), Path(os.devnull), "", "", "", "",
    )  # fmt: skip


def offline_probes(home: Path) -> list[Probe]:
    """Tokens made before the server starts: static, bootstrap, authsvc user tokens."""
    static = {f"load-static-{name}-0123456789abcdef": name for name in ("sam", "sue", "sid")}
    (home / "tokens.csv").write_text("".join(f"{t},{u},uid-{u},dev\n" for t, u in static.items()))
    probes = [Probe("static", t, u) for t, u in static.items()]
    for _ in range(2):
        token = cli(home, "token", "bootstrap", "create", "--ttl", "2h")
        probes.append(Probe("bootstrap", token, f"system:bootstrap:{token.split('.')[0]}"))
    for name in ("uma", "ulf"):
        probes.append(Probe("authsvc-user", cli(home, "token", "create-user", name, "-g", "dev"), name))
    return probes


def login_probes(files: Files, public_port: int) -> list[Probe]:
    """Tokens from POST /login (the directory's users), asked of the server's public listener
    (TLS without a client certificate, as people reach it)."""
    context = ssl.create_default_context(cafile=str(files.ca))
    wait_for_public_listener(public_port, context)
    probes = []
    for user in (ALICE, BOB, CAROL):
        connection = http.client.HTTPSConnection("127.0.0.1", public_port, context=context, timeout=10)
        basic = base64.b64encode(f"{user.uid}:{user.password}".encode()).decode()
        connection.request("POST", "/login", headers={"Authorization": f"Basic {basic}"})
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        if response.status != 200:
            raise RuntimeError(f"POST /login for {user.uid}: {response.status} {body}")
        probes.append(Probe("ldap-login", body["token"], user.uid))
    return probes


def wait_for_public_listener(port: int, context: ssl.SSLContext, timeout: float = 30.0) -> None:
    """`authsvc serve` starts the public listener as a child process: wait until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
        finally:
            connection.close()


def invalid_probes(valid: list[Probe]) -> list[Probe]:
    jwt = next(p.token for p in valid if p.kind == "authsvc-user")
    header, payload, signature = jwt.split(".")
    none = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    tokens = [
        "load-unknown-token-0123456789abcdef",
        "zzzzzz.0123456789abcdef",  # bootstrap-shaped, no such id
        valid[0].token[:-1] + ("x" if valid[0].token[-1] != "x" else "y"),
        f"{header}.{payload}.{signature[:-4]}AAAA",  # tampered signature
        f"{none}.{payload}.",  # alg none
    ]
    return [Probe("invalid", t, None) for t in tokens]


# -- the load ------------------------------------------------------------------------------------

Record = tuple[float, int, int, float]  # (seconds since start, probe index, Outcome, latency)


class KeepAlive:
    """One TLS connection kept for every request. No pipelining: a reply is read whole before the
    next request goes out, so each reply's reader (http.client's) never holds the next one."""

    def __init__(self, files: Files, port: int) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = client_context(files).wrap_socket(raw, server_hostname="127.0.0.1")

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        response = http.client.HTTPResponse(self.sock)
        response.begin()
        return response.status, response.read()

    def close(self) -> None:
        self.sock.close()


def load_worker(job: tuple[Files, int, list[Probe], int, float, float, int]) -> list[Record]:
    files, port, probes, offset, start_at, stop_at, count = job
    requests = [tokenreview_request(p.token) for p in probes]
    records: list[Record] = []
    connection = KeepAlive(files, port)
    while time.time() < start_at:
        time.sleep(0.005)
    for i in range(offset, offset + count):
        index = i % len(probes)
        started = time.perf_counter()
        try:
            outcome = judge(probes[index], *connection.exchange(requests[index]))
        except (OSError, http.client.HTTPException):
            outcome = Outcome.HTTP_ERROR
            connection.close()
            connection = KeepAlive(files, port)
        now = time.time()
        records.append((now - start_at, index, outcome, time.perf_counter() - started))
        if now >= stop_at:
            break
    connection.close()
    return records


@dataclass
class Fault:
    component: str
    stop_at: float  # fraction of the run
    start_at: float
    stop: Callable[[], object]
    start: Callable[[], object]
    stopped: float = 0.0  # seconds since the start of the run
    restarted: float = 0.0  # when start() returned: the component answers again


def run_faults(faults: list[Fault], start_at: float, duration: float) -> threading.Thread:
    def schedule() -> None:
        for fault in faults:
            for fraction, action, mark in (
                (fault.stop_at, fault.stop, "stopped"),
                (fault.start_at, fault.start, "restarted"),
            ):
                time.sleep(max(0.0, start_at + fraction * duration - time.time()))
                action()
                setattr(fault, mark, time.time() - start_at)

    thread = threading.Thread(target=schedule, daemon=True)
    thread.start()
    return thread


# -- the report ----------------------------------------------------------------------------------


def report(records: list[Record], probes: list[Probe], faults: list[Fault], args: argparse.Namespace) -> int:
    elapsed = max(r[0] for r in records)
    latencies = sorted(r[3] for r in records)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    outcomes = Counter(Outcome(r[2]) for r in records)
    print(f"authsvc load: {len(records)} TokenReviews in {elapsed:.1f}s over {args.concurrency} connections "
          f"(HTTPS + mTLS, keep-alive), server workers={args.workers} threads={args.threads}, "
          f"cache_ttl={args.cache_ttl}s, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"  rate {len(records) / elapsed:,.0f} req/s   p50 {statistics.median(latencies) * 1e3:.2f} ms   "
          f"p99 {p99 * 1e3:.2f} ms   HTTP errors {outcomes[Outcome.HTTP_ERROR]}")  # fmt: skip
    print(f"  {'kind':14} {'requests':>9} " + " ".join(f"{o.name.lower():>12}" for o in Outcome))
    for kind in dict.fromkeys(p.kind for p in probes):
        mine = Counter(Outcome(r[2]) for r in records if probes[r[1]].kind == kind)
        print(f"  {kind:14} {sum(mine.values()):9} " + " ".join(f"{mine[o]:12}" for o in Outcome))
    ends = [*(f.stopped for f in faults[1:]), float("inf")][: len(faults)]  # a window ends where the next begins
    for fault, end in zip(faults, ends, strict=True):
        bad = [r[0] for r in records if fault.stopped <= r[0] < end and Outcome(r[2]) not in GOOD]
        after = [t for t in bad if t >= fault.restarted]
        during = Counter(Outcome(r[2]) for r in records if fault.stopped <= r[0] < fault.restarted)
        recovery = max(after) - fault.restarted if after else 0.0
        noticed = f"first seen {min(bad) - fault.stopped:.2f}s after the stop" if bad else "never seen"
        print(f"  fault {fault.component}: down {fault.stopped:.1f}s-{fault.restarted:.1f}s "
              f"(outage answers {during[Outcome.OUTAGE]}, false denials {during[Outcome.FALSE_DENIAL]}, {noticed}); "
              f"recovered {recovery:.2f}s after restart")  # fmt: skip
        slowest, slowest_free = slowest_during(records, probes, fault.stopped, fault.restarted)
        print(
            f"    slowest review while down {slowest:.2f}s; of tokens that never need the directory {slowest_free:.2f}s"
        )
    print(f"  WRONG ANSWERS: {outcomes[Outcome.WRONG]} (must be 0)")
    return 1 if outcomes[Outcome.WRONG] else 0


def slowest_during(records: list[Record], probes: list[Probe], start: float, end: float) -> tuple[float, float]:
    """The longest latency of the reviews sent between `start` and `end` (record times are when
    a reply came), of all of them and of those whose tokens never need the directory."""
    during = [r for r in records if start <= r[0] - r[3] < end]
    free = [r[3] for r in during if probes[r[1]].kind not in DIRECTORY_KINDS]
    return max((r[3] for r in during), default=0.0), max(free, default=0.0)


# -- the run -------------------------------------------------------------------------------------


@contextmanager
def components(args: argparse.Namespace) -> Iterator[tuple[Slapd | None, Postgres | None]]:
    with ExitStack() as stack:
        slapd = None if args.no_ldap else stack.enter_context(Slapd())
        postgres = stack.enter_context(Postgres()) if args.postgres else None
        yield slapd, postgres


def faults_for(slapd: Slapd | None, postgres: Postgres | None) -> list[Fault]:
    faults = []
    if slapd is not None:
        faults.append(Fault("slapd", 0.15, 0.30, slapd.stop, slapd.start))
        faults.append(Fault("slapd frozen (SIGSTOP)", 0.40, 0.60, slapd.freeze, slapd.thaw))
    if postgres is not None:
        faults.append(Fault("postgresql", 0.70, 0.85, postgres.stop, postgres.start))
    return faults


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="authsvc-load-") as tmp, components(args) as (slapd, postgres):
        os.environ.update(LDAP_ENVIRON)  # the server and the CLI read the bind password from here
        if postgres is not None:
            os.environ[DATABASE_ENV] = postgres.url
        home, port, public_port = Path(tmp) / "home", free_port(), free_port()
        write_config(home, args, slapd, public_port)
        cli(home, "init")
        probes = offline_probes(home)
        files = files_of(home)
        command = [*authsvc_command(port, files, args.workers, args.threads), f"--public-bind=127.0.0.1:{public_port}"]
        with running(command, port, files, Path(tmp) / "serve.log"):
            if slapd is not None:
                probes += login_probes(files, public_port)
            probes += invalid_probes(probes)
            faults = faults_for(slapd, postgres) if args.faults else []
            start_at = time.time() + 1.0
            per_worker = max(1, args.requests // args.concurrency)
            jobs = [(files, port, probes, i * 7, start_at, start_at + args.duration, per_worker)
                    for i in range(args.concurrency)]  # fmt: skip
            with multiprocessing.get_context("fork").Pool(args.concurrency) as pool:
                pending = pool.map_async(load_worker, jobs)
                scheduler = run_faults(faults, start_at, args.duration)
                outcomes = pending.get(timeout=args.duration + 120)
                scheduler.join(timeout=60)
    return report([r for worker in outcomes for r in worker], probes, faults, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds, at most")
    parser.add_argument("--requests", type=int, default=200_000, help="TokenReviews in all, at most")
    parser.add_argument("--concurrency", type=int, default=4, help="connections (one client process each)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=4, help="granian blocking threads per worker")
    parser.add_argument(
        "--faults", action="store_true", help="stop, restart, freeze and thaw slapd (and stop PostgreSQL) mid-run"
    )
    parser.add_argument("--postgres", action="store_true", help="the inventory in a real PostgreSQL")
    parser.add_argument("--no-ldap", action="store_true", help="no slapd, no /login tokens")
    parser.add_argument(
        "--cache-ttl", type=int, default=None, help="webhook and LDAP cache seconds [30; 1 with --faults]"
    )
    parser.add_argument(
        "--stale-if-error", type=int, default=None, help="LDAP stale-if-error seconds [300; 1 with --faults]"
    )
    args = parser.parse_args()
    if args.cache_ttl is None:
        args.cache_ttl = 1 if args.faults else 30
    if args.stale_if_error is None:
        args.stale_if_error = 1 if args.faults else 300
    sys.exit(run(args))


if __name__ == "__main__":
    main()
