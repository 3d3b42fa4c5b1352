"""Leaf certificate issuances per second, P-256 and RSA-2048 leaf keys, all signed by one P-256 CA.

(a) bare: cryptography alone in this process: generate key, build (the client profile's
    extensions), sign, PEM-encode certificate and key. The yardstick.
(b) library, pure path: generate_private_key + CertificateAuthority.issue + PEM.
(b') library, issuer: CertificateIssuer.create (policy checks, subject, key, build, sign, the
    inventory record built but not stored) + PEM.
(c) library + inventory + files, three ways, to show where the time goes:
    c0 inventory only: one SQLite transaction per certificate (WAL, synchronous=NORMAL: no fsync);
    c1 per certificate: c0 + key and certificate written atomically (temp file, fsync each,
       rename both, one directory fsync): what `certs create` does;
    c2 batched: BATCH certificates issued, their records added in one transaction, their files
       written by one atomic_write_many (one syncfs for the batch, one directory fsync):
       what a bulk caller (rotation, 256 per chunk) does with the same library calls.
(d) openssl: one `openssl req -x509 -newkey ... -CA ca.crt -CAkey ca.key` process per certificate.
(e) `authsvc certs create` as a whole new process, against (d) for P-256.

    .venv/bin/python bench/issue.py [--seconds 1.5] [--openssl-count 50] [--process-count 10] [--dir DIR]

Bounded: about 40 s on 2 cores. Figures depend on the disk (file creation, fsync) and on what
else runs; the second line says what creating one file costs on DIR (default: beside the current
directory, i.e. on the disk; --dir /dev/shm takes the disk out of (c)).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from disk import describe
from measure import installed_env

from authsvc.init.steps import initialize_home, write_config_step
from authsvc.settings import Settings
from pki.builder import CLOCK_SKEW, authority_key_identifier
from pki.ca import CertificateAuthority
from pki.clock import system_clock
from pki.db import create_schema, make_engine
from pki.inventory import Inventory
from pki.issuance import CertificateIssuer, IssuedCert
from pki.keys import KeyType, PrivateKey, generate_private_key, private_key_to_pem
from pki.names import user_subject
from pki.policy import SigningPolicy
from pki.profiles import CLIENT
from pki.store import CERT_MODE, KEY_MODE, PendingFile, atomic_write_many, write_certificates, write_private_key

KEY_TYPES = (KeyType.EC_P256, KeyType.RSA_2048)
# Certificates per batch in (c2): RSA key generation is slow, so its batches are smaller.
BATCH = {KeyType.EC_P256: 256, KeyType.RSA_2048: 10}  # 256: the chunk `authsvc rotate` writes
SUBJECT = user_subject("alice", ("dev",))


ROUNDS = 3
# What any Python command line that signs a certificate and records it under the project's rules
# must import (cryptography, click, pydantic for the config, SQLAlchemy Core for the inventory) and run
# nothing else: the least `authsvc certs create` can cost as one process.
FLOOR_IMPORTS = (
    "from cryptography import x509; from cryptography.hazmat.primitives.asymmetric import ec;"
    " import click, pydantic, sqlalchemy, yaml"
)


@dataclass(frozen=True)
class Rate:
    """Certificates per second of wall-clock time, and per second of CPU time this process (or its
    children) used: on a busy shared machine the second is the steadier; waits (fsync) count only
    in the first."""

    wall: float
    cpu: float

    def best(self, other: Rate) -> Rate:
        return Rate(max(self.wall, other.wall), max(self.cpu, other.cpu))


def per_second(issue: Callable[[], int], seconds: float) -> Rate:
    """The rate while `issue` (returns how many it issued) runs for `seconds`."""
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds or count < 2:
        count += issue()
    return Rate(count / elapsed, count / max(time.process_time() - cpu, 1e-9))


def best_rates(issuers: dict[str, Callable[[], int]], seconds: float) -> dict[str, Rate]:
    """Each case runs ROUNDS slices of seconds/ROUNDS, interleaved with the other cases, and keeps its
    best slice: other processes only ever slow a slice down, and interleaving gives every case the
    same chance of a quiet moment."""
    for issue in issuers.values():
        issue()  # warm-up
    best = dict.fromkeys(issuers, Rate(0.0, 0.0))
    for _ in range(ROUNDS):
        for label, issue in issuers.items():
            best[label] = best[label].best(per_second(issue, seconds / ROUNDS))
    return best


def new_key(key_type: KeyType) -> PrivateKey:
    if key_type is KeyType.RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def bare(ca: CertificateAuthority, key_type: KeyType) -> Callable[[], int]:
    aki = authority_key_identifier(ca.certificate)
    ca_key = ca.key

    def issue() -> int:
        key = new_key(key_type)
        now = dt.datetime.now(dt.UTC)
        is_rsa = key_type is KeyType.RSA_2048
        usage = x509.KeyUsage(True, False, is_rsa, False, False, False, False, False, False)
        cert = (
            x509.CertificateBuilder()
            .subject_name(SUBJECT)
            .issuer_name(ca.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(aki, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert.public_bytes(serialization.Encoding.PEM)
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return 1

    return issue


def builder(ca: CertificateAuthority, key_type: KeyType) -> Callable[[], int]:
    """The pure path: generate_private_key + CertificateAuthority.issue + PEM (no policy, no record)."""

    def issue() -> int:
        key = generate_private_key(key_type)
        now = system_clock()
        cert = ca.issue(subject=user_subject("alice", ("dev",)), public_key=key.public_key(), profile=CLIENT, now=now)
        cert.public_bytes(serialization.Encoding.PEM), private_key_to_pem(key)
        return 1

    return issue


def create(issuer: CertificateIssuer, key_type: KeyType) -> IssuedCert:
    ttl = dt.timedelta(days=1)
    return issuer.create("alice", profile=CLIENT, groups=("dev",), ttl=ttl, key_type=key_type, requester="bench")


def library(ca: CertificateAuthority, key_type: KeyType) -> Callable[[], int]:
    issuer = CertificateIssuer(ca, None, SigningPolicy(), system_clock)

    def issue() -> int:
        issued = create(issuer, key_type)
        issued.cert_pem, issued.key_pem()  # the PEM encoding is part of the work
        return 1

    return issue


def new_inventory(folder: Path) -> Inventory:
    engine = make_engine(f"sqlite:///{folder / 'inventory.db'}")
    create_schema(engine)
    return Inventory(engine)


def inventory_only(ca: CertificateAuthority, key_type: KeyType, folder: Path) -> Callable[[], int]:
    issuer = CertificateIssuer(ca, new_inventory(folder), SigningPolicy(), system_clock)

    def issue() -> int:
        issued = create(issuer, key_type)
        issued.cert_pem, issued.key_pem()
        return 1

    return issue


def files_of(issued: IssuedCert, folder: Path) -> list[PendingFile]:
    name = issued.record.serial
    return [
        PendingFile(folder / f"{name}.key", issued.key_pem(), KEY_MODE),
        PendingFile(folder / f"{name}.crt", issued.chain_pem, CERT_MODE),
    ]


def per_certificate(ca: CertificateAuthority, key_type: KeyType, folder: Path) -> Callable[[], int]:
    issuer = CertificateIssuer(ca, new_inventory(folder), SigningPolicy(), system_clock)

    def issue() -> int:
        atomic_write_many(files_of(create(issuer, key_type), folder / "issued"))
        return 1

    return issue


def batched(ca: CertificateAuthority, key_type: KeyType, folder: Path) -> Callable[[], int]:
    inventory = new_inventory(folder)
    issuer = CertificateIssuer(ca, None, SigningPolicy(), system_clock)

    def issue() -> int:
        issued = [create(issuer, key_type) for _ in range(BATCH[key_type])]
        inventory.add([i.record for i in issued])
        atomic_write_many([f for i in issued for f in files_of(i, folder / "issued")])
        return len(issued)

    return issue


def openssl_seconds(home: Path, key_type: KeyType, count: int, out: Path) -> Run:
    """One `openssl req -x509 -CA` process issuing a client certificate."""
    newkey = ["rsa:2048"] if key_type is KeyType.RSA_2048 else ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    command = [
        "openssl", "req", "-x509", "-newkey", *newkey, "-noenc", "-CA", str(home / "pki" / "ca.crt"),
        "-CAkey", str(home / "pki" / "ca.key"), "-subj", "/O=dev/CN=alice", "-days", "1",
        "-addext", "basicConstraints=critical,CA:FALSE", "-addext", "keyUsage=critical,digitalSignature",
        "-addext", "extendedKeyUsage=clientAuth", "-keyout", str(out / "o.key"), "-out", str(out / "o.crt"),
    ]  # fmt: skip
    return mean_seconds(command, count, env=None)


@dataclass(frozen=True)
class Run:
    """Mean seconds of one run of a command: wall clock, and CPU (user + system) of the process."""

    wall: float
    cpu: float
    runs: int


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def mean_seconds(command: list[str], count: int, env: dict[str, str] | None, budget: float = 5.0) -> Run:
    """`count` runs of `command`, fewer (at least 3) once `budget` seconds have passed."""
    subprocess.run(command, check=True, capture_output=True, env=env)  # warm-up (page cache, pyc)
    runs, start, cpu = 0, time.perf_counter(), children_cpu()
    while runs < count and (runs < 3 or time.perf_counter() - start < budget):
        subprocess.run(command, check=True, capture_output=True, env=env)
        runs += 1
    return Run((time.perf_counter() - start) / runs, (children_cpu() - cpu) / runs, runs)


def cli_command(home: Path) -> list[str]:
    authsvc = str(Path(sys.executable).with_name("authsvc"))
    return [authsvc, f"--home={home}", "certs", "create", "bench", "-g", "dev", "--force"]


def cli_seconds(home: Path, count: int, env: dict[str, str]) -> Run:
    return mean_seconds(cli_command(home), count, env)


def import_costs(home: Path, env: dict[str, str], top: int = 8) -> list[tuple[str, float]]:
    """The packages one `authsvc certs create` imports, by their own cumulative import time (ms)."""
    command = [sys.executable, "-X", "importtime", *cli_command(home)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    costs: dict[str, float] = {}
    for line in done.stderr.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[1].isdigit() and "." not in parts[2].strip():
            costs[parts[2].strip()] = int(parts[1]) / 1000
    return sorted(costs.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per in-process figure and key type")
    parser.add_argument("--openssl-count", type=int, default=50)
    parser.add_argument("--process-count", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the temporary home goes")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="authsvc-bench-", dir=args.dir))
    try:
        run(root, args.seconds, args.openssl_count, args.process_count)
    finally:
        shutil.rmtree(root)


def run(root: Path, seconds: float, openssl_count: int, process_count: int) -> None:
    home = initialize_home(root / "home", Settings(), environ={}, steps=[write_config_step]).home
    # A P-256 cluster CA (kubeadm's default would be RSA-2048), written where `init` puts it.
    ca = CertificateAuthority.create_root("kubernetes", now=system_clock(), key_type=KeyType.EC_P256)
    write_private_key(home.layout.key_path("ca"), ca.key)
    write_certificates(home.layout.cert_path("ca"), [ca.certificate])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"leaf issuances per second; CA CN=kubernetes (ECDSA P-256); {os.cpu_count()} CPUs, load average {load}")
    print(f"home on {describe(root)}")
    print(f"{'':40}{'wall clock':>14} {'per CPU second':>14}   {'ratio to (a), P-256 / RSA-2048':>29}")
    print(f"{'':40}{'P-256':>7}{'RSA':>7} {'P-256':>7}{'RSA':>7}   {'wall':12} cpu")
    cases: list[tuple[str, Callable[[KeyType, Path], Callable[[], int]]]] = [
        ("(a) bare cryptography loop", lambda k, _f: bare(ca, k)),
        ("(b) CertificateAuthority.issue", lambda k, _f: builder(ca, k)),
        ("(b') CertificateIssuer: + policy, record", lambda k, _f: library(ca, k)),
        ("(c0) + inventory (SQLite WAL)", lambda k, f: inventory_only(ca, k, f)),
        ("(c1) + inventory + 2 files/cert", lambda k, f: per_certificate(ca, k, f)),
        ("(c2) batched (256 / 10 per batch)", lambda k, f: batched(ca, k, f)),
    ]
    by_key: dict[KeyType, dict[str, Rate]] = {}
    for key_type in KEY_TYPES:
        issuers = {}
        for number, (label, make) in enumerate(cases):
            folder = root / f"case{number}-{key_type.value}"
            folder.mkdir()
            issuers[label] = make(key_type, folder)
        by_key[key_type] = best_rates(issuers, seconds)
    bare_rates = by_key[KEY_TYPES[0]][cases[0][0]], by_key[KEY_TYPES[1]][cases[0][0]]
    for label, _ in cases:
        print_row(label, (by_key[KEY_TYPES[0]][label], by_key[KEY_TYPES[1]][label]), bare_rates)
    timings = {k: openssl_seconds(home.root, k, openssl_count, root) for k in KEY_TYPES}
    openssl = tuple(Rate(1 / t.wall, 1 / t.cpu) for t in timings.values())
    runs = "/".join(str(t.runs) for t in timings.values())
    print_row(f"(d) openssl req -x509 -CA, N={runs}", (openssl[0], openssl[1]), bare_rates)
    env = installed_env(root / "pycache")
    cli, one_openssl = cli_seconds(home.root, process_count, env), timings[KeyType.EC_P256]
    python = mean_seconds([sys.executable, "-c", "pass"], process_count, env)
    floor = mean_seconds([sys.executable, "-c", FLOOR_IMPORTS], process_count, env)
    print()
    print(f"(e) one process, P-256, ms wall (cpu):  `authsvc certs create` {ms(cli)} (N={cli.runs})")
    print(f"    `openssl req -x509 -CA` {ms(one_openssl)}; `python -c pass` {ms(python)}")
    print(f"    floor, a Python process that only imports what issuing and recording need: {ms(floor)}")
    print(
        f"    ratio {cli.wall / one_openssl.wall:.1f}x wall, {cli.cpu / one_openssl.cpu:.1f}x cpu (target <= 3x);"
        f" the floor alone is {floor.cpu / one_openssl.cpu:.1f}x cpu, the command {cli.cpu / floor.cpu:.2f}x the floor"
    )
    print("    import cost of the command's path (ms, cumulative, top-level packages):")
    print("      " + ", ".join(f"{name} {cost:.0f}" for name, cost in import_costs(home.root, env)))


def ms(run: Run) -> str:
    return f"{run.wall * 1000:.0f} ({run.cpu * 1000:.0f})"


def print_row(label: str, rates: tuple[Rate, Rate], bare_rates: tuple[Rate, Rate]) -> None:
    """One case: wall-clock rates for both key types, CPU-time rates, ratios to (a) on each."""
    wall = f"{rates[0].wall:>7.0f}{rates[1].wall:>7.1f}"
    cpu = f"{rates[0].cpu:>7.0f}{rates[1].cpu:>7.1f}"
    ratio_wall = " / ".join(f"{r.wall / b.wall:.2f}" for r, b in zip(rates, bare_rates, strict=True))
    ratio_cpu = " / ".join(f"{r.cpu / b.cpu:.2f}" for r, b in zip(rates, bare_rates, strict=True))
    print(f"{label:40}{wall} {cpu}   {ratio_wall:12} {ratio_cpu}")


if __name__ == "__main__":
    main()
